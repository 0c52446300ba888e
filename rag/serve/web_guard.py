"""Browser-facing checks shared by the HTTP API and the Gradio app, as one ASGI middleware.

- ``Host`` must name this server: localhost, an IP address, the bound name or one of
  ``RAG_ALLOWED_HOSTS``. A DNS-rebinding page (``evil.example`` re-pointed at 127.0.0.1) is
  same-origin to the browser, but its requests still carry ``Host: evil.example``.
- Writes (any method but GET/HEAD/OPTIONS) from a browser must come from this server's own
  pages: a foreign ``Origin`` (or, without one, a foreign ``Referer``) is refused. A form on
  any web site can POST multipart without a CORS preflight, so CORS alone protects nothing.
  Browsers send ``Origin`` on every non-GET request, so this holds without a key; clients
  that are not browsers (curl, openai, gradio_client) send neither header and pass.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
WILDCARD_BINDS = {"0.0.0.0", "::", ""}


def parse_hosts(value: str | Iterable[str] | None) -> list[str]:
    """``RAG_ALLOWED_HOSTS`` (comma-separated) as a list of lower-case names."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [h.strip().lower().rstrip(".") for h in items if h and h.strip()]


def hostname(netloc: str) -> str:
    """The host name of ``host[:port]`` / ``[v6]:port``, lower case, without a trailing dot."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    if netloc.count(":") == 1:
        netloc = netloc.split(":", 1)[0]
    return netloc.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def allowed_names(bind_host: str | None, extra: str | Iterable[str] | None) -> frozenset[str]:
    """Names this server answers to (IP addresses always pass: no DNS, so no rebinding)."""
    names = {"localhost", *parse_hosts(extra)}
    if bind_host and not _is_ip(hostname(bind_host)) and bind_host not in WILDCARD_BINDS:
        names.add(hostname(bind_host))
    if bind_host in WILDCARD_BINDS or (bind_host and not _is_ip(bind_host) and bind_host != "localhost"):
        # Listening for the network: the machine's own names are how people reach it.
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(names)


def host_allowed(host_header: str | None, names: frozenset[str]) -> bool:
    if "*" in names or not host_header:  # no Host at all: not a browser (browsers always send one)
        return True
    name = hostname(host_header)
    return _is_ip(name) or name in names or any(n.startswith(".") and name.endswith(n) for n in names)


def _error(status: int, message: str, code: str) -> tuple[dict[str, object], bytes]:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}})
    return {"type": "http.response.start", "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}, body.encode()


class WebGuard:
    """Refuses foreign ``Host`` headers (400), cross-origin browser writes (403) and, when
    given, every path starting with one of ``blocked_prefixes`` (404)."""

    def __init__(self, app: ASGIApp, names: frozenset[str], blocked_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.names = names
        self.blocked_prefixes = blocked_prefixes

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if self.blocked_prefixes and path.startswith(self.blocked_prefixes):
            return 404, "not found: this app serves no files by path", "not_found"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host")
        if not host_allowed(host, self.names):
            name = hostname(host or "")[:100]
            return 400, (f"the Host '{name}' is not one this server answers to (a guard against DNS rebinding); "
                         f"if you reach it by that name, add it to RAG_ALLOWED_HOSTS"), "host_not_allowed"
        if scope.get("method", "GET").upper() in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is None and headers.get("referer"):
            parts = urlsplit(headers["referer"])
            origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "null"
        if origin is None:
            return None
        netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
        if netloc and (netloc == (host or "").lower() or hostname(netloc) in self.names - {"localhost"}):
            return None
        return 403, (f"cross-origin request refused: writes are accepted only from this server's own pages "
                     f"(Origin {origin[:100]!r}); call it from a program, not a web page"), "cross_origin_refused"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        start, body = _error(*refused)
        await send(start)
        await send({"type": "http.response.body", "body": body})
