"""Downloading feeds and pages over HTTP(S), politely and within bounds (httpx).

- Only ``http``/``https``: a redirect to ``file:``, ``ftp:`` or anything else is refused, and
  redirects are followed by hand, at most ``max_redirects``, each hop paced like a request.
- Conditional requests: ``If-None-Match`` / ``If-Modified-Since`` from what the server said last
  time; a 304 is "unchanged" and nothing is downloaded.
- Timeouts: to connect, between two bytes (``read``), and in all (a server that drips one byte
  a second stays under any read timeout; the total deadline still ends it).
- A size cap: a declared ``Content-Length`` over it is refused before reading, and a body is
  never read past it.
- Per host, requests start at least ``host_interval`` seconds apart, across all threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from rag.settings import Settings

USER_AGENT = "rag-news-feeds/0.1 (the feed sync of a personal news archive)"
_SCHEMES = ("http", "https")


class FetchError(Exception):
    """A feed or page could not be downloaded; the message says why, for the sync report."""


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int  # 200, or 304 for "not modified"
    content: bytes
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 10.0
    timeout: float = 30.0
    max_bytes: int = 10_000_000
    max_redirects: int = 5
    host_interval: float = 1.0

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.feed_connect_timeout, settings.feed_timeout, settings.feed_max_bytes,
                   settings.feed_max_redirects, settings.feed_host_interval)


class HostPacer:
    """Spaces the requests to each host ``interval`` seconds apart (a reservation per request,
    so concurrent threads queue up instead of all waking together)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, host: str) -> None:
        with self._lock:
            start = max(time.monotonic(), self._next.get(host, 0.0))
            self._next[host] = start + self.interval
        delay = start - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host; raises FetchError otherwise."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES:
        raise FetchError(f"refused: {parts.scheme or 'no'} scheme in {url!r} (only http and https are fetched)")
    if not parts.hostname:
        raise FetchError(f"refused: no host in {url!r}")
    return url


class Fetcher:
    """One HTTP client (shared by threads: httpx.Client is thread-safe) with the limits above."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.pacer = HostPacer(limits.host_interval)
        timeout = httpx.Timeout(limits.timeout, connect=limits.connect_timeout)
        self._client = httpx.Client(
            timeout=timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        """Download ``url`` (conditionally when validators are given); raises FetchError."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        deadline = time.monotonic() + self.limits.timeout
        current = check_url(url)
        for _ in range(self.limits.max_redirects + 1):
            self.pacer.wait((urlsplit(current).hostname or "").lower())
            try:
                result = self._once(current, headers, deadline)
            except httpx.TimeoutException as e:
                raise FetchError(f"timed out ({type(e).__name__}: no answer within the limits; "
                                 f"RAG_FEED_CONNECT_TIMEOUT={self.limits.connect_timeout:g}s, "
                                 f"RAG_FEED_TIMEOUT={self.limits.timeout:g}s)") from None
            except httpx.HTTPError as e:
                raise FetchError(f"cannot download ({type(e).__name__}: {e})") from None
            if isinstance(result, Fetched):
                return result
            current = check_url(urljoin(current, result))
        raise FetchError(f"more than {self.limits.max_redirects} redirects (RAG_FEED_MAX_REDIRECTS)")

    def _once(self, url: str, headers: dict[str, str], deadline: float) -> Fetched | str:
        """One request: the response, or the Location it redirects to."""
        with self._client.stream("GET", url, headers=headers) as response:
            validators = {"etag": response.headers.get("etag"), "last_modified": response.headers.get("last-modified")}
            if response.status_code == 304:  # before is_redirect: httpx counts 304 among the redirects
                return Fetched(url, 304, b"", **validators)
            if response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("location")
                if not location:
                    raise FetchError(f"HTTP {response.status_code} redirect without a Location")
                return location
            if response.status_code != 200:
                raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.limits.max_bytes:
                raise FetchError(f"too large: {int(declared):,} bytes (RAG_FEED_MAX_BYTES={self.limits.max_bytes:,})")
            body = bytearray()
            for piece in response.iter_bytes():
                body.extend(piece)
                if len(body) > self.limits.max_bytes:
                    raise FetchError(f"too large: over {self.limits.max_bytes:,} bytes (RAG_FEED_MAX_BYTES)")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the download took too long")
            return Fetched(str(response.url), 200, bytes(body), content_type=response.headers.get("content-type"),
                           **validators)
