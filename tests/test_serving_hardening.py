"""Issue 13, section 2: the HTTP API and the web app under an outside attack. DNS rebinding
(foreign Host), cross-origin form posts, model paths, bad input that used to be a 500,
/openapi.json without the key, uploads kept and served back, deleted articles left in
uploads/, and phishing URLs in answers rendered as live links.

Fast tests use the fake RAG (hashing embedder, extractive fake LLM); the cases that only broke
with a real model (context overflow) use the tiny SmolLM2."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from markdown_it import MarkdownIt
from pydantic import SecretStr

from rag import RAG, Settings
from rag.results import Answer, ArticleInfo, Citation, Hit
from rag.serve.http import create_app
from rag.serve.rendering import answer_markdown, sources_html
from rag.testing import HashingEmbedder
from tests.processes import free_port

from .conftest import SEEDS
from .test_serving_security import call_api

KEY = "k-123"
LOCAL = "http://127.0.0.1"
QUESTION = "What has Ankara proposed for the Israel-Palestine conflict?"
STORY = b"---\ntitle: Planted story\n---\nThe Vorlund dam was closed for repairs on Monday.\n"


@pytest.fixture
def seeded(fake_rag: RAG) -> RAG:
    fake_rag.add([SEEDS])
    return fake_rag


def _uploads(rag: RAG) -> list[str]:
    folder = rag.store.directory / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text[:300])
    return r.json()["error"]["message"]


# ------------------------------------------------------------------ Host and Origin (rag serve)


def test_a_foreign_host_is_refused_dns_rebinding(seeded: RAG):
    app = create_app(seeded)  # no key: the default
    evil = TestClient(app, base_url="http://evil.example:8000")
    for method, path in [("GET", "/health"), ("GET", "/v1/models"), ("GET", "/v1/articles"), ("GET", "/openapi.json")]:
        assert "RAG_ALLOWED_HOSTS" in _error(evil.request(method, path), 400)
    before = seeded.info().articles
    _error(evil.post("/v1/articles", json={"articles": [{"title": "Planted", "text": "Planted text here."}]}), 400)
    _error(evil.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]}), 400)
    assert seeded.info().articles == before
    # The names the server is really reached by still work.
    for base in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", "http://10.1.2.3"):
        assert TestClient(app, base_url=base).get("/v1/models").status_code == 200, base
    seeded.settings = seeded.settings.model_copy(update={"allowed_hosts": "news.example.org, .lan"})
    app = create_app(seeded)
    for base in ("http://news.example.org", "http://box.lan:8000"):
        assert TestClient(app, base_url=base).get("/v1/models").status_code == 200, base
    _error(TestClient(app, base_url="http://example.org").get("/v1/models"), 400)


def test_a_cross_origin_form_post_plants_nothing(seeded: RAG):
    """A web page can POST multipart to /v1/articles with no preflight; the browser names the
    page in Origin (or only in Referer), and that is what gives it away."""
    client = TestClient(create_app(seeded), base_url="http://127.0.0.1:8000")
    before = (seeded.info().articles, _uploads(seeded))
    files = {"files": ("story.md", STORY, "text/markdown")}
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Referer": "https://evil.example/page.html"}, {"Origin": "http://127.0.0.1:9999"}):
        message = _error(client.post("/v1/articles", files=files, headers=headers), 403)
        assert "cross-origin" in message, headers
        _error(client.delete(f"/v1/articles/{seeded.articles()[0].id}", headers=headers), 403)
        _error(client.post("/v1/chat/completions", headers=headers,
                           json={"messages": [{"role": "user", "content": QUESTION}]}), 403)
    assert (seeded.info().articles, _uploads(seeded)) == before
    assert not seeded.articles("Planted")
    # Reads from anywhere are harmless to the index; the same write from the server's own page
    # or from a program (no Origin) goes through.
    assert client.get("/v1/articles", headers={"Origin": "https://evil.example"}).status_code == 200
    r = client.post("/v1/articles", files=files, headers={"Origin": "http://127.0.0.1:8000"})
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "added"


def test_openapi_and_docs_need_the_key_when_one_is_set(seeded: RAG):
    client = TestClient(create_app(seeded, api_key=KEY), base_url=LOCAL)
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert "RAG_API_KEY" in _error(client.get(path), 401), path
    r = client.get("/openapi.json", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and "/v1/chat/completions" in r.json()["paths"]
    assert client.get("/health").status_code == 200  # liveness stays open


# ------------------------------------------------------------------ bad input: 400, never 500


def _chat(client: TestClient, messages: list[dict], **extra) -> httpx.Response:
    body = json.dumps({"messages": messages, "max_tokens": 16, **extra})  # ensure_ascii: lone surrogates go as \ud800
    return client.post("/v1/chat/completions", content=body.encode(), headers={"Content-Type": "application/json"})


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


BAD_CHATS = {
    "900 KB question": ([_user("Where was Lavrov speaking? " + "word " * 180_000)], {}, "characters long"),
    "300 KB history turn": ([_user("Lavrov " * 43_000), {"role": "assistant", "content": "In Pyongyang [1]."},
                             _user("And what did he say about Iran?")], {}, "history turn 1"),
    "lone surrogate": ([_user("Where was Lavrov \ud800 speaking?")], {}, "surrogate"),
    "5,000 combining marks": ([_user("Where was Lavrov" + "\u0301" * 5000 + " speaking?")], {}, "combining marks"),
    "today 9999-12-31": ([_user("What did Lavrov say yesterday?")], {"today": "9999-12-31"}, "today=9999-12-31"),
    "today 0001-01-01": ([_user("What did Lavrov say yesterday?")], {"today": "0001-01-01"}, "today=0001-01-01"),
}


@pytest.fixture(scope="module")
def smol_client(tmp_path_factory: pytest.TempPathFactory, smollm) -> Iterator[TestClient]:
    """The API over SmolLM2: a too-long input used to overflow its context (a 500)."""
    index = tmp_path_factory.mktemp("bad-input")
    rag = RAG.open(settings=Settings(index_dir=index, seeds_dir=SEEDS, llm="smollm2-135m-instruct"),
                   embedder=HashingEmbedder(), llm=smollm)
    yield TestClient(create_app(rag), base_url=LOCAL, raise_server_exceptions=False)
    rag.close()


@pytest.mark.real_models
@pytest.mark.parametrize("case", list(BAD_CHATS))
def test_bad_chat_input_is_a_400_with_a_clear_message(smol_client: TestClient, case: str):
    messages, extra, expected = BAD_CHATS[case]
    assert expected in _error(_chat(smol_client, messages, **extra), 400)
    streamed = _chat(smol_client, messages, stream=True, **extra)  # refused before any event is sent
    assert expected in _error(streamed, 400)


def test_bad_search_input_is_a_400(seeded: RAG):
    client = TestClient(create_app(seeded), base_url=LOCAL, raise_server_exceptions=False)
    for today in ("9999-12-31", "0001-01-01"):
        r = client.post("/v1/search", json={"query": "What happened yesterday?", "today": today})
        assert f"today={today}" in _error(r, 400)
    r = client.post("/v1/search", json={"query": "Lavrov" + "\u0301" * 5000})
    assert _error(r, 400)


# ------------------------------------------------------------------ queue bound, per-client limit


def test_answers_beyond_the_bounds_get_429_and_503_at_once(seeded: RAG):
    seeded.settings = seeded.settings.model_copy(update={"api_max_pending_answers": 2, "api_max_answers_per_client": 1})
    app = create_app(seeded)
    client = TestClient(app, base_url=LOCAL)  # its address is "testclient"
    admission = app.state.admission
    body = {"messages": [_user(QUESTION)]}
    assert admission.enter("testclient") is None  # an answer of this client is in progress
    assert "RAG_API_MAX_ANSWERS_PER_CLIENT" in _error(client.post("/v1/chat/completions", json=body), 429)
    assert "RAG_API_MAX_ANSWERS_PER_CLIENT" in _error(client.post("/v1/chat/completions", json={**body, "stream": True}), 429)
    admission.leave("testclient")
    assert admission.enter("10.0.0.7") is None and admission.enter("10.0.0.8") is None  # the server is full
    assert "RAG_API_MAX_PENDING_ANSWERS" in _error(client.post("/v1/chat/completions", json=body), 503)
    admission.leave("10.0.0.7")
    assert client.post("/v1/chat/completions", json=body).status_code == 200
    r = client.post("/v1/chat/completions", json={**body, "stream": True})
    assert r.status_code == 200 and "[DONE]" in r.text
    assert admission.pending == 1  # both answers gave their slot back; the one held above remains


class _Uvicorn:
    """The API served by uvicorn in a thread, so the test can watch the model and the slots."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Uvicorn:
        self.thread.start()
        _wait(lambda: self.server.started, 30, "uvicorn did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.05)


@pytest.mark.real_models
def test_a_client_that_disconnects_stops_its_answer_and_frees_the_model(tmp_path: Path, smollm):
    rag = RAG.open(settings=Settings(index_dir=tmp_path / "index", seeds_dir=SEEDS, llm="smollm2-135m-instruct"),
                   embedder=HashingEmbedder(), llm=smollm)
    app = create_app(rag)
    with _Uvicorn(app) as server:
        # A long, rambling answer (hot sampling, thousands of tokens), not streamed.
        body = json.dumps({"messages": [_user(QUESTION)], "max_tokens": 4000, "temperature": 2.0}).encode()
        request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(request)
        _wait(smollm._lock.locked, 120, "the model never started the answer")
        sock.close()  # the client goes away mid-answer
        # Uncancelled, this answer holds the model for over ten minutes here (measured).
        _wait(lambda: not smollm._lock.locked(), 120, "the model kept generating for a client that had gone")
        _wait(lambda: app.state.admission.pending == 0, 30, "the abandoned answer kept its slot")
        assert app.state.admission.cancelled == 1
        r = httpx.post(f"http://127.0.0.1:{server.port}/v1/chat/completions", timeout=300,
                       json={"messages": [_user(QUESTION)], "max_tokens": 32, "temperature": 0})
        assert r.status_code == 200 and r.json()["object"] == "chat.completion"
        assert app.state.admission.cancelled == 1  # a finished answer is not counted as cancelled
    rag.close()


# ------------------------------------------------------------------ uploads and deletion (API)


def test_deleting_an_article_deletes_its_stored_upload(seeded: RAG):
    client = TestClient(create_app(seeded), base_url=LOCAL)
    r = client.post("/v1/articles", files={"files": ("story.md", STORY, "text/markdown")})
    (article_id,) = r.json()["results"][0]["article_ids"]
    (stored,) = _uploads(seeded)
    assert stored.startswith("story-")
    # The same bytes again: a duplicate, indexed nowhere, so no second copy is kept.
    r = client.post("/v1/articles", files={"files": ("again.md", STORY, "text/markdown")})
    assert r.json()["results"][0]["status"] == "duplicate" and _uploads(seeded) == [stored]
    r = client.post("/v1/articles", json={"articles": [{"title": "JSON story", "text": "The Kessel bridge reopened."}]})
    (json_id,) = r.json()["results"][0]["article_ids"]
    assert len(_uploads(seeded)) == 2
    assert client.delete(f"/v1/articles/{article_id}").status_code == 200
    assert client.delete(f"/v1/articles/{json_id}").status_code == 200
    assert _uploads(seeded) == []
    assert not any(b"Vorlund" in p.read_bytes() for p in seeded.store.directory.rglob("*") if p.is_file() and "uploads" in p.parts)


# ------------------------------------------------------------------ answer rendering


PHISH = "https://evil.example/login?next=account"


def test_urls_from_sources_are_text_in_answers_and_links_only_to_the_article():
    text = f"Readers should verify their account at {PHISH}. Or mail help@evil.example or visit www.evil.example now."
    info = ArticleInfo("a1", "Bank notice", "Daily", "https://news.example/bank-notice", None, date(2024, 1, 2), "a.txt", 1, "now")
    hit = Hit(1, info, 0, 0, len(text), text, 0.5)
    answer = Answer(question="q?", text=f"{text} [1]", citations=[Citation(1, hit, text, 0, len(text))], sources=[hit])
    md = answer_markdown(answer, turn=0)
    rendered = MarkdownIt("commonmark").render(md)
    assert "<a" not in rendered.replace('<a class="cite"', "")  # the citation link is the only one
    assert f"<code>{PHISH.replace('&', '&amp;')}</code>" in rendered and "<code>www.evil.example</code>" in rendered
    assert "<code>help@evil.example</code>" in rendered
    # Outside code spans, no address is left for the chat's GFM autolinker to turn into a link.
    outside = "".join(md.split("`")[::2])
    assert "evil.example" not in outside
    cards = sources_html([answer], {"a1": text})
    assert cards.count("<a ") == 1 and 'href="https://news.example/bank-notice"' in cards
    assert f'href="{PHISH}' not in cards


# ------------------------------------------------------------------ the Gradio app


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RAG, object]]:
    from rag.serve.web import launch
    from rag.testing import ExtractiveFakeGenerator

    with pytest.MonkeyPatch.context() as mp:
        for var in ("RAG_HOST", "RAG_USERNAME", "RAG_PASSWORD", "RAG_MAX_UPLOAD_BYTES", "RAG_MAX_UPLOAD_FILES"):
            mp.delenv(var, raising=False)
        settings = Settings(index_dir=tmp_path_factory.mktemp("web"), seeds_dir=SEEDS, api_key=SecretStr(KEY))
        rag = RAG.open(settings=settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())
        port = free_port()
        app = launch(rag=rag, port=port, block=False, api=True)
    yield f"http://127.0.0.1:{port}", rag, app
    app.close()
    rag.close()


_call = call_api  # one Gradio HTTP API helper (tests/test_serving_security.py)


def _upload(client: httpx.Client, url: str, name: str, content: bytes, **headers: str) -> httpx.Response:
    return client.post(f"{url}/gradio_api/upload", files={"files": (name, content, "text/plain")}, headers=headers)


def _file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def test_the_web_app_refuses_a_foreign_host_and_cross_origin_writes(web):
    from gradio.utils import get_upload_folder

    url, rag, _ = web
    port = url.rsplit(":", 1)[1]
    with httpx.Client(timeout=30) as client:
        for path in ("/", "/config", "/gradio_api/info", "/v1/models", "/health"):
            r = client.get(url + path, headers={"Host": f"evil.example:{port}"})
            assert r.status_code == 400 and "RAG_ALLOWED_HOSTS" in r.text, path
        assert client.get(url + "/").status_code == 200  # the control: the real name works
        before = sorted(Path(get_upload_folder()).rglob("*")) if Path(get_upload_folder()).exists() else []
        r = _upload(client, url, "story.txt", STORY, Origin="https://evil.example")
        assert r.status_code == 403 and "cross-origin" in r.text
        r = client.post(url + "/gradio_api/call/answer", json={"data": [QUESTION, [], 0, ""]},
                        headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
        after = sorted(Path(get_upload_folder()).rglob("*")) if Path(get_upload_folder()).exists() else []
        assert after == before
        r = _upload(client, url, "story.txt", STORY, Origin=url)  # the app's own page may upload
        assert r.status_code == 200


def test_answer_accepts_only_listed_model_names(web):
    from rag.models.registry import resolve_llm

    url, rag, _ = web
    model = resolve_llm("smollm2-135m-instruct", rag.settings.cache_dir)
    alias = f"{model.parent}/./{model.name}"
    loaded = set(rag._generators)
    with httpx.Client(timeout=60) as client:
        (uploaded,) = _upload(client, url, "model.gguf", b"GGUF" + b"\0" * 64).json()
        for llm in (alias, str(model), uploaded, "../../" + model.name):
            event, message = _call(client, url, "answer", [QUESTION, [], 0, llm])
            assert event == "error" and "unknown model" in str(message) and "choose one of" in str(message), (llm, message)
        event, answer = _call(client, url, "answer", [QUESTION, [], 0, ""])  # the default still answers
        assert event == "complete" and "guarantor" in answer[0]["answer"]
    assert set(rag._generators) == loaded  # nothing was loaded from a path


@pytest.mark.parametrize("case", ["900 KB question", "300 KB history turn", "5,000 combining marks"])
def test_answer_refuses_bad_input_with_a_clear_message(web, case: str):
    url, _, _ = web
    messages, _, expected = BAD_CHATS[case]
    question = messages[-1]["content"]
    history = [[messages[0]["content"], messages[1]["content"]]] if len(messages) > 1 else []
    with httpx.Client(timeout=60) as client:
        event, message = _call(client, url, "answer", [question, history, 0, ""])
    assert event == "error" and expected in str(message), (case, str(message)[:300])


def test_uploads_are_not_kept_or_served_back_and_removal_deletes_the_copy(web):
    url, rag, _ = web
    with httpx.Client(timeout=60) as client:
        (stored,) = _upload(client, url, "kept.txt", b"Kept story\nThe Ambry lighthouse was repainted on Tuesday.\n").json()
        for route in ("/gradio_api/file=", "/file=", "/gradio_api/file/"):
            r = client.get(f"{url}{route}{stored}")
            assert r.status_code == 404 and b"Ambry" not in r.content, route
        # One session, as in a browser: adding updates that session's list of removable articles.
        event, outputs = _call(client, url, "add_articles", [[_file_data(stored)]], session="s1")
        assert event == "complete" and outputs[0]["data"][0][1] == "added", outputs
        assert not Path(stored).exists()  # Gradio's temporary copy is gone once indexed
        (article,) = rag.articles("Kept story")
        assert any("Ambry" in (rag.store.directory / "uploads" / n).read_text() for n in _uploads(rag))
        event, _ = _call(client, url, "remove_article", [article.id], session="s1")
        assert event == "complete"
    assert not rag.articles("Kept story")
    assert not any("Ambry" in (rag.store.directory / "uploads" / n).read_text() for n in _uploads(rag))
