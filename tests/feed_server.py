"""A real HTTP server on 127.0.0.1 serving feeds and article pages for the feed tests (never the
internet): routes are set per test, every request is logged, ETag / Last-Modified are honoured."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # before the status line
    drip: float = 0.0  # between the body's bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    at: float
    status: int = 0


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[Request] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, time.monotonic())
                with server._lock:
                    server.log.append(request)
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    self._answer(request)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, request: Request) -> None:
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    request.status = 404
                    self.send_error(404)
                    return
                time.sleep(route.delay)
                # RFC 9110: If-None-Match, when sent, decides alone; If-Modified-Since only without it.
                if "if-none-match" in request.headers:
                    fresh = bool(route.etag) and request.headers["if-none-match"] == route.etag
                else:
                    fresh = bool(route.last_modified) and request.headers.get("if-modified-since") == route.last_modified
                request.status = 304 if fresh else route.status
                self.send_response(request.status)
                for name, value in (("ETag", route.etag), ("Last-Modified", route.last_modified)):
                    if value:
                        self.send_header(name, value)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if fresh:
                    self.end_headers()
                    return
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if not route.drip:
                    self.wfile.write(route.body)
                    return
                for byte in route.body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(route.drip)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def requests_for(self, path: str) -> list[Request]:
        return [r for r in self.log if r.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def rss(title: str, items: list[dict[str, str]]) -> bytes:
    """An RSS 2.0 feed; each item's keys are its element names (title, link, guid, description, pubDate, author)."""
    parts = [f"<item>{''.join(f'<{k}>{escape(v)}</{k}>' for k, v in item.items())}</item>" for item in items]
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>http://127.0.0.1/</link><description>test feed</description>{''.join(parts)}</channel></rss>"
    ).encode()


def article_page(title: str, paragraphs: list[str], site: str = "Harbour Gazette", author: str | None = None) -> bytes:
    """A news page with a menu and footer around the article, as trafilatura meets them."""
    byline = f'<meta name="author" content="{escape(author)}">' if author else ""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        f'<!doctype html><html><head><title>{escape(title)} | {escape(site)}</title>'
        f'<meta property="og:site_name" content="{escape(site)}">{byline}</head><body>'
        '<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>'
        f"<article><h1>{escape(title)}</h1>{body}</article>"
        "<footer>Copyright Harbour Gazette. All rights reserved. Subscribe to our newsletter.</footer></body></html>"
    ).encode()


def http_date(seconds: float) -> str:
    from datetime import datetime, timezone

    return format_datetime(datetime.fromtimestamp(seconds, tz=timezone.utc), usegmt=True)
