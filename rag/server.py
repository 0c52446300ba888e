"""The HTTP API (``rag serve``): OpenAI-compatible chat completions over the RAG pipeline, plus
search, ingest and article removal. Built over the :class:`rag.RAG` facade only.

    POST   /v1/chat/completions   the conversation goes through follow-up rewriting, retrieval and
                                  citation checks; ``stream: true`` sends server-sent events; the
                                  answer carries structured ``citations`` besides its [n] text
    GET    /v1/models             the installed bundled LLMs (and ``openai-compatible`` if set up)
    POST   /v1/search             passages for a query
    GET    /v1/articles           the indexed articles
    POST   /v1/articles           ingest: JSON ``{"articles": [...]}`` or multipart file uploads
    DELETE /v1/articles/{id}      remove an article
    GET    /health                liveness (no token needed)

Errors use OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so OpenAI clients
raise their usual exceptions. With ``RAG_API_KEY`` set, every /v1 request needs
``Authorization: Bearer <key>``; bodies are capped before they are read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .admission import Admission, run_unless_client_leaves
from .api import RAG
from .errors import ModelIntegrityError, ModelNotFoundError, RagError, RemoteModelError
from .request_checks import check_history, check_question, check_text, check_today
from .results import Answer, ArticleInfo, Hit, IngestReport
from .uploads import WebLimits, discard_unreferenced, safe_upload_name, store_uploads
from .web_guard import WebGuard, allowed_names

log = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_JSON_ARTICLES = 1000
# Outside /v1 but describing it: behind the key too (FastAPI's defaults, in case they are enabled).
DOC_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


# ------------------------------------------------------------------ errors


class ApiError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self, status: int, message: str, type: str = "invalid_request_error", code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param


def error_body(message: str, type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _error_response(e: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(e.message, e.type, e.code, e.param), status_code=e.status, headers=headers)


def _from_rag_error(e: Exception) -> ApiError:
    if _context_overflow(e):
        return ApiError(400, "the question, history and sources do not fit the model's context window "
                        f"({e}); ask a shorter question or send less history", code="context_length_exceeded")
    if not isinstance(e, RagError):
        return ApiError(500, "internal server error (see the server log)", "server_error")
    if isinstance(e, RemoteModelError):
        return ApiError(502, str(e), "api_error", "model_server_unavailable")
    if isinstance(e, (ModelNotFoundError, ModelIntegrityError)):
        return ApiError(503, str(e), "api_error", "model_unavailable")
    return ApiError(400, str(e))


def _context_overflow(e: Exception) -> bool:
    # llama-cpp-python's ValueError "Requested tokens (N) exceed context window of M": the
    # caller's input was too long, which the size checks bound but cannot make exact.
    return isinstance(e, ValueError) and "exceed context window" in str(e)


_HTTP_CODES = {401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        return _error_response(e)

    @app.exception_handler(RagError)
    async def rag_error(_: Request, e: RagError) -> JSONResponse:
        return _error_response(_from_rag_error(e))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        message = e.detail if isinstance(e.detail, str) else json.dumps(e.detail)
        return _error_response(ApiError(e.status_code, message, code=_HTTP_CODES.get(e.status_code)), e.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        # OpenAI answers bad parameters with 400 invalid_request_error, naming the parameter.
        errors = e.errors()
        first = errors[0] if errors else {}
        loc = [str(part) for part in first.get("loc", ()) if part != "body"]
        param = ".".join(loc) or None
        message = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body') or 'body'}: {err.get('msg')}" for err in errors[:5]
        )
        return _error_response(ApiError(400, message or "invalid request", code="invalid_value", param=param))

    @app.exception_handler(Exception)
    async def server_error(_: Request, e: Exception) -> JSONResponse:
        if _context_overflow(e):
            return _error_response(_from_rag_error(e))
        log.exception("unexpected error in the API")
        return _error_response(ApiError(500, "internal server error (see the server log)", "server_error"))


# ------------------------------------------------------------------ auth and size limits


class _Guard:
    """Checks the bearer token and the body size of every /v1 request before its body is read.

    A declared Content-Length over the limit is refused at once; a body that grows past it
    while streaming in (chunked uploads) stops the request with the same 413."""

    def __init__(self, app: ASGIApp, api_key: str | None, max_bytes: int, max_ingest_bytes: int) -> None:
        self.app = app
        self.api_key = api_key
        self.max_bytes = max_bytes
        self.max_ingest_bytes = max_ingest_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if not path.startswith("/v1/") and path not in DOC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.api_key is not None and not self._authorised(headers.get("authorization", "")):
            await self._refuse(scope, receive, send, ApiError(
                401, "missing or wrong API key: send 'Authorization: Bearer <RAG_API_KEY>'", "invalid_request_error",
                "invalid_api_key",
            ), {"WWW-Authenticate": "Bearer"})
            return
        limit = self.max_ingest_bytes if path.rstrip("/") == "/v1/articles" else self.max_bytes
        too_large = ApiError(413, f"request body over the {limit:,}-byte limit", code="request_too_large")
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            await self._refuse(scope, receive, send, too_large)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(too_large.message)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _error_response(too_large)(scope, receive, send)

    def _authorised(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        assert self.api_key is not None
        return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), self.api_key.encode())

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, e: ApiError, headers: dict[str, str] | None = None) -> None:
        await _error_response(e, headers)(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    # An HTTPException, so FastAPI's body reading passes it on unchanged to the 413 handler.
    def __init__(self, message: str) -> None:
        super().__init__(413, message)


# ------------------------------------------------------------------ request and response shapes


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # [{"type": "text", "text": ...}, ...]
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type", "text") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI's chat request; unknown OpenAI parameters are ignored. ``k``, ``since``, ``until``,
    ``mode`` and ``today`` are this API's extensions (``extra_body`` in the openai client)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    n: int = Field(1, ge=1, le=1)
    k: int | None = Field(None, ge=1, le=50)
    since: date | None = None
    until: date | None = None
    mode: Literal["dense", "bm25", "hybrid", "rerank"] | None = None
    today: date | None = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000)
    k: int | None = Field(None, ge=1, le=50)
    since: date | None = None
    until: date | None = None
    mode: Literal["dense", "bm25", "hybrid", "rerank"] | None = None
    today: date | None = None


class ArticleIn(BaseModel):
    """One article to index. Other field names the JSON loader knows (``body``, ``published_at``,
    ``headline``, ...) are accepted too."""

    model_config = ConfigDict(extra="allow")

    title: str | None = None
    text: str | None = None
    url: str | None = None
    published: str | None = None
    source: str | None = None
    author: str | None = None
    id: str | None = None


class ArticlesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    articles: list[ArticleIn] = Field(min_length=1, max_length=MAX_JSON_ARTICLES)


def _article_json(a: ArticleInfo) -> dict[str, Any]:
    return {
        "id": a.id, "object": "article", "title": a.title, "source": a.source, "url": a.url, "author": a.author,
        "published": a.published.isoformat() if a.published else None, "chunks": a.chunk_count,
        "added_at": a.added_at, "duplicate_of": a.duplicate_of,
    }


def _hit_json(h: Hit) -> dict[str, Any]:
    return {
        "object": "passage", "article_id": h.article.id, "title": h.article.title, "source": h.article.source,
        "url": h.article.url, "published": h.article.published.isoformat() if h.article.published else None,
        "text": h.text, "start": h.start, "end": h.end, "score": round(h.score, 4),
    }


def _citations(answer: Answer) -> list[dict[str, Any]]:
    citations = answer.to_dict()["citations"]
    assert isinstance(citations, list)
    for c, citation in zip(citations, answer.citations):
        c["url"] = citation.article.url
    return citations


# ------------------------------------------------------------------ chat


def _conversation(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """(question, history as (user, assistant) turns). System prompts are ignored: the answer
    prompt is this server's own (prompts/), so that citations can be checked."""
    last = messages[-1]
    if last.role != "user" or not last.text().strip():
        raise ApiError(400, "the last message must be a non-empty user message (the question)", param="messages")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for m in messages[:-1]:
        if m.role == "user":
            pending = m.text()
        elif m.role == "assistant" and pending is not None:
            history.append((pending, m.text()))
            pending = None
    return last.text().strip(), history


class _Chat:
    """One chat completion request, answered whole or as server-sent events."""

    def __init__(self, rag: RAG, body: ChatRequest) -> None:
        self.rag = rag
        self.body = body
        self.model = body.model or rag.settings.llm
        if self.model not in rag.available_llms():
            raise ApiError(
                404, f"the model '{self.model}' does not exist; GET /v1/models lists the ones available",
                code="model_not_found", param="model",
            )
        self.question, self.history = _conversation(body.messages)
        check_question(self.question)
        check_history(self.history)
        check_today(body.today)
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def events(self, cancel: threading.Event) -> Iterator[str | Answer]:
        b = self.body
        return self.rag.stream(
            self.question, history=self.history, k=b.k, since=b.since, until=b.until, llm=self.model, cancel=cancel,
            today=b.today, mode=b.mode, max_tokens=b.max_completion_tokens or b.max_tokens, temperature=b.temperature,
        )

    def _extras(self, answer: Answer) -> dict[str, Any]:
        # The checked answer: its text can differ from the streamed words (normalised
        # citations, a refusal), so a client should show ``rag.answer`` once it arrives.
        return {"citations": _citations(answer), "rag": answer.to_dict()}

    def completion(self, answer: Answer) -> dict[str, Any]:
        citations = _citations(answer)
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{
                "index": 0, "finish_reason": "stop", "logprobs": None,
                "message": {"role": "assistant", "content": answer.text, "refusal": None, "citations": citations},
            }],
            **self._extras(answer),
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        data = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            **extra,
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    async def sse(self) -> AsyncIterator[str]:
        """The answer as chat.completion.chunk events; the last one carries the citations.

        RAG.stream blocks, so it runs in its own thread and hands events over a queue; when the
        client goes away, ``cancel`` stops the model at its next token and frees it."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()
        end = object()

        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, item)
            except RuntimeError:  # the event loop is gone (server shutting down)
                cancel.set()

        def work() -> None:
            stream = None
            try:
                stream = self.events(cancel)
                for event in stream:
                    put(event)
                    if cancel.is_set():
                        break
            except Exception as e:  # noqa: BLE001 - handed to the client as an error event
                put(e)
            finally:
                if stream is not None:
                    stream.close()
                put(end)

        threading.Thread(target=work, daemon=True, name="rag-api-answer").start()
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            while (item := await events.get()) is not end:
                if isinstance(item, str):
                    yield self.chunk({"content": item})
                elif isinstance(item, Answer):
                    yield self.chunk({}, "stop", **self._extras(item))
                elif isinstance(item, Exception):
                    e = _from_rag_error(item)
                    if e.status >= 500 and not isinstance(item, RagError):
                        log.error("answer failed", exc_info=item)
                    yield f"data: {json.dumps(error_body(e.message, e.type, e.code, e.param))}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            cancel.set()


# ------------------------------------------------------------------ ingest


def _ingest_files(rag: RAG, named: list[tuple[str, Path]], upload_dir: Path) -> dict[str, Any]:
    """Store accepted files under the index's uploads/ and index them; one result per file."""
    limits = WebLimits()
    results: list[dict[str, Any]] = []
    accepted: list[tuple[int, Path]] = []
    for name, path in named:
        stored, rejected = store_uploads([str(path)], upload_dir, limits)
        if rejected:
            results.append({"name": name, "status": "rejected", "detail": rejected[0][2], "article_ids": []})
        else:
            results.append({"name": name, "status": "", "detail": "", "article_ids": []})
            accepted.append((len(results) - 1, stored[0]))
    report = rag.add([p for _, p in accepted]) if accepted else IngestReport()
    by_origin: dict[str, list[str]] = {}
    for a in rag.articles():
        by_origin.setdefault(a.origin, []).append(a.id)
    # A duplicate or a failure indexed nothing: keep no copy of it.
    discard_unreferenced([str(p) for _, p in accepted], upload_dir, rag)
    for i, path in accepted:
        result = report.files.get(str(path))
        results[i].update(
            status=result.status if result else "failed",
            detail=result.detail() if result else "nothing was read from this file",
            article_ids=by_origin.get(str(path), []) if result and (result.added or result.updated) else [],
        )
    return {
        "object": "ingest.report", "summary": report.summary(), "added": report.added, "updated": report.updated,
        "duplicates": len(report.duplicates), "failed": len(report.failed) + sum(r["status"] == "rejected" for r in results),
        "chunks": report.chunks, "results": results,
    }


async def _uploaded_files(request: Request, tmp: Path) -> list[tuple[str, Path]]:
    limits = WebLimits()
    form = await request.form(max_files=limits.max_upload_files, max_fields=limits.max_upload_files)
    try:
        uploads = [v for _, v in form.multi_items() if not isinstance(v, str)]
        if not uploads:
            raise ApiError(400, "no files in the upload (send them as multipart 'files')", param="files")
        named: list[tuple[str, Path]] = []
        for i, upload in enumerate(uploads):
            name = safe_upload_name(upload.filename or "upload")
            target = tmp / str(i) / name  # one folder each: two uploads may share a name
            target.parent.mkdir()
            with target.open("wb") as out:
                while chunk := await upload.read(1 << 20):
                    out.write(chunk)
            named.append((upload.filename or name, target))
        return named
    finally:
        await form.close()


def _articles_as_files(body: ArticlesIn, tmp: Path) -> list[tuple[str, Path]]:
    """Each JSON article becomes its own .json file (named by its content, so posting it again
    is a duplicate), which the JSON loader reads like any other: same fields, same checks."""
    named = []
    for i, article in enumerate(body.articles):
        record = article.model_dump(exclude_none=True)
        data = json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")
        target = tmp / str(i) / f"api-{hashlib.sha256(data).hexdigest()[:16]}.json"
        target.parent.mkdir()
        target.write_bytes(data)
        named.append((record.get("title") or record.get("id") or record.get("url") or f"articles[{i}]", target))
    return named


# ------------------------------------------------------------------ the app


def create_app(rag: RAG, api_key: str | None = None, host: str | None = None) -> FastAPI:
    """The API over ``rag``. ``api_key`` (default ``RAG_API_KEY``) is the bearer token every /v1
    request must carry; without one the API is open, so keep it on localhost. ``host`` is the
    bound address (default ``RAG_API_HOST``): with ``RAG_ALLOWED_HOSTS``, the names requests
    may carry in ``Host`` (IP addresses and localhost always pass)."""
    settings = rag.settings
    if api_key is None and settings.api_key is not None:
        api_key = settings.api_key.get_secret_value() or None
    app = FastAPI(
        title="News RAG API", version="1", summary="Cited answers from your news articles, OpenAI-compatible.",
        docs_url=None, redoc_url=None,  # no pages that pull scripts from a CDN
    )
    app.add_middleware(
        _Guard, api_key=api_key, max_bytes=settings.api_max_request_bytes, max_ingest_bytes=settings.api_max_ingest_bytes
    )
    # Added last, so it runs first: a rebinding Host or a foreign page's write gets nothing.
    app.add_middleware(WebGuard, names=allowed_names(host or settings.api_host, settings.allowed_hosts))
    _install_error_handlers(app)
    upload_dir = rag.info().directory / "uploads"
    admission = Admission(settings.api_max_pending_answers, settings.api_max_answers_per_client)
    app.state.admission = admission

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": settings.llm, "model_ready": rag.model_ready()}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": name, "object": "model", "created": 0, "owned_by": "rag"} for name in rag.available_llms()],
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatRequest, request: Request) -> JSONResponse | StreamingResponse:
        chat = _Chat(rag, body)
        # Resolve the model before answering, so a missing one is a clean error, not a broken stream.
        await run_in_threadpool(rag.generator_for, chat.model)
        client = request.client.host if request.client else "?"
        if refused := admission.enter(client):
            raise ApiError(refused.status, refused.message, "rate_limit_error" if refused.status == 429 else "api_error",
                           refused.code)
        if body.stream:
            # The slot is given back when the response ends, however it ends (the SSE
            # generator stops the model in its own finally).
            return _AnswerStream(
                chat.sse(), lambda: admission.leave(client), media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        answer = await run_unless_client_leaves(
            lambda cancel: _last_answer(chat.events, cancel), request.receive,
            lambda cancelled: admission.leave(client, cancelled),
        )
        if answer is None:  # nobody is listening any more; 499 is nginx's "client closed request"
            return JSONResponse(error_body("the client closed the connection", "api_error", "client_closed"), status_code=499)
        return JSONResponse(chat.completion(answer))

    @app.post("/v1/search")
    def search(body: SearchRequest) -> dict[str, Any]:
        check_text(body.query, "the query", 4000)
        check_today(body.today)
        hits = rag.search(body.query, k=body.k, since=body.since, until=body.until, mode=body.mode, today=body.today)
        return {"object": "list", "query": body.query, "data": [_hit_json(h) for h in hits]}

    @app.get("/v1/articles")
    def list_articles(search: str | None = None) -> dict[str, Any]:
        return {"object": "list", "data": [_article_json(a) for a in rag.articles(search)]}

    @app.post("/v1/articles")
    async def add_articles(request: Request) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        with tempfile.TemporaryDirectory(prefix="rag-api-") as tmp:
            if content_type == "multipart/form-data":
                named = await _uploaded_files(request, Path(tmp))
            elif content_type == "application/json":
                try:
                    body = TypeAdapter(ArticlesIn).validate_json(await request.body())
                except ValidationError as e:
                    raise RequestValidationError(e.errors(include_url=False)) from None
                named = _articles_as_files(body, Path(tmp))
            else:
                raise ApiError(415, "send application/json {\"articles\": [...]} or multipart/form-data files", code="unsupported_media_type")
            return await run_in_threadpool(_ingest_files, rag, named, upload_dir)

    @app.delete("/v1/articles/{article_id}")
    def delete_article(article_id: str) -> dict[str, Any]:
        # Exact ids only: RAG.remove also takes prefixes and paths, too loose for an HTTP delete.
        if not any(a.id == article_id for a in rag.articles()):
            raise ApiError(404, f"no article with id '{article_id}'", code="article_not_found", param="article_id")
        origins = [a.origin for a in rag.articles() if a.id == article_id]
        rag.remove(article_id)
        discard_unreferenced(origins, upload_dir, rag)  # the upload held the article's full text
        return {"id": article_id, "object": "article.deleted", "deleted": True}

    return app


class _AnswerStream(StreamingResponse):
    """A streamed answer that runs ``on_close`` once the response is over, even when the client
    left before the first event (the body generator then never starts, so its finally never runs)."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


def _last_answer(events: Callable[[threading.Event], Iterator[str | Answer]], cancel: threading.Event) -> Answer:
    answer = None
    for event in events(cancel):
        if isinstance(event, Answer):
            answer = event
    assert answer is not None
    return answer


def mount_api(app: FastAPI, rag: RAG, api_key: str | None = None, host: str | None = None) -> FastAPI:
    """Serve the API from an existing FastAPI app (the Gradio app's, for one): its own routes
    keep precedence, and /v1/... and /health fall through to the API, with its own auth,
    limits and error shape. Returns the API app."""
    api = create_app(rag, api_key, host)
    app.mount("", api, name="rag-api")  # appended last: only paths the host app does not serve reach it
    return api


def check_bind(host: str, api_key: str | None) -> str | None:
    """A warning when the API would be open to the network."""
    if host not in LOOPBACK and not api_key:
        return (
            f"the API listens on {host} without an API key: anyone who can reach it can read and change "
            "the index. Set RAG_API_KEY, or keep the default 127.0.0.1."
        )
    return None


def serve(rag: RAG, host: str | None = None, port: int | None = None, api_key: str | None = None) -> None:
    """Run the API with uvicorn until interrupted (``rag serve``)."""
    import uvicorn

    settings = rag.settings
    host = host or settings.api_host
    port = port or settings.api_port
    if api_key is None and settings.api_key is not None:
        api_key = settings.api_key.get_secret_value() or None
    if warning := check_bind(host, api_key):
        log.warning(warning)
        print(f"warning: {warning}", flush=True)
    app = create_app(rag, api_key, host)
    print(f"serving the API at http://{host}:{port}/v1 (model {settings.llm})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
