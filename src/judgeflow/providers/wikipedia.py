"""Wikipedia pages as documents, through the `wikipedia` package (the only judgeflow module that imports it).

``await fetch_wikipedia(RECIPE_CITIES, cache_dir=Path(".cache"))`` returns one `Document` per title, in order:
its id is `judgeflow.inputs.documents.slugify` of the title as asked (``history_of_paris``), its title the page's own
title (after redirects), its text the page's plain text, its source the page URL.

Three facts about ``wikipedia`` 1.4.0 shape this module:

* It is synchronous ``requests`` with no timeout. Each page is fetched in a worker thread under
  ``anyio.fail_after(timeout_s)`` (per page) with ``abandon_on_cancel=True``: a timeout or a cancellation returns
  at once, and the abandoned thread finishes its HTTP request on its own.
* Its endpoint is one global, ``wikipedia.wikipedia.API_URL`` (``wikipedia.API_URL`` is a copy that nothing
  reads). With ``api_url`` given it is set for the duration of one page fetch and restored afterwards. That
  happens inside the worker thread, under a process-wide lock held for the whole fetch, so that every request of
  a fetch goes to the same endpoint even if the fetch was abandoned: restoring the global while an abandoned
  thread still runs would send its next request to the real Wikipedia. The price: after a timeout the endpoint
  (and the lock) stay with the abandoned fetch until its request ends, and the next fetch waits for the lock
  within its own ``timeout_s``. For the same reason pages are fetched one after the other, which is also what
  Wikipedia asks of API clients.
* It parses a disambiguation page with ``BeautifulSoup(html)`` and no parser name, which makes bs4 warn
  (``GuessedAtParserWarning``; an error under ``-W error``). The fetch pins the parser to ``html.parser`` for the
  same duration, under the same lock.

Every failure becomes a `DocumentError` naming the title: a missing page, a disambiguation page (with the
pages it may refer to), a timeout, a connection or HTTP error, an answer that is not JSON or not shaped like a
MediaWiki answer.

With ``cache_dir``, each page is stored as ``<cache_dir>/wikipedia/<id>.json`` (``request``, ``api_url``,
``title``, ``url``, ``content``), written atomically, and read before any request is made. A cache file is used
only for the same requested title and endpoint; one that is unreadable or for something else is fetched again
and overwritten.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread
import requests
import wikipedia
from bs4 import BeautifulSoup
from wikipedia import wikipedia as _api

from judgeflow.inputs.documents import DocumentError, slugify
from judgeflow.protocol.messages import Document

__all__ = ["RECIPE_CITIES", "DocumentError", "fetch_wikipedia"]

RECIPE_CITIES: tuple[str, ...] = (
    "History of San Francisco",
    "History of Toronto",
    "History of New York City",
    "History of Vancouver",
    "History of Montreal",
    "History of Tokyo",
    "History of Singapore",
    "History of Paris",
)

CACHE_SUBDIR = "wikipedia"

_ENDPOINT_LOCK = threading.Lock()
# The package's own endpoint while one of our fetches has replaced it (so that messages and cache records of a
# fetch without ``api_url`` never name a replacement left in place by an abandoned thread).
_replaced_endpoint: str | None = None
_HTML_SOUP = functools.partial(BeautifulSoup, features="html.parser")


@dataclass(frozen=True, slots=True)
class _Page:
    title: str
    url: str
    content: str


@dataclass(frozen=True, slots=True)
class _Attempt:
    """Flags shared by one fetch and its worker thread, which may outlive it."""

    started: threading.Event = field(default_factory=threading.Event)
    """Set by the thread once it holds the endpoint."""
    abandoned: threading.Event = field(default_factory=threading.Event)
    """Set by the caller when it stops waiting: a thread that has not started yet then does nothing."""


async def fetch_wikipedia(
    titles: Sequence[str],
    *,
    cache_dir: Path | None,
    timeout_s: float = 30.0,
    api_url: str | None = None,
) -> list[Document]:
    """The pages ``titles`` as documents, in order; see the module docstring.

    ``timeout_s`` bounds each page fetch (cache reads are not counted); ``api_url`` replaces the endpoint
    (``http://HOST/w/api.php``) for these fetches only. Raises `DocumentError` on the first page that fails.
    """
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    ids: dict[str, str] = {}
    for title in titles:
        doc_id = slugify(title)
        if not doc_id:
            raise DocumentError(title, "not a usable title (it gives an empty id)")
        if doc_id in ids:
            raise DocumentError(title, f"gives the same id {doc_id!r} as {ids[doc_id]!r}: list each page once")
        ids[doc_id] = title
    return [
        await _fetch_document(title, doc_id, cache_dir=cache_dir, timeout_s=timeout_s, api_url=api_url)
        for doc_id, title in ids.items()
    ]


async def _fetch_document(
    title: str, doc_id: str, *, cache_dir: Path | None, timeout_s: float, api_url: str | None
) -> Document:
    endpoint = api_url if api_url is not None else _default_endpoint()
    cache_file = cache_dir / CACHE_SUBDIR / f"{doc_id}.json" if cache_dir is not None else None
    page = None
    if cache_file is not None:
        page = await anyio.to_thread.run_sync(_read_cache, cache_file, title, endpoint)
    if page is None:
        attempt = _Attempt()
        try:
            with anyio.fail_after(timeout_s):
                page = await anyio.to_thread.run_sync(
                    _fetch_page, title, api_url, attempt, timeout_s + 1.0, abandon_on_cancel=True
                )
        except TimeoutError:
            attempt.abandoned.set()
            if attempt.started.is_set():
                raise DocumentError(title, f"no answer from {endpoint} within {timeout_s:g} s") from None
            page = None
        except (wikipedia.WikipediaException, requests.RequestException, LookupError, TypeError, ValueError) as error:
            raise DocumentError(title, _reason(error, endpoint)) from error
        finally:
            attempt.abandoned.set()
        if page is None:
            reason = f"waited {timeout_s:g} s for an earlier fetch that timed out and still holds the endpoint"
            raise DocumentError(title, reason)
        if not page.content.strip():
            raise DocumentError(title, f"the page {page.title!r} on {endpoint} has no text")
        if cache_file is not None:
            try:
                await anyio.to_thread.run_sync(_write_cache, cache_file, title, endpoint, page)
            except OSError as error:
                raise DocumentError(title, f"cannot write the cache file {cache_file} ({error})") from error
    return Document(id=doc_id, title=page.title, text=page.content.strip(), source=page.url)


def _fetch_page(title: str, api_url: str | None, attempt: _Attempt, lock_wait_s: float) -> _Page | None:
    """One page through the `wikipedia` package; runs in a worker thread and may outlive its caller.

    Returns None when the endpoint stayed busy or the caller gave up while this thread was waiting for it.
    """
    # The wait is bounded (a bit longer than the caller's) so that a thread abandoned behind a request that hangs
    # for ever does not wait for ever too.
    if not _ENDPOINT_LOCK.acquire(timeout=lock_wait_s):
        return None
    try:
        if attempt.abandoned.is_set():
            return None
        attempt.started.set()
        return _fetch_page_locked(title, api_url)
    finally:
        _ENDPOINT_LOCK.release()


def _fetch_page_locked(title: str, api_url: str | None) -> _Page:
    global _replaced_endpoint
    saved = _api.API_URL, _api.BeautifulSoup
    try:
        if api_url is not None:
            _replaced_endpoint = saved[0]
            _api.API_URL = api_url
        _api.BeautifulSoup = _HTML_SOUP
        page = wikipedia.page(title, auto_suggest=False)
        return _Page(title=str(page.title), url=str(page.url), content=str(page.content))
    finally:
        _api.API_URL, _api.BeautifulSoup = saved
        _replaced_endpoint = None


def _default_endpoint() -> str:
    replaced = _replaced_endpoint
    return replaced if replaced is not None else str(_api.API_URL)


def _reason(error: Exception, endpoint: str) -> str:
    """What went wrong, in words, for a `DocumentError`."""
    if isinstance(error, wikipedia.DisambiguationError):
        options = [str(option) for option in error.options]
        shown = ", ".join(options[:8]) + (f" and {len(options) - 8} more" if len(options) > 8 else "")
        return "is a disambiguation page, not an article" + (f" (it may refer to: {shown})" if options else "")
    if isinstance(error, wikipedia.PageError):
        return f"no such page on {endpoint}"
    if isinstance(error, wikipedia.HTTPTimeoutError):
        return f"{endpoint} reported a timeout: try again later"
    if isinstance(error, wikipedia.WikipediaException):
        return f"{endpoint} reported an error: {error.error}"
    if isinstance(error, requests.JSONDecodeError):
        snippet = " ".join(str(error.doc).split())[:120]
        return f"{endpoint} did not answer with JSON (an HTTP error page?): {snippet!r}"
    if isinstance(error, requests.ConnectionError):
        return f"cannot connect to {endpoint} ({type(error).__name__})"
    if isinstance(error, requests.RequestException):
        return f"the HTTP request to {endpoint} failed ({type(error).__name__}: {error})"
    return f"unexpected answer from {endpoint} ({type(error).__name__}: {error})"


def _read_cache(path: Path, title: str, endpoint: str) -> _Page | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("request") != title or data.get("api_url") != endpoint:
        return None
    fields = {key: data.get(key) for key in ("title", "url", "content")}
    if not all(isinstance(value, str) for value in fields.values()):
        return None
    return _Page(title=data["title"], url=data["url"], content=data["content"])


def _write_cache(path: Path, title: str, endpoint: str, page: _Page) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"request": title, "api_url": endpoint, **asdict(page)}
    # Write then rename, so that a crash or a concurrent reader never sees half a file.
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    partial.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
