"""The Library's Sync button in a real headless Chromium, against the real app, the real embedder
and a feed server on 127.0.0.1. The screenshot goes to test-output/screenshots/library-sync.png."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from rag import RAG, Settings, feeds
from rag.serve.web import launch

from .conftest import ROOT
from .feed_server import FeedServer, Route, article_page, rss

pytestmark = pytest.mark.real_models
CHROMIUM = os.environ.get("RAG_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "test-output" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
STORY = [
    "Valmora's harbour will get a floating solar farm of 2,000 panels on the disused fishing basin, the port said on Monday.",
    "The farm is to supply the electric ferries' chargers and the fish market's cold stores from next spring.",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_sync_button_fetches_the_feeds_and_shows_the_new_articles(tmp_path: Path, minilm, smollm):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"the browser tests need Chromium at {CHROMIUM}"
    server = FeedServer()
    server.routes["/news/solar"] = Route(article_page("Floating solar farm for the harbour", STORY))
    server.routes["/news/broken"] = Route(b"gone", status=410)
    server.routes["/coast.rss"] = Route(rss("Harbour Gazette - Coast", [
        {"title": "A floating solar farm for Valmora harbour", "link": server.url("/news/solar"), "guid": "solar",
         "description": "Solar panels on the old basin.", "pubDate": "Mon, 04 Mar 2024 09:00:00 GMT"},
        {"title": "A story that was taken down", "link": server.url("/news/broken"), "guid": "broken", "description": "…"},
    ]), content_type="application/rss+xml", etag='"c1"')
    rag = RAG.open(settings=Settings(index_dir=tmp_path / "index", seeds_dir=None, feed_host_interval=0.0),
                   embedder=minilm, llm=smollm)
    feeds.add(rag, server.url("/coast.rss"))
    port = _free_port()
    app = launch(rag=rag, port=port, block=False)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
            page.goto(f"http://127.0.0.1:{port}")
            page.get_by_role("tab", name="Library").click()
            assert "never synced" in page.locator("#feed-list").inner_text(timeout=60_000)
            page.click("#sync")
            results = page.locator("#sync-results")
            deadline = time.time() + 120
            while "updated" not in results.inner_text() and time.time() < deadline:
                page.wait_for_timeout(250)
            text = results.inner_text()
            assert "Harbour Gazette - Coast" in text and "1 added" in text
            assert "/news/broken: HTTP 410 Gone" in text  # the failed item, by its link
            articles = page.locator("#articles")
            deadline = time.time() + 30
            while "floating solar farm" not in articles.inner_text() and time.time() < deadline:
                page.wait_for_timeout(250)
            assert "A floating solar farm for Valmora harbour" in articles.inner_text()
            assert "synced" in page.locator("#feed-list").inner_text() and "updated" in page.locator("#feed-list").inner_text()
            assert "1 article," in page.locator("#status").inner_text()
            page.locator("#feeds").scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "library-sync.png"), full_page=True)
            assert [a.title for a in rag.articles()] == ["A floating solar farm for Valmora harbour"]
            browser.close()
    finally:
        app.close()
        rag.close()
        server.close()
