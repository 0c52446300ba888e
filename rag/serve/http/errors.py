"""Errors in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, and how each
RagError and framework error maps to a status."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import ModelIntegrityError, ModelNotFoundError, RagError, RemoteModelError

log = logging.getLogger(__name__)

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
