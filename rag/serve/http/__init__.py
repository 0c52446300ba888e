"""The HTTP API (``rag serve``): OpenAI-compatible chat completions over the RAG pipeline, plus
search, ingest and article removal. Built over the :class:`rag.RAG` facade (and its store, to
look articles up by id).

    POST   /v1/chat/completions   the conversation goes through follow-up rewriting, retrieval and
                                  citation checks; ``stream: true`` sends server-sent events; the
                                  answer carries structured ``citations`` besides its [n] text
    GET    /v1/models             the installed bundled LLMs (and ``openai-compatible`` if set up)
    POST   /v1/search             passages for a query
    GET    /v1/articles           the indexed articles
    POST   /v1/articles           ingest: JSON ``{"articles": [...]}`` or multipart file uploads
    DELETE /v1/articles/{id}      remove an article
    POST   /v1/briefing           the period's stories in cited sentences (rag.stories)
    POST   /v1/timeline           dated, cited events about a subject
    GET    /v1/articles/{id}/related  the article's story and the stories before and after it
    GET    /health                liveness (no token needed)

Errors use OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so OpenAI clients
raise their usual exceptions. With ``RAG_API_KEY`` set, every /v1 request needs
``Authorization: Bearer <key>``; bodies are capped before they are read.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from rag.api import RAG
from rag.index.periods import article_infos
from rag.serve.admission import Admission, run_unless_client_leaves
from rag.serve.http.chat import _AnswerStream, _Chat, _last_answer
from rag.serve.http.errors import ApiError, _install_error_handlers, error_body
from rag.serve.http.feeds import feeds_router
from rag.serve.http.ingest import _articles_as_files, _ingest_files, _uploaded_files
from rag.serve.http.limits import _Guard
from rag.serve.http.shapes import ArticlesIn, ChatRequest, SearchRequest, _article_json, _hit_json
from rag.serve.http.stories import stories_router
from rag.serve.request_checks import check_text, check_today
from rag.serve.uploads import WebLimits, discard_unreferenced
from rag.serve.web_guard import WebGuard, allowed_names

log = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def create_app(rag: RAG, api_key: str | None = None, host: str | None = None) -> FastAPI:
    """The API over ``rag``. ``api_key`` (default ``RAG_API_KEY``) is the bearer token every /v1
    request must carry; without one the API is open, so keep it on localhost. ``host`` is the
    bound address (default ``RAG_API_HOST``): with ``RAG_ALLOWED_HOSTS``, the names requests
    may carry in ``Host`` (IP addresses and localhost always pass)."""
    settings = rag.settings
    if api_key is None:
        api_key = settings.api_key_value()
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

    app.include_router(stories_router(rag, admission))  # POST /v1/briefing, /v1/timeline; GET /v1/articles/{id}/related
    app.include_router(feeds_router(rag))  # GET/POST /v1/feeds, DELETE /v1/feeds/{ref}, POST /v1/feeds/sync

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
                named = await _uploaded_files(request, Path(tmp), WebLimits.of(rag.settings))
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
        # Exact ids only (looked up by key): RAG.remove also takes prefixes and paths, too loose for an HTTP delete.
        found = article_infos(rag.store, [article_id])
        if article_id not in found:
            raise ApiError(404, f"no article with id '{article_id}'", code="article_not_found", param="article_id")
        origins = [found[article_id].origin]
        rag.remove(article_id)
        discard_unreferenced(origins, upload_dir, rag)  # the upload held the article's full text
        return {"id": article_id, "object": "article.deleted", "deleted": True}

    return app


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
    if api_key is None:
        api_key = settings.api_key_value()
    if warning := check_bind(host, api_key):
        log.warning(warning)
        print(f"warning: {warning}", flush=True)
    app = create_app(rag, api_key, host)
    print(f"serving the API at http://{host}:{port}/v1 (model {settings.llm})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = ["ApiError", "check_bind", "create_app", "error_body", "mount_api", "serve"]
