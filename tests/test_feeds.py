"""Feed sync end to end: a real HTTP server on 127.0.0.1 serving feeds and article pages, the real
MiniLM embedder, FAISS and SQLite. Nothing here touches the internet."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import RAG, Settings, feeds
from rag.index.check import check_index
from rag.testing import ExtractiveFakeGenerator

from .feed_server import FeedServer, Route, article_page, http_date, rss

pytestmark = pytest.mark.real_models

BREAKWATER = [
    "The harbour authority in Valmora approved a new breakwater on Monday after two winters of storm damage to the fishing fleet.",
    "Engineers said the 400-metre wall would cost 38 million euros and take three years to build.",
    "Fishermen welcomed the decision but warned that the works must not close the harbour mouth during the sardine season.",
]
FERRY = [
    "A new electric ferry between Valmora and the island of Teso entered service on Tuesday, cutting the crossing to 35 minutes.",
    "The operator said the two batteries are charged from the harbour's solar roof overnight.",
    "Islanders had campaigned for a faster link for a decade, after the old diesel ferry broke down twice last summer.",
]
LIBRARY = [
    "Valmora's public library reopened on Wednesday after a year of repairs to its flooded basement archive.",
    "Volunteers dried and scanned more than 12,000 pages of the town's 19th-century harbour records.",
    "The archive will now be kept on the second floor, above the reach of the river.",
]


@pytest.fixture
def server():
    srv = FeedServer()
    yield srv
    srv.close()


def _open(tmp_path: Path, minilm, **settings: object) -> RAG:
    values: dict[str, object] = {"index_dir": tmp_path / "index", "seeds_dir": None, "feed_host_interval": 0.0, **settings}
    return RAG.open(settings=Settings(**values), embedder=minilm, llm=ExtractiveFakeGenerator())


def _subscribed(tmp_path: Path, minilm, url: str, **settings: object) -> RAG:
    rag = _open(tmp_path, minilm, **settings)
    feeds.add(rag, url)
    return rag


def _item(server: FeedServer, slug: str, title: str, description: str, date: str = "Mon, 04 Mar 2024 09:00:00 GMT") -> dict[str, str]:
    return {"title": title, "link": server.url(f"/news/{slug}"), "guid": f"urn:gazette:{slug}", "description": description,
            "pubDate": date, "author": "desk@gazette.example (Ana Ruiz)"}


def _serve_feed(server: FeedServer, items: list[dict[str, str]], etag: str = '"v1"', **route: object) -> str:
    server.routes["/coast.rss"] = Route(rss("Harbour Gazette - Coast", items), content_type="application/rss+xml",
                                        etag=etag, last_modified=http_date(1_709_542_800), **route)  # type: ignore[arg-type]
    return server.url("/coast.rss")


def _page_requests(server: FeedServer) -> list[str]:
    return [r.path for r in server.log if r.path.startswith("/news/")]


def test_a_new_item_is_ingested_by_one_sync_with_its_metadata(server: FeedServer, tmp_path: Path, minilm):
    server.routes["/news/breakwater"] = Route(article_page("Valmora approves breakwater", BREAKWATER, author="Ana Ruiz"))
    url = _serve_feed(server, [_item(server, "breakwater", "Valmora approves a breakwater", "The harbour authority approved it.")])
    rag = _open(tmp_path, minilm)
    feed, new = feeds.add(rag, url)
    assert new and feeds.add(rag, url) == (feed, False)

    report = feeds.sync(rag)
    assert report.summary().startswith("1 feed synced (0 failed): 1 added, 0 updated"), report.summary()
    [article] = rag.articles()
    assert article.id == report.added[0]
    # The item's headline, date and link; the page's text; the author and publisher from them.
    assert (article.title, article.url, article.published.isoformat()) == (
        "Valmora approves a breakwater", server.url("/news/breakwater"), "2024-03-04")
    assert article.source == "Harbour Gazette" and article.author
    text = rag.article_text(article.id) or ""
    assert "38 million euros" in text and "Subscribe to our newsletter" not in text and "Home" not in text.split()
    assert rag.search("How much will the sea wall cost?", k=1)[0].article.id == article.id

    [state] = feeds.feeds(rag)
    assert (state.etag, state.last_status, state.title) == ('"v1"', "updated", "Harbour Gazette - Coast")
    assert state.last_modified and state.last_sync
    assert check_index(rag.store.directory).problems == []
    rag.close()


def test_an_unchanged_feed_answers_304_and_no_page_is_fetched(server: FeedServer, tmp_path: Path, minilm):
    server.routes["/news/breakwater"] = Route(article_page("Valmora approves breakwater", BREAKWATER))
    url = _serve_feed(server, [_item(server, "breakwater", "Valmora approves a breakwater", "Approved.")])
    rag = _subscribed(tmp_path, minilm, url)
    feeds.sync(rag)
    assert _page_requests(server) == ["/news/breakwater"]

    report = feeds.sync(rag)
    last = server.requests_for("/coast.rss")[-1]
    assert last.headers.get("if-none-match") == '"v1"' and last.headers.get("if-modified-since")
    assert last.status == 304
    assert _page_requests(server) == ["/news/breakwater"]  # nothing more
    assert report.feeds[0].status == "unchanged" and not report.added and report.ingest is None

    # A new ETag with the same items: the feed is read, the seen item is not fetched again.
    _serve_feed(server, [_item(server, "breakwater", "Valmora approves a breakwater", "Approved.")], etag='"v2"')
    report = feeds.sync(rag)
    assert server.requests_for("/coast.rss")[-1].status == 200
    assert _page_requests(server) == ["/news/breakwater"] and report.feeds[0].skipped == 1
    assert feeds.feeds(rag)[0].etag == '"v2"'
    rag.close()


def test_a_broken_page_is_its_own_error_and_the_rest_is_ingested(server: FeedServer, tmp_path: Path, minilm):
    server.routes["/news/breakwater"] = Route(article_page("Valmora approves breakwater", BREAKWATER))
    server.routes["/news/ferry"] = Route(b"<html><body><script>render()</script></body></html>")  # text built by JS
    server.routes["/news/library"] = Route(b"upstream exploded", status=500)
    server.routes["/news/report.pdf"] = Route(b"%PDF-1.7 ...", content_type="application/pdf")
    items = [
        _item(server, "breakwater", "Valmora approves a breakwater", "Approved."),
        _item(server, "ferry", "Electric ferry to Teso", "A new ferry."),
        _item(server, "library", "Library reopens", "Reopened."),
        _item(server, "report.pdf", "The harbour report", "A PDF."),
    ]
    url = _serve_feed(server, items)
    rag = _subscribed(tmp_path, minilm, url)
    report = feeds.sync(rag)

    assert [a.title for a in rag.articles()] == ["Valmora approves a breakwater"]
    errors = {e.item.rsplit("/", 1)[-1]: e.reason for e in report.feeds[0].errors}
    assert set(errors) == {"ferry", "library", "report.pdf"}
    assert "no readable article text" in errors["ferry"]
    assert errors["library"] == "HTTP 500 Internal Server Error"
    assert "not an HTML page (Content-Type application/pdf)" in errors["report.pdf"]
    assert any("item failed" == row[1] and "/news/library: HTTP 500" in row[2] for row in report.rows())

    # Failed items are retried: the feed is asked for in full (a 304 would hide them), and the
    # fixed page goes in while the seen one is not fetched again.
    server.routes["/news/library"] = Route(article_page("Library reopens", LIBRARY))
    before = len(_page_requests(server))
    report = feeds.sync(rag)
    assert "if-none-match" not in server.requests_for("/coast.rss")[-1].headers
    assert sorted(_page_requests(server)[before:]) == ["/news/ferry", "/news/library", "/news/report.pdf"]
    assert len(report.added) == 1 and rag.articles(search="Library")[0].id == report.added[0]
    rag.close()


def test_an_edited_item_updates_its_article(server: FeedServer, tmp_path: Path, minilm):
    server.routes["/news/ferry"] = Route(article_page("Electric ferry to Teso", FERRY))
    url = _serve_feed(server, [_item(server, "ferry", "Electric ferry to Teso", "A new ferry.")])
    rag = _subscribed(tmp_path, minilm, url)
    [article_id] = feeds.sync(rag).added

    corrected = [FERRY[0].replace("35 minutes", "40 minutes"), *FERRY[1:],
                 "Correction: an earlier version of this article gave the crossing time as 35 minutes."]
    server.routes["/news/ferry"] = Route(article_page("Electric ferry to Teso", corrected))
    _serve_feed(server, [_item(server, "ferry", "Electric ferry to Teso (corrected)", "A new ferry, corrected.")], etag='"v2"')
    report = feeds.sync(rag)

    assert report.updated == [article_id] and not report.added
    [article] = rag.articles()
    assert article.id == article_id and article.title == "Electric ferry to Teso (corrected)"
    text = rag.article_text(article_id) or ""
    assert "40 minutes" in text and "Correction:" in text
    hit = rag.search("How long does the ferry crossing take?", k=1)[0]
    assert hit.article.id == article_id and "40 minutes" in hit.text
    assert check_index(rag.store.directory).problems == []
    rag.close()


def test_a_slow_server_times_out_and_nothing_is_half_written(server: FeedServer, tmp_path: Path, minilm):
    server.routes["/news/breakwater"] = Route(article_page("Valmora approves breakwater", BREAKWATER))
    server.routes["/news/ferry"] = Route(article_page("Electric ferry to Teso", FERRY), delay=3.0)  # never answers in time
    server.routes["/news/library"] = Route(article_page("Library reopens", LIBRARY), drip=0.05)  # answers, byte by byte
    items = [_item(server, s, t, "…") for s, t in (("breakwater", "Breakwater"), ("ferry", "Ferry"), ("library", "Library"))]
    url = _serve_feed(server, items)
    rag = _subscribed(tmp_path, minilm, url, feed_timeout=1.0, feed_connect_timeout=1.0)
    report = feeds.sync(rag)

    errors = {e.item.rsplit("/", 1)[-1]: e.reason for e in report.feeds[0].errors}
    assert set(errors) == {"ferry", "library"} and all("timed out" in r for r in errors.values()), errors
    assert [a.title for a in rag.articles()] == ["Breakwater"]
    assert check_index(rag.store.directory).problems == []

    # A feed that times out changes nothing: no articles, no validators, no items seen.
    server.routes["/coast.rss"].delay = 3.0
    server.routes["/coast.rss"].etag = '"v2"'
    before = feeds.feeds(rag)[0]
    report = feeds.sync(rag)
    after = feeds.feeds(rag)[0]
    assert report.feeds[0].status == "failed" and "timed out" in (report.feeds[0].error or "")
    assert (after.etag, after.last_status) == (before.etag, "failed") and after.last_error == report.feeds[0].error
    assert [a.title for a in rag.articles()] == ["Breakwater"]
    rag.close()


def test_pages_are_fetched_concurrently_but_politely(server: FeedServer, tmp_path: Path, minilm):
    slugs = [f"story-{n}" for n in range(6)]
    for n, slug in enumerate(slugs):
        server.routes[f"/news/{slug}"] = Route(article_page(f"Story {n}", [f"Story number {n} is about harbour works {n}.",
                                                                           *BREAKWATER[1:]]), delay=0.3)
    url = _serve_feed(server, [_item(server, s, f"Story {s}", "…") for s in slugs])
    rag = _subscribed(tmp_path, minilm, url, feed_concurrency=3)
    report = feeds.sync(rag)
    assert len(report.added) == 6
    assert 2 <= server.most_in_flight <= 3  # bounded concurrency

    # The per-host rate limit: requests to one host start at least the interval apart.
    paced = _open(tmp_path / "paced", minilm, feed_host_interval=0.25, feed_concurrency=4)
    server.log.clear()
    feeds.add(paced, url)
    feeds.sync(paced)
    starts = sorted(r.at for r in server.log)
    # (Arrival times at the server jitter by a few ms around the client's spacing.)
    assert len(starts) == 7 and min(b - a for a, b in zip(starts, starts[1:])) >= 0.2 and starts[-1] - starts[0] >= 1.45
    rag.close()
    paced.close()
