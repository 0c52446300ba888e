"""The feed tables (migration 4), the feed list and its state, parsing, and the fetcher's pacing."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from rag import RAG, Settings, feeds
from rag.errors import RagError
from rag.feeds.extract import ExtractError, parse_feed
from rag.feeds.fetch import HostPacer
from rag.feeds.state import FeedState, ItemState
from rag.index import migrations
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .feed_server import rss


def _sql(index: Path, query: str) -> list[tuple]:
    db = sqlite3.connect(index / "store.sqlite")
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def _open(index: Path) -> RAG:
    return RAG.open(settings=Settings(index_dir=index, seeds_dir=None), embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())


def test_a_new_index_has_the_feed_tables_and_records_migration_4(fake_rag: RAG):
    index = fake_rag.store.directory
    assert migrations.DB_VERSION == 4
    assert _sql(index, "PRAGMA user_version") == [(4,)]
    assert {"feeds", "feed_items"} <= {r[0] for r in _sql(index, "SELECT name FROM sqlite_master")}
    assert _sql(index, "SELECT count(*) FROM meta WHERE key = 'migration:4'") == [(1,)]


def test_an_index_of_schema_3_gets_the_feed_tables_on_open_and_keeps_its_articles(tmp_path: Path, data_dir: Path):
    index = tmp_path / "index"
    rag = _open(index)
    added = rag.add([data_dir]).added
    rag.close()
    db = sqlite3.connect(index / "store.sqlite")
    db.executescript("DROP TABLE feed_items; DROP TABLE feeds; DELETE FROM meta WHERE key = 'migration:4'; PRAGMA user_version = 3;")
    db.close()

    rag = _open(index)
    assert _sql(index, "PRAGMA user_version") == [(4,)]
    assert _sql(index, "SELECT count(*) FROM meta WHERE key = 'migration:4'") == [(1,)]
    assert sorted(a.id for a in rag.articles()) == sorted(added)
    feed, _ = feeds.add(rag, str(data_dir / "feed.rss"))
    assert feeds.feeds(rag) == [feed]
    rag.close()


def test_the_feed_list_adds_finds_and_removes(fake_rag: RAG, tmp_path: Path):
    local = tmp_path / "saved.rss"
    local.write_bytes(rss("Saved", []))
    web, new = feeds.add(fake_rag, "https://news.example.org/world.rss")
    mine, _ = feeds.add(fake_rag, str(local))
    assert new and [f.url for f in feeds.feeds(fake_rag)] == ["https://news.example.org/world.rss", str(local.resolve())]
    assert feeds.add(fake_rag, "https://news.example.org/world.rss") == (web, False)

    with FeedState(fake_rag.store.directory) as state:
        assert state.find(str(web.id)) == web and state.find(str(local)) == mine
        state.record_sync(web, "updated", etag='"e1"', last_modified="Mon, 04 Mar 2024 09:00:00 GMT",
                          items=[ItemState("g1", "https://news.example.org/a", "f1", "article-1"),
                                 ItemState("g2", "https://news.example.org/b", None, None, "HTTP 500")])
        items = state.items(web.id)
        assert items["g2"].last_error == "HTTP 500" and items["g2"].fingerprint is None
        # A failed sync keeps the validators; a later success of g2 clears its error.
        state.record_sync(web, "failed", "timed out")
        assert state.find(str(web.id)).etag == '"e1"'
        state.record_sync(web, "updated", etag='"e2"', items=[ItemState("g2", "https://news.example.org/b", "f2", "article-2")])
        assert state.items(web.id)["g2"].last_error is None and state.article_ids(web.id) == ["article-1", "article-2"]

    removed, ids = feeds.remove(fake_rag, str(web.id))
    assert removed.id == web.id and ids == []  # the articles stay unless asked
    assert _sql(fake_rag.store.directory, "SELECT count(*) FROM feed_items") == [(0,)]  # its items went with it
    with pytest.raises(RagError, match="no feed matches"):
        feeds.remove(fake_rag, "https://news.example.org/world.rss")


def test_parse_feed_reads_items_and_refuses_what_is_no_feed():
    parsed = parse_feed(rss("Gazette", [
        {"title": "One", "link": "https://x.example/1", "guid": "g1", "description": "First."},
        {"title": "Again", "link": "https://x.example/1b", "guid": "g1", "description": "Same guid."},
        {"title": "No guid", "link": "https://x.example/2", "description": "Second."},
    ]))
    assert parsed.title == "Gazette"
    assert [i.guid for i in parsed.items] == ["g1", "https://x.example/2"]  # one per guid; the link when none
    edited = parse_feed(rss("Gazette", [{"title": "One", "link": "https://x.example/1", "guid": "g1", "description": "Edited."}]))
    assert edited.items[0].fingerprint != parsed.items[0].fingerprint
    for data in (b"<html><body>a page</body></html>", b"<note><to>x</to></note>", b"\x00\x01binary"):
        with pytest.raises(ExtractError, match="not an RSS or Atom feed"):
            parse_feed(data)


def test_the_host_pacer_spaces_requests_per_host_across_threads():
    pacer = HostPacer(0.1)
    starts: dict[str, list[float]] = {"a": [], "b": []}

    def go(host: str) -> None:
        pacer.wait(host)
        starts[host].append(time.monotonic())

    threads = [threading.Thread(target=go, args=(h,)) for h in "aaaabb"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a = sorted(starts["a"])
    assert min(y - x for x, y in zip(a, a[1:])) >= 0.095
    # Another host does not queue behind the first: its first request goes before a's last, which
    # waits 0.3 s (an order, not a time bound, so a loaded machine cannot fail it).
    assert min(starts["b"]) < a[-1]
