"""POST /v1/briefing, POST /v1/timeline and GET /v1/articles/{id}/related over the labelled story
fixture with the real embedder: results, validation, auth and the web guard."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from rag import RAG
from rag.serve.http import create_app
from tests.stories_helpers import article_id, fixture_rag

KEY = "stories-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LOCAL = "http://127.0.0.1"
pytestmark = pytest.mark.real_models


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory, minilm) -> RAG:
    rag = fixture_rag(tmp_path_factory.mktemp("stories-http") / "index", minilm, follow_ups=True)
    yield rag
    rag.close()


@pytest.fixture(scope="module")
def client(rag: RAG) -> TestClient:
    return TestClient(create_app(rag, api_key=KEY), base_url=LOCAL, raise_server_exceptions=False)


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_briefing_returns_cited_stories(client: TestClient, rag: RAG):
    response = client.post("/v1/briefing", json={"since": "7d", "until": "2025-03-09", "max_stories": 3}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "briefing" and body["since"] == "2025-03-03" and body["articles"] == 30
    assert len(body["stories"]) == 3
    story = body["stories"][0]
    assert story["headline"].startswith("Rotterdam") and len(story["sources"]) == 4
    for c in story["citations"]:
        assert rag.article_text(c["article_id"])[c["start"] : c["end"]] == c["quote"]


def test_briefing_with_a_topic_and_dates(client: TestClient):
    body = client.post("/v1/briefing", json={"since": "2025-03-03", "until": "2025-03-09", "topic": "Helios solar probe launch"},
                       headers=AUTH).json()
    assert body["topic"] == "Helios solar probe launch" and "Helios" in body["stories"][0]["headline"]


def test_timeline_returns_dated_events_in_order(client: TestClient):
    response = client.post("/v1/timeline", json={"query": "Rotterdam port strike", "since": "2025-03-01", "until": "2025-03-31"},
                           headers=AUTH)
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert [e["date"] for e in events] == sorted(e["date"] for e in events)
    began = next(e for e in events if "48-hour strike" in e["text"])
    assert began["date"] == "2025-03-03" and began["date_from"] == "sentence" and len(began["sources"]) == 3


def test_related_by_exact_id(client: TestClient, rag: RAG):
    aid = article_id(rag, "port-deal-reached")
    body = client.get(f"/v1/articles/{aid}/related", headers=AUTH).json()
    assert body["object"] == "related" and body["article"]["article_id"] == aid
    assert {a["url"].rsplit("/", 1)[1] for s in body["earlier"] for a in s["articles"]} == {"port-talks-open"}
    assert _error(client.get(f"/v1/articles/{aid[:8]}/related", headers=AUTH), 404)["code"] == "article_not_found"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/briefing", {"since": "last week"}, 400),
        ("/v1/briefing", {"since": "2025-03-09", "until": "2025-03-01"}, 400),
        ("/v1/briefing", {"max_stories": 0}, 400),
        ("/v1/briefing", {"topic": "x" * 501}, 400),
        ("/v1/briefing", {"surprise": 1}, 400),
        ("/v1/briefing", {"write": True, "model": "no-such-model"}, 404),
        ("/v1/timeline", {"query": ""}, 400),
        ("/v1/timeline", {"query": "   "}, 400),
        ("/v1/timeline", {"query": "strike", "since": "soon"}, 400),
    ],
)
def test_bad_requests_get_a_clear_error(client: TestClient, path: str, body: dict, status: int):
    message = _error(client.post(path, json=body, headers=AUTH), status)["message"]
    if body.get("since") == "last week":
        assert "since must be a date (YYYY-MM-DD) or a span back from until, like 7d or 2w" in message


def test_the_routes_need_the_token_and_refuse_foreign_pages(client: TestClient, rag: RAG):
    aid = article_id(rag, "peru-quake")
    for method, path in [("POST", "/v1/briefing"), ("POST", "/v1/timeline"), ("GET", f"/v1/articles/{aid}/related")]:
        assert _error(client.request(method, path, json={"query": "x"}), 401)["code"] == "invalid_api_key"
    foreign = {**AUTH, "Origin": "https://evil.example"}
    assert client.post("/v1/briefing", json={}, headers=foreign).status_code == 403
    assert client.post("/v1/timeline", json={"query": "x"}, headers={**AUTH, "Host": "evil.example"}).status_code == 400
