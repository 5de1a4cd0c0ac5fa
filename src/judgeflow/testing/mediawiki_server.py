"""A fake MediaWiki action API on aiohttp, for testing the `wikipedia` package without the internet.

It answers the queries ``wikipedia.page(title, auto_suggest=False)`` and ``page.content`` make (and the few other
page accessors built on the same query module: ``summary``, ``html()``, ``revision_id``), in MediaWiki's JSON
format version 1, and runs inside the caller's asyncio event loop::

    async with serve_mediawiki({"History of Paris": "Paris was founded..."}) as server:
        wikipedia.wikipedia.API_URL = server.api_url
        ...
        assert server.stats.titles["History of Paris"] == 2

What it understands, all from ``GET /w/api.php?format=json&action=query&...``:

* ``titles=A|B`` or ``pageids=1|2``; titles are normalized as MediaWiki does (underscores to spaces, first letter
  upper case) and the response then carries ``query.normalized``.
* ``redirects``: a title in ``redirects`` answers with ``query.redirects`` and the target page.
* ``prop=info`` (with ``inprop=url``: ``fullurl``, ``canonicalurl``, ``editurl``), ``prop=pageprops`` (with
  ``ppprop=disambiguation``: the titles in ``disambiguations`` carry ``pageprops.disambiguation``),
  ``prop=extracts`` (``explaintext``; ``exintro`` gives the first paragraph), ``prop=revisions`` (``rvprop=ids``:
  ``revid`` / ``parentid``; ``rvprop=content``: wikitext, or HTML with ``rvparse``; a disambiguation page's HTML
  lists its options as ``<li><a>`` items, which is where the package reads them from).
* A title that is neither a page nor a disambiguation page answers in the "missing" form (``"-1": {"missing":
  ""}``), so the package raises ``PageError``.

Anything else (``list=search``, ``meta=``, ``action=parse``...) gets a MediaWiki error object
(``{"error": {"code": "unsupported", ...}}``) and is counted in ``stats.requests["unsupported"]``. A title in
``http_errors`` is answered with that HTTP status and an HTML body, like a proxy or an overloaded server would.
``delay_s`` is waited before every answer; closing the server ends the wait at once with a 503, so a client
thread that gave up on a slow request is released rather than left hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ._http import running_app

__all__ = ["MediaWikiServer", "MediaWikiStats", "normalize_title", "serve_mediawiki"]

API_PATH = "/w/api.php"
_PROPS = frozenset({"info", "pageprops", "extracts", "revisions"})
_WHITESPACE = re.compile(r"\s+")


@dataclass(slots=True)
class MediaWikiStats:
    """What the server saw.

    ``requests`` counts per kind of query: ``"info"`` (the page lookup ``wikipedia.page`` makes), ``"extracts"``
    (``content`` / ``summary``), ``"revisions"`` (HTML, a disambiguation page's options), ``"unsupported"``, and
    ``"http_error"`` for answers from ``http_errors``. A request with several props counts once, for the first of
    info, extracts, revisions it asks for. ``titles`` counts requests per (normalized) title asked for.
    """

    requests: Counter[str] = field(default_factory=Counter)
    titles: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def normalize_title(title: str) -> str:
    """MediaWiki's title normalization, the part that matters here: ``_`` is a space, the first letter upper."""
    text = _WHITESPACE.sub(" ", title.replace("_", " ")).strip()
    return text[:1].upper() + text[1:]


class MediaWikiServer:
    """The state behind one fake server; built by `serve_mediawiki`. Its settings may be changed while it runs."""

    def __init__(
        self,
        pages: Mapping[str, str],
        *,
        disambiguations: Mapping[str, Sequence[str]] | None = None,
        redirects: Mapping[str, str] | None = None,
        http_errors: Mapping[str, int] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.pages: dict[str, str] = {normalize_title(title): text for title, text in pages.items()}
        self.disambiguations: dict[str, tuple[str, ...]] = {
            normalize_title(title): tuple(options) for title, options in (disambiguations or {}).items()
        }
        self.redirects: dict[str, str] = {
            normalize_title(source): normalize_title(target) for source, target in (redirects or {}).items()
        }
        self.http_errors: dict[str, int] = {normalize_title(title): code for title, code in (http_errors or {}).items()}
        self.delay_s = delay_s
        self.stats = MediaWikiStats()
        self.host = ""
        self.port = 0
        self._closing = asyncio.Event()

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``; page URLs are ``{base_url}/wiki/Title_with_underscores``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        """``http://HOST:PORT/w/api.php``, what ``wikipedia.wikipedia.API_URL`` takes."""
        return self.base_url + API_PATH

    def page_url(self, title: str) -> str:
        return f"{self.base_url}/wiki/{quote(normalize_title(title).replace(' ', '_'), safe='/:(),!*')}"

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(API_PATH, self._handle)
        return app

    # -- one request ---------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        stats = self.stats
        stats.in_flight += 1
        try:
            if self.delay_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.delay_s)
                if self._closing.is_set():
                    return web.Response(status=503, text="shutting down")
            return self._answer(request.query)
        finally:
            stats.in_flight -= 1

    def _answer(self, params: Mapping[str, str]) -> web.Response:
        props = frozenset(params.get("prop", "").split("|")) - {""}
        kind = next((name for name in ("info", "extracts", "revisions") if name in props), "unsupported")
        if (
            params.get("format") != "json"
            or params.get("action", "query") != "query"
            or not props
            or not props <= _PROPS
            or any(key in params for key in ("list", "meta", "generator"))
            or not ("titles" in params or "pageids" in params)
        ):
            self.stats.requests["unsupported"] += 1
            unsupported = {key: value for key, value in params.items() if key != "format"}
            return web.json_response(
                {"error": {"code": "unsupported", "info": f"the fake MediaWiki API cannot answer {unsupported}"}}
            )

        query: dict[str, Any] = {}
        pages: dict[str, Any] = {}
        if "titles" in params:
            normalized: list[dict[str, str]] = []
            redirected: list[dict[str, str]] = []
            for asked in params["titles"].split("|"):
                title = normalize_title(asked)
                self.stats.titles[title] += 1
                if title != asked:
                    normalized.append({"from": asked, "to": title})
                if title in self.http_errors:
                    self.stats.requests["http_error"] += 1
                    status = self.http_errors[title]
                    return web.Response(
                        status=status, text=f"<html><body>Error {status}</body></html>", content_type="text/html"
                    )
                if "redirects" in params and title in self.redirects:
                    redirected.append({"from": title, "to": self.redirects[title]})
                    title = self.redirects[title]
                key, entry = self._entry(title, props, params, missing_key=-1 - len(pages))
                pages[key] = entry
            if normalized:
                query["normalized"] = normalized
            if redirected:
                query["redirects"] = redirected
        else:
            by_id = {str(self._pageid(title)): title for title in self._titles()}
            for asked_id in params["pageids"].split("|"):
                if asked_id in by_id:
                    self.stats.titles[by_id[asked_id]] += 1
                    key, entry = self._entry(by_id[asked_id], props, params, missing_key=-1)
                else:
                    key, entry = asked_id, {"pageid": int(asked_id) if asked_id.isdigit() else 0, "missing": ""}
                pages[key] = entry
        self.stats.requests[kind] += 1
        query["pages"] = pages
        return web.json_response({"batchcomplete": "", "query": query})

    def _titles(self) -> list[str]:
        return [*self.pages, *(title for title in self.disambiguations if title not in self.pages)]

    def _pageid(self, title: str) -> int:
        return 1000 + self._titles().index(title)

    def _entry(
        self, title: str, props: frozenset[str], params: Mapping[str, str], *, missing_key: int
    ) -> tuple[str, dict[str, Any]]:
        options = self.disambiguations.get(title)
        text = self.pages.get(title)
        if text is None and options is None:
            return str(missing_key), {"ns": 0, "title": title, "missing": ""}
        if options is not None:
            text = f"{title} may refer to:\n" + "\n".join(options)
        assert text is not None
        pageid = self._pageid(title)
        revid = 100_000 + 10 * pageid
        entry: dict[str, Any] = {"pageid": pageid, "ns": 0, "title": title}
        if "info" in props:
            entry.update(
                contentmodel="wikitext",
                pagelanguage="en",
                pagelanguagehtmlcode="en",
                pagelanguagedir="ltr",
                touched="2024-01-01T00:00:00Z",
                lastrevid=revid,
                length=len(text.encode()),
            )
            if "url" in params.get("inprop", "").split("|"):
                url = self.page_url(title)
                entry.update(
                    fullurl=url,
                    editurl=f"{self.base_url}/w/index.php?title={url.rsplit('/', 1)[1]}&action=edit",
                    canonicalurl=url,
                )
        if "pageprops" in props and options is not None:
            wanted = params.get("ppprop")
            if wanted is None or "disambiguation" in wanted.split("|"):
                entry["pageprops"] = {"disambiguation": ""}
        if "extracts" in props:
            extract = text.split("\n\n", 1)[0] if "exintro" in params else text
            entry["extract"] = extract if "explaintext" in params else _html(title, extract, ())
        if "revisions" in props:
            rvprop = params.get("rvprop", "ids|timestamp|flags|comment|user").split("|")
            revision: dict[str, Any] = {}
            if "ids" in rvprop:
                revision.update(revid=revid, parentid=revid - 1)
            if "content" in rvprop:
                revision["contentformat"] = "text/x-wiki"
                revision["contentmodel"] = "wikitext"
                revision["*"] = _html(title, text, options or ()) if "rvparse" in params else text
            entry["revisions"] = [revision]
        return str(pageid), entry


def _html(title: str, text: str, options: Sequence[str]) -> str:
    if options:
        items = "".join(
            f'<li><a href="/wiki/{quote(option.replace(" ", "_"))}" title="{html.escape(option)}">'
            f"{html.escape(option)}</a></li>"
            for option in options
        )
        return f"<div><p><b>{html.escape(title)}</b> may refer to:</p><ul>{items}</ul></div>"
    paragraphs = (html.escape(paragraph) for paragraph in text.split("\n\n") if paragraph.strip())
    return "<div>" + "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs) + "</div>"


@contextlib.asynccontextmanager
async def serve_mediawiki(
    pages: Mapping[str, str],
    *,
    disambiguations: Mapping[str, Sequence[str]] | None = None,
    redirects: Mapping[str, str] | None = None,
    http_errors: Mapping[str, int] | None = None,
    delay_s: float = 0.0,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[MediaWikiServer]:
    """Serve a fake MediaWiki API on ``host:port`` (0 picks a free port) in the running asyncio loop.

    ``pages`` maps titles to plain text (paragraphs separated by blank lines); ``disambiguations`` maps titles to
    the pages they may refer to; ``redirects`` maps titles to the titles they redirect to; ``http_errors`` maps
    titles to an HTTP status to answer with. On exit the listening socket closes, requests waiting out ``delay_s``
    are answered 503 at once, and the runner is cleaned up in a shielded scope bounded to a few seconds.
    """
    server = MediaWikiServer(
        pages, disambiguations=disambiguations, redirects=redirects, http_errors=http_errors, delay_s=delay_s
    )
    app = server.make_app()
    async with running_app(app, host=host, port=port, shutdown_timeout=2.0, closing=server._closing) as listener:
        server.host, server.port = host, listener.port
        yield server
