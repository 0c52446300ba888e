"""The HTTP API: fast tests over the fake RAG with FastAPI's TestClient, and the acceptance test
driving a real `rag serve` (MiniLM + SmolLM2) with the official openai client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag import RAG
from rag.serve.http import check_bind, create_app, mount_api
from tests.processes import free_port, stop

from .conftest import ROOT, SEEDS

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
LOCAL = "http://127.0.0.1"  # TestClient's default Host, "testserver", is not one the API answers to


@pytest.fixture
def seeded(fake_rag: RAG) -> RAG:
    fake_rag.add([SEEDS])
    return fake_rag


@pytest.fixture
def client(seeded: RAG) -> TestClient:
    return TestClient(create_app(seeded, api_key=KEY), base_url=LOCAL, raise_server_exceptions=False)


def _assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def _sse(response: httpx.Response) -> list[dict | str]:
    events: list[dict | str] = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


# ------------------------------------------------------------------ auth, limits, errors


def test_every_v1_route_needs_the_token_but_health_does_not(client: TestClient):
    for method, path in [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/search"),
                         ("GET", "/v1/articles"), ("POST", "/v1/articles"), ("DELETE", "/v1/articles/x")]:
        error = _assert_openai_error(client.request(method, path, json={}), 401, "invalid_api_key")
        assert "RAG_API_KEY" in error["message"]
    _assert_openai_error(client.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401)
    _assert_openai_error(client.get("/v1/models", headers={"Authorization": KEY}), 401)  # no scheme
    assert client.get("/v1/models", headers=AUTH).status_code == 200
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_key_comes_from_the_environment(seeded: RAG, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RAG_API_KEY", "from-env")
    from rag import Settings

    seeded.settings = Settings(index_dir=seeded.settings.index_dir, seeds_dir=None)
    client = TestClient(create_app(seeded), base_url=LOCAL)
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_without_a_key_the_api_is_open_and_binding_outside_loopback_warns(seeded: RAG):
    client = TestClient(create_app(seeded), base_url=LOCAL)
    assert client.get("/v1/models").status_code == 200
    assert check_bind("127.0.0.1", None) is None
    assert check_bind("0.0.0.0", "k") is None
    assert "RAG_API_KEY" in (check_bind("0.0.0.0", None) or "")


def test_request_size_limits(seeded: RAG):
    seeded.settings = seeded.settings.model_copy(update={"api_max_request_bytes": 2_000, "api_max_ingest_bytes": 5_000})
    client = TestClient(create_app(seeded, api_key=KEY), base_url=LOCAL)
    big = {"model": seeded.settings.llm, "messages": [{"role": "user", "content": "x" * 3_000}]}
    _assert_openai_error(client.post("/v1/chat/completions", json=big, headers=AUTH), 413, "request_too_large")

    # No Content-Length (a streamed, chunked body): cut off as it grows past the limit.
    def chunks():
        for _ in range(10):
            yield b"a" * 1_000

    error = _assert_openai_error(
        client.post("/v1/search", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}), 413)
    assert "2,000-byte limit" in error["message"]
    # Ingest has its own, larger limit.
    article = {"articles": [{"title": "T", "text": "y" * 3_000}]}
    assert client.post("/v1/articles", json=article, headers=AUTH).status_code == 200
    article = {"articles": [{"title": "T", "text": "y" * 6_000}]}
    _assert_openai_error(client.post("/v1/articles", json=article, headers=AUTH), 413)


def test_bad_requests_get_openai_shaped_errors(client: TestClient):
    error = _assert_openai_error(client.post("/v1/chat/completions", json={"messages": []}, headers=AUTH), 400)
    assert error["type"] == "invalid_request_error" and error["param"] == "messages"
    error = _assert_openai_error(client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "temperature": 9}, headers=AUTH), 400)
    assert error["param"] == "temperature"
    error = _assert_openai_error(client.post(
        "/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "hi"}]}, headers=AUTH), 400)
    assert "user message" in error["message"]
    error = _assert_openai_error(client.post(
        "/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, headers=AUTH),
        404, "model_not_found")
    assert "/v1/models" in error["message"]
    _assert_openai_error(client.post("/v1/search", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"}), 400)
    _assert_openai_error(client.post("/v1/search", json={"query": "x", "since": "yesterday-ish"}, headers=AUTH), 400)
    _assert_openai_error(client.get("/v1/nothing-here", headers=AUTH), 404, "not_found")
    _assert_openai_error(client.put("/v1/models", headers=AUTH), 405)
    _assert_openai_error(client.post("/v1/articles", content=b"x", headers={**AUTH, "Content-Type": "text/plain"}), 415)


# ------------------------------------------------------------------ models, search, articles


def test_models_lists_the_default_and_installed_llms_and_the_remote_one(seeded: RAG):
    from rag.models.registry import installed_llms

    ids = [m["id"] for m in TestClient(create_app(seeded), base_url=LOCAL).get("/v1/models").json()["data"]]
    assert ids[0] == seeded.settings.llm
    assert set(installed_llms()) <= set(ids)
    assert "openai-compatible" not in ids
    seeded.settings = seeded.settings.model_copy(update={"remote_llm_base_url": "http://127.0.0.1:9/v1"})
    ids = [m["id"] for m in TestClient(create_app(seeded), base_url=LOCAL).get("/v1/models").json()["data"]]
    assert "openai-compatible" in ids


def test_search(client: TestClient):
    r = client.post("/v1/search", json={"query": "guarantor system", "k": 2}, headers=AUTH)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert 1 <= len(data) <= 2
    assert "guarantor" in data[0]["text"] and data[0]["title"].startswith("Lavrov")
    assert data[0]["published"] == "2023-10-19"
    _assert_openai_error(client.post("/v1/search", json={"query": "x", "mode": "magic"}, headers=AUTH), 400)


def test_add_json_articles_per_article_results_then_delete(client: TestClient):
    articles = {"articles": [
        {"title": "Harbour reopens", "text": "The old harbour in Kirkwall reopened on Monday after repairs.",
         "url": "https://example.org/harbour", "published": "2024-03-04", "source": "Orkney News"},
        {"title": "Empty", "text": "   "},
        {"headline": "Ferry strike ends", "body": "Ferry crews ended their strike after a pay deal.", "published_at": "2024-03-05"},
    ]}
    r = client.post("/v1/articles", json=articles, headers=AUTH)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["added", "failed", "added"]
    assert "no text" in results[1]["detail"]
    assert results[0]["name"] == "Harbour reopens" and len(results[0]["article_ids"]) == 1
    again = client.post("/v1/articles", json={"articles": articles["articles"][:1]}, headers=AUTH).json()
    assert again["results"][0]["status"] == "duplicate"

    listed = client.get("/v1/articles", params={"search": "harbour"}, headers=AUTH).json()["data"]
    assert [a["title"] for a in listed] == ["Harbour reopens"] and listed[0]["source"] == "Orkney News"
    hit = client.post("/v1/search", json={"query": "Kirkwall harbour", "k": 1}, headers=AUTH).json()["data"][0]
    assert hit["article_id"] == results[0]["article_ids"][0]

    article_id = results[0]["article_ids"][0]
    r = client.delete(f"/v1/articles/{article_id}", headers=AUTH)
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert client.get("/v1/articles", params={"search": "harbour"}, headers=AUTH).json()["data"] == []
    _assert_openai_error(client.delete(f"/v1/articles/{article_id}", headers=AUTH), 404, "article_not_found")
    _assert_openai_error(client.delete(f"/v1/articles/{article_id[:8]}", headers=AUTH), 404)  # no prefixes over HTTP


def test_a_file_of_many_articles_gets_their_ids_in_the_order_read(client: TestClient, seeded: RAG):
    records = [{"title": "Harbour reopens", "text": "The old harbour in Kirkwall reopened on Monday after repairs."},
               {"title": "Ferry strike ends", "text": "Ferry crews in Stromness ended their strike after a pay deal."}]
    jsonl = "".join(json.dumps(r) + "\n" for r in records).encode()
    r = client.post("/v1/articles", files=[("files", ("two.jsonl", jsonl, "application/jsonl"))], headers=AUTH)
    (result,) = r.json()["results"]
    assert result["status"] == "added" and len(result["article_ids"]) == 2, result
    titles = {a.id: a.title for a in seeded.articles()}
    assert [titles[i] for i in result["article_ids"]] == ["Harbour reopens", "Ferry strike ends"]
    assert all(client.delete(f"/v1/articles/{i}", headers=AUTH).json()["deleted"] for i in result["article_ids"])
    assert not any(a.id in result["article_ids"] for a in seeded.articles())


def test_add_uploaded_files_with_safe_names_and_limits(client: TestClient, seeded: RAG, monkeypatch: pytest.MonkeyPatch):
    files = [
        ("files", ("../../evil story.md", b"---\ntitle: Uploaded\n---\nA bridge in Perth was closed for inspection.", "text/markdown")),
        ("files", ("tool.exe", b"MZ", "application/octet-stream")),
        ("files", ("bad.json", b"{not json", "application/json")),
    ]
    r = client.post("/v1/articles", files=files, headers=AUTH)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["added", "rejected", "failed"]
    assert results[0]["name"] == "../../evil story.md"
    assert "unsupported" in results[1]["detail"] and "invalid JSON" in results[2]["detail"]
    uploads = seeded.info().directory / "uploads"
    stored = [p.name for p in uploads.iterdir()]
    assert any(name.startswith("evil_story-") and name.endswith(".md") for name in stored)
    assert not any(".." in name or "/" in name for name in stored)
    assert [a.title for a in seeded.articles("Uploaded")] == ["Uploaded"]

    # The limits are Settings (RAG_MAX_UPLOAD_FILES / RAG_MAX_UPLOAD_BYTES), read from the RAG's settings.
    base = seeded.settings
    seeded.settings = base.model_copy(update={"max_upload_files": 2})
    _assert_openai_error(client.post("/v1/articles", files=files, headers=AUTH), 400)
    seeded.settings = base.model_copy(update={"max_upload_bytes": 10, "max_upload_files": 20})
    r = client.post("/v1/articles", files=files[:1], headers=AUTH)
    assert r.json()["results"][0]["status"] == "rejected" and "limit" in r.json()["results"][0]["detail"]
    error = _assert_openai_error(client.post("/v1/articles", files={"x": (None, "y")}, headers=AUTH), 400)
    assert "no files" in error["message"]
    seeded.settings = base


# ------------------------------------------------------------------ chat completions (fake LLM)

QUESTION = {"role": "user", "content": "What has Ankara proposed for the Israel-Palestine conflict?"}


def test_chat_completion_with_citations(client: TestClient, seeded: RAG):
    r = client.post("/v1/chat/completions", json={"model": seeded.settings.llm, "messages": [QUESTION]}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    message = body["choices"][0]["message"]
    assert "guarantor system" in message["content"] and "[1]" in message["content"]
    citations = body["citations"]
    assert citations == message["citations"]
    assert citations[0]["n"] == 1 and "guarantor system" in citations[0]["quote"]
    assert citations[0]["title"].startswith("Lavrov") and citations[0]["article_id"]
    assert body["rag"]["refused"] is False


def test_streamed_chat_ends_with_citations_and_done(client: TestClient):
    r = client.post("/v1/chat/completions", json={"messages": [QUESTION], "stream": True, "max_tokens": 64}, headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _sse(r)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events if isinstance(e, dict)]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "guarantor system" in streamed
    final = chunks[-1]
    assert final["object"] == "chat.completion.chunk" and final["choices"][0]["finish_reason"] == "stop"
    assert "guarantor system" in final["citations"][0]["quote"]
    assert "[1]" in final["rag"]["answer"]
    assert all("citations" not in c for c in chunks[:-1])


def test_follow_up_uses_the_history_and_system_messages_are_ignored(client: TestClient, seeded: RAG):
    fake = seeded.generator
    messages = [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Where was Lavrov speaking?"},
        {"role": "assistant", "content": "In Pyongyang [1]."},
        {"role": "user", "content": [{"type": "text", "text": "What did he say about the Turkish initiative?"}]},
    ]
    r = client.post("/v1/chat/completions", json={"messages": messages}, headers=AUTH)
    assert r.status_code == 200, r.text
    condense = fake.calls[0][-1]["content"]  # the follow-up was rewritten with the conversation
    assert fake.calls[0].kind == "condense" and "Pyongyang" in condense
    assert all("pirate" not in m["content"] for call in fake.calls for m in call)
    assert r.json()["rag"]["question"] == "What did he say about the Turkish initiative?"


def test_rag_errors_mid_stream_arrive_as_an_error_event(client: TestClient, seeded: RAG, monkeypatch: pytest.MonkeyPatch):
    from rag.errors import RemoteModelError

    def broken(*args, **kwargs):
        raise RemoteModelError("cannot reach the model server at http://127.0.0.1:9/v1")
        yield  # pragma: no cover

    monkeypatch.setattr(seeded.generator, "stream", broken)
    r = client.post("/v1/chat/completions", json={"messages": [QUESTION], "stream": True}, headers=AUTH)
    events = _sse(r)
    errors = [e for e in events if isinstance(e, dict) and "error" in e]
    assert errors and "127.0.0.1:9" in errors[0]["error"]["message"] and events[-1] == "[DONE]"
    r = client.post("/v1/chat/completions", json={"messages": [QUESTION]}, headers=AUTH)
    _assert_openai_error(r, 502, "model_server_unavailable")


def test_api_mounts_beside_another_app_without_taking_its_routes(seeded: RAG):
    host = FastAPI()

    @host.get("/")
    def home() -> dict[str, str]:
        return {"app": "host"}

    mount_api(host, seeded, api_key=KEY)
    client = TestClient(host, base_url=LOCAL)
    assert client.get("/").json() == {"app": "host"}  # no token needed for the host's own pages
    assert client.get("/health").json()["status"] == "ok"
    _assert_openai_error(client.get("/v1/models"), 401)
    assert client.post("/v1/search", json={"query": "Lavrov"}, headers=AUTH).json()["data"]


def test_the_browser_app_serves_the_api_beside_the_chat(seeded: RAG, monkeypatch: pytest.MonkeyPatch):
    from rag.serve.web import launch

    for var in ("RAG_HOST", "RAG_USERNAME", "RAG_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    seeded.settings = seeded.settings.model_copy(update={"api_key": SecretStr(KEY)})
    port = free_port()
    app = launch(rag=seeded, port=port, block=False, api=True)
    try:
        base = f"http://127.0.0.1:{port}"
        assert "<html" in httpx.get(base + "/", timeout=30).text.lower()  # the chat, no token needed
        assert httpx.get(base + "/v1/models", timeout=30).status_code == 401
        r = httpx.post(base + "/v1/chat/completions", json={"messages": [QUESTION]}, headers=AUTH, timeout=60)
        assert r.status_code == 200 and r.json()["citations"], r.text
    finally:
        app.close()


def test_a_chat_login_without_an_api_key_refuses_to_mount_an_open_api(seeded: RAG, monkeypatch: pytest.MonkeyPatch):
    from rag.errors import RagError
    from rag.serve.web import launch

    # RAG_USERNAME / RAG_PASSWORD, as the settings the app was opened with
    seeded.settings = seeded.settings.model_copy(update={"api_key": None, "username": "editor", "password": SecretStr("s3cret")})
    with pytest.raises(RagError, match="RAG_API_KEY"):
        launch(rag=seeded, port=free_port(), block=False, api=True)


# ------------------------------------------------------------------ acceptance: real `rag serve`



def _wait_for(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture
def rag_serve(seed_index: Path, tmp_path: Path):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    port = free_port()
    env = {
        **os.environ, "RAG_INDEX_DIR": str(index), "RAG_LLM": "smollm2-135m-instruct", "RAG_API_KEY": KEY,
        "RAG_N_THREADS": "2", "RAG_SEED": "0", "HF_HUB_OFFLINE": "1",
    }
    log = tmp_path / "serve.log"  # a file, not a pipe nobody reads: a full pipe would stall the server
    out = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", proc, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc, out)


@pytest.mark.real_models
def test_rag_serve_with_the_official_openai_client(rag_serve: str):
    import openai

    client = openai.OpenAI(base_url=rag_serve, api_key=KEY, max_retries=0, timeout=300)
    models = [m.id for m in client.models.list()]
    assert "smollm2-135m-instruct" in models

    question = "What has Ankara proposed for the Israel-Palestine conflict?"
    stream = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": question}], stream=True, temperature=0,
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert streamed.strip(), "no words were streamed"
    citations = final.citations  # the extra field on the last chunk
    answer = final.rag["answer"]
    assert not final.rag["refused"], answer
    assert citations and all(f"[{c['n']}]" in answer for c in citations), answer
    assert all(c["title"].startswith("Lavrov says") for c in citations)
    assert any("guarantor" in c["quote"] or "Türkiye" in c["quote"] or "Ankara" in c["quote"] for c in citations)

    # A follow-up: answered through the conversation (the question is rewritten first).
    follow_up = client.chat.completions.create(
        model="smollm2-135m-instruct", temperature=0,
        messages=[
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "How many days of national mourning did it declare?"},
        ],
    )
    rag = follow_up.rag
    assert rag["question"] == "How many days of national mourning did it declare?"
    assert rag["standalone_question"], "the follow-up was not rewritten with the conversation"
    assert follow_up.choices[0].message.content == rag["answer"]
    assert follow_up.citations == follow_up.choices[0].message.citations
    assert rag["sources"] and all(s["title"].startswith("Lavrov says") for s in rag["sources"])

    # Without the token: the official client's own authentication error.
    anonymous = openai.OpenAI(base_url=rag_serve, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        anonymous.chat.completions.create(model="smollm2-135m-instruct", messages=[{"role": "user", "content": question}])
    assert "RAG_API_KEY" in str(e.value)
