"""The guard in front of every route: the bearer key, the Host check and body-size caps, applied
before a body is read."""

from __future__ import annotations

import secrets

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.serve.http.errors import ApiError, _error_response

# Outside /v1 but describing it: behind the key too (FastAPI's defaults, in case they are enabled).
DOC_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


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
