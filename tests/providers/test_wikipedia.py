"""Wikipedia pages as documents: the real `wikipedia` package, over real HTTP, against a fake MediaWiki API."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
import wikipedia

from judgeflow.inputs.documents import DocumentError
from judgeflow.protocol.messages import Document
from judgeflow.providers.wikipedia import RECIPE_CITIES, fetch_wikipedia
from judgeflow.testing.mediawiki_server import serve_mediawiki

PAGES = {
    "History of Paris": "Paris grew on an island in the Seine.\n\nThe Romans called it Lutetia.",
    "History of Tokyo": "Tokyo was once a fishing village named Edo.\n\nIt became the capital in 1868.",
}


@pytest.fixture(autouse=True)
def no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``requests`` honours proxy variables; the fake server on 127.0.0.1 must be reached directly."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    original = _endpoint()
    yield
    assert _endpoint() == original, "fetch_wikipedia did not restore wikipedia.wikipedia.API_URL"


def _endpoint() -> str:
    return str(wikipedia.wikipedia.API_URL)


async def _wait_for_endpoint(url: str) -> None:
    """An abandoned fetch restores the endpoint when its own request ends; give it a moment."""
    for _ in range(500):
        if _endpoint() == url:
            return
        await anyio.sleep(0.01)
    pytest.fail(f"wikipedia.wikipedia.API_URL is still {_endpoint()!r}, not {url!r}")


@pytest.mark.anyio
async def test_fetches_pages_as_documents_and_restores_the_endpoint(tmp_path: Path) -> None:
    original = _endpoint()
    async with serve_mediawiki(PAGES) as server:
        documents = await fetch_wikipedia(
            ["History of Paris", "History_of_Tokyo"], cache_dir=tmp_path, api_url=server.api_url
        )
        assert _endpoint() == original
        assert documents == [
            Document(
                id="history_of_paris",
                title="History of Paris",
                text=PAGES["History of Paris"],
                source=f"{server.base_url}/wiki/History_of_Paris",
            ),
            Document(
                id="history_of_tokyo",
                title="History of Tokyo",
                text=PAGES["History of Tokyo"],
                source=f"{server.base_url}/wiki/History_of_Tokyo",
            ),
        ]
        # wikipedia.page() asks for info, .content for the extract: two requests a page, nothing else.
        assert server.stats.requests == {"info": 2, "extracts": 2}
        assert server.stats.titles == {"History of Paris": 2, "History of Tokyo": 2}
    cached = json.loads((tmp_path / "wikipedia" / "history_of_paris.json").read_text(encoding="utf-8"))
    assert cached == {
        "request": "History of Paris",
        "api_url": server.api_url,
        "title": "History of Paris",
        "url": f"{server.base_url}/wiki/History_of_Paris",
        "content": PAGES["History of Paris"],
    }
    assert sorted(path.name for path in (tmp_path / "wikipedia").iterdir()) == [
        "history_of_paris.json",
        "history_of_tokyo.json",
    ]


@pytest.mark.anyio
async def test_cache_hit_makes_no_request(tmp_path: Path) -> None:
    async with serve_mediawiki(PAGES) as server:
        first = await fetch_wikipedia(["History of Paris"], cache_dir=tmp_path, api_url=server.api_url)
        assert server.stats.total == 2
        again = await fetch_wikipedia(["History of Paris"], cache_dir=tmp_path, api_url=server.api_url)
        assert again == first
        assert server.stats.total == 2
        mixed = await fetch_wikipedia(
            ["History of Tokyo", "History of Paris"], cache_dir=tmp_path, api_url=server.api_url
        )
        assert [document.id for document in mixed] == ["history_of_tokyo", "history_of_paris"]
        assert server.stats.titles == {"History of Paris": 2, "History of Tokyo": 2}


@pytest.mark.anyio
async def test_without_cache_dir_every_fetch_asks_the_server() -> None:
    async with serve_mediawiki(PAGES) as server:
        await fetch_wikipedia(["History of Paris"], cache_dir=None, api_url=server.api_url)
        await fetch_wikipedia(["History of Paris"], cache_dir=None, api_url=server.api_url)
        assert server.stats.total == 4


@pytest.mark.anyio
async def test_unreadable_or_foreign_cache_file_is_fetched_again_and_replaced(tmp_path: Path) -> None:
    cache_file = tmp_path / "wikipedia" / "history_of_paris.json"
    cache_file.parent.mkdir()
    async with serve_mediawiki(PAGES) as server:
        cache_file.write_text('{"request": "History of Paris", "title": ', encoding="utf-8")
        [document] = await fetch_wikipedia(["History of Paris"], cache_dir=tmp_path, api_url=server.api_url)
        assert document.text == PAGES["History of Paris"]
        assert server.stats.total == 2
        record = json.loads(cache_file.read_text(encoding="utf-8"))
        cache_file.write_text(json.dumps({**record, "api_url": "http://elsewhere.invalid/w/api.php"}), encoding="utf-8")
        await fetch_wikipedia(["History of Paris"], cache_dir=tmp_path, api_url=server.api_url)
        assert server.stats.total == 4
        assert json.loads(cache_file.read_text(encoding="utf-8")) == record
    assert [path.name for path in cache_file.parent.iterdir()] == ["history_of_paris.json"]


@pytest.mark.anyio
async def test_missing_page_is_a_document_error_naming_the_title(tmp_path: Path) -> None:
    async with serve_mediawiki(PAGES) as server:
        with pytest.raises(DocumentError) as caught:
            await fetch_wikipedia(
                ["History of Paris", "History of Atlantis"], cache_dir=tmp_path, api_url=server.api_url
            )
    assert caught.value.title == "History of Atlantis"
    assert str(caught.value) == f"document 'History of Atlantis': no such page on {server.api_url}"
    assert isinstance(caught.value.__cause__, wikipedia.PageError)
    assert not (tmp_path / "wikipedia" / "history_of_atlantis.json").exists()


@pytest.mark.anyio
async def test_disambiguation_page_is_a_document_error_listing_the_options(tmp_path: Path) -> None:
    options = ["Paris (mythology)", "Paris, Texas", "Paris Hilton"]
    async with serve_mediawiki(PAGES, disambiguations={"Paris": options}) as server:
        with pytest.raises(DocumentError) as caught:
            await fetch_wikipedia(["Paris"], cache_dir=tmp_path, api_url=server.api_url)
        # The package reads the options from the page's parsed HTML.
        assert server.stats.requests == {"info": 1, "revisions": 1}
    assert str(caught.value) == (
        "document 'Paris': is a disambiguation page, not an article "
        "(it may refer to: Paris (mythology), Paris, Texas, Paris Hilton)"
    )


@pytest.mark.anyio
async def test_redirect_is_followed_and_the_id_comes_from_the_title_asked_for(tmp_path: Path) -> None:
    async with serve_mediawiki(PAGES, redirects={"Edo history": "History of Tokyo"}) as server:
        [document] = await fetch_wikipedia(["Edo history"], cache_dir=tmp_path, api_url=server.api_url)
        assert server.stats.titles == {"Edo history": 1, "History of Tokyo": 2}
    assert (document.id, document.title) == ("edo_history", "History of Tokyo")
    assert document.source == f"{server.base_url}/wiki/History_of_Tokyo"


@pytest.mark.anyio
async def test_slow_server_times_out(tmp_path: Path) -> None:
    original = _endpoint()
    async with serve_mediawiki(PAGES, delay_s=30.0) as server:
        with pytest.raises(DocumentError) as caught:
            await fetch_wikipedia(["History of Paris"], cache_dir=tmp_path, timeout_s=0.3, api_url=server.api_url)
        assert server.stats.in_flight == 1
    assert str(caught.value) == f"document 'History of Paris': no answer from {server.api_url} within 0.3 s"
    # Closing the server releases the abandoned request; its thread then puts the endpoint back.
    await _wait_for_endpoint(original)


@pytest.mark.anyio
async def test_next_fetch_after_a_timeout_waits_for_the_abandoned_one() -> None:
    original = _endpoint()
    async with serve_mediawiki(PAGES) as fast:
        async with serve_mediawiki(PAGES, delay_s=30.0) as slow:
            with pytest.raises(DocumentError, match="no answer"):
                await fetch_wikipedia(["History of Paris"], cache_dir=None, timeout_s=0.2, api_url=slow.api_url)
            # The abandoned fetch still holds the endpoint: a fetch elsewhere waits for it, within its own timeout.
            with pytest.raises(DocumentError) as caught:
                await fetch_wikipedia(["History of Tokyo"], cache_dir=None, timeout_s=0.2, api_url=fast.api_url)
            assert str(caught.value) == (
                "document 'History of Tokyo': waited 0.2 s for an earlier fetch that timed out and still holds the "
                "endpoint"
            )
        # Closing the slow server ends the abandoned request; the thread that gave up waiting sends nothing.
        await _wait_for_endpoint(original)
        [document] = await fetch_wikipedia(["History of Tokyo"], cache_dir=None, timeout_s=5, api_url=fast.api_url)
        assert document.title == "History of Tokyo"
        assert fast.stats.titles == {"History of Tokyo": 2}


@pytest.mark.anyio
async def test_http_error_page_is_a_document_error(tmp_path: Path) -> None:
    async with serve_mediawiki(PAGES, http_errors={"History of Paris": 503}) as server:
        with pytest.raises(DocumentError) as caught:
            await fetch_wikipedia(["History of Paris"], cache_dir=tmp_path, api_url=server.api_url)
    assert str(caught.value) == (
        f"document 'History of Paris': {server.api_url} did not answer with JSON (an HTTP error page?): "
        "'<html><body>Error 503</body></html>'"
    )


@pytest.mark.anyio
async def test_unreachable_endpoint_is_a_document_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api_url = f"http://127.0.0.1:{port}/w/api.php"
    with pytest.raises(DocumentError) as caught:
        await fetch_wikipedia(["History of Paris"], cache_dir=tmp_path, timeout_s=5, api_url=api_url)
    assert str(caught.value) == f"document 'History of Paris': cannot connect to {api_url} (ConnectionError)"


@pytest.mark.anyio
async def test_titles_that_share_an_id_are_refused_before_any_request(tmp_path: Path) -> None:
    async with serve_mediawiki(PAGES) as server:
        with pytest.raises(DocumentError, match="gives the same id 'history_of_paris' as 'History of Paris'"):
            await fetch_wikipedia(["History of Paris", "History_of_Paris"], cache_dir=tmp_path, api_url=server.api_url)
        with pytest.raises(DocumentError, match="not a usable title"):
            await fetch_wikipedia(["..."], cache_dir=tmp_path, api_url=server.api_url)
        with pytest.raises(ValueError, match="timeout_s must be positive"):
            await fetch_wikipedia(["History of Paris"], cache_dir=tmp_path, timeout_s=0, api_url=server.api_url)
        assert server.stats.total == 0


@pytest.mark.anyio
async def test_concurrent_fetches_from_two_endpoints_do_not_mix(tmp_path: Path) -> None:
    results: dict[str, list[Document]] = {}

    async def fetch(name: str, api_url: str) -> None:
        results[name] = await fetch_wikipedia(["History of Paris", "History of Tokyo"], cache_dir=None, api_url=api_url)

    other = {title: f"{text} (second server)" for title, text in PAGES.items()}
    async with serve_mediawiki(PAGES) as first, serve_mediawiki(other) as second, anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(fetch, "first", first.api_url)
            tg.start_soon(fetch, "second", second.api_url)
    assert [document.text for document in results["first"]] == list(PAGES.values())
    assert [document.text for document in results["second"]] == list(other.values())


@pytest.mark.anyio
async def test_fake_server_answers_the_other_page_accessors() -> None:
    """summary, revision_id and html() ride on the same queries; a search is refused the MediaWiki way."""
    original = _endpoint()

    def read(api_url: str) -> tuple[str, int, str]:
        wikipedia.wikipedia.API_URL = api_url
        try:
            page = wikipedia.page("History of Paris", auto_suggest=False)
            result = (page.summary, page.revision_id, page.html())
            with pytest.raises(wikipedia.WikipediaException, match="cannot answer"):
                wikipedia.search("Paris")
            return result
        finally:
            wikipedia.wikipedia.API_URL = original

    async with serve_mediawiki(PAGES) as server:
        summary, revision_id, page_html = await anyio.to_thread.run_sync(read, server.api_url)
        assert server.stats.requests["unsupported"] == 1
    assert summary == "Paris grew on an island in the Seine."
    assert revision_id == 110_000
    assert page_html == "<div><p>Paris grew on an island in the Seine.</p><p>The Romans called it Lutetia.</p></div>"


def test_recipe_cities_are_the_eight_history_pages() -> None:
    assert len(RECIPE_CITIES) == 8
    assert all(title.startswith("History of ") for title in RECIPE_CITIES)


@pytest.mark.live
@pytest.mark.anyio
async def test_live_fetches_one_real_page(tmp_path: Path) -> None:
    [document] = await fetch_wikipedia(["History of Paris"], cache_dir=tmp_path, timeout_s=60)
    assert document.id == "history_of_paris"
    assert document.source.endswith("/wiki/History_of_Paris")
    assert "Paris" in document.text
    assert len(document.text) > 10_000
