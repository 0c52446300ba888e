"""The feeds over HTTP (GET/POST /v1/feeds, DELETE /v1/feeds/{ref}, POST /v1/feeds/sync): a real
feed server on 127.0.0.1, the real MiniLM embedder, FAISS and SQLite; auth, the web guard, and no
local files named by a remote caller."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag import feeds
from rag.serve.http import create_app

from .feed_server import FeedServer, Route, article_page
from .test_feeds import BREAKWATER, _item, _open, _serve_feed

KEY = "feeds-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LOCAL = "http://127.0.0.1"
pytestmark = pytest.mark.real_models


@pytest.fixture
def server():
    srv = FeedServer()
    yield srv
    srv.close()


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_subscribe_sync_list_and_unsubscribe_over_http(server, tmp_path: Path, minilm):
    server.routes["/news/breakwater"] = Route(article_page("Valmora approves breakwater", BREAKWATER))
    server.routes["/news/ferry"] = Route(b"gone", status=410)
    url = _serve_feed(server, [_item(server, "breakwater", "Valmora approves a breakwater", "…"),
                               _item(server, "ferry", "Electric ferry to Teso", "…")])
    rag = _open(tmp_path, minilm)
    client = TestClient(create_app(rag, api_key=KEY), base_url=LOCAL, raise_server_exceptions=False)

    added = client.post("/v1/feeds", json={"url": url}, headers=AUTH)
    assert added.status_code == 200 and added.json()["new"] is True and added.json()["url"] == url
    again = client.post("/v1/feeds", json={"url": url}, headers=AUTH).json()
    assert again["new"] is False and again["id"] == added.json()["id"]

    synced = client.post("/v1/feeds/sync", json={}, headers=AUTH)
    assert synced.status_code == 200, synced.text
    (feed,) = synced.json()["feeds"]
    assert len(feed["added"]) == 1 and [a.title for a in rag.articles()] == ["Valmora approves a breakwater"]
    (error,) = feed["errors"]  # the broken page is named, and the rest went in
    assert error["item"].endswith("/news/ferry") and "410" in error["reason"]
    assert synced.json()["summary"].startswith("1 feed synced (0 failed): 1 added")

    listed = client.get("/v1/feeds", headers=AUTH).json()["data"]
    assert [(f["url"], f["last_status"]) for f in listed] == [(url, "updated")]

    gone = client.delete(f"/v1/feeds/{added.json()['id']}", params={"articles": "true"}, headers=AUTH)
    assert gone.status_code == 200 and gone.json()["removed_articles"] == feed["added"]
    assert rag.articles() == [] and feeds.feeds(rag) == []
    assert _error(client.delete("/v1/feeds/7", headers=AUTH), 404)["code"] == "feed_not_found"
    rag.close()


def test_feeds_over_http_need_the_key_refuse_local_paths_and_foreign_pages(tmp_path: Path, minilm):
    rag = _open(tmp_path, minilm)
    client = TestClient(create_app(rag, api_key=KEY), base_url=LOCAL, raise_server_exceptions=False)
    secret = tmp_path / "secret.rss"
    secret.write_text("<rss><channel><title>local</title></channel></rss>", encoding="utf-8")

    assert client.get("/v1/feeds").status_code == 401
    assert client.post("/v1/feeds", json={"url": "https://example.org/a.rss"}).status_code == 401
    # A path or file:// URL names a file on the server's disk: only `rag feeds add` on the machine may.
    for ref in (str(secret), f"file://{secret}"):
        assert _error(client.post("/v1/feeds", json={"url": ref}, headers=AUTH), 400)["code"] == "invalid_feed_url"
    assert _error(client.post("/v1/feeds", json={"url": "https://x.example/a.rss", "extra": 1}, headers=AUTH), 400)
    assert _error(client.post("/v1/feeds/sync", json={"feeds": ["1"] * 101}, headers=AUTH), 400)
    # A foreign web page cannot subscribe the server to a feed (cross-origin write).
    foreign = client.post("/v1/feeds", json={"url": "https://evil.example/a.rss"},
                          headers={**AUTH, "Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert feeds.feeds(rag) == []
    rag.close()
