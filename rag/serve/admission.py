"""Admission for answers: one model serves everyone through a lock, so requests beyond a bound
are refused at once (a clear 503 / 429) rather than queued behind each other for minutes."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.types import Receive

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Refusal:
    status: int  # 503: the server is full; 429: this client has too many answers running
    message: str
    code: str


class Admission:
    """Counts answers in progress (generating or waiting for the model), overall and per client."""

    def __init__(self, max_pending: int, max_per_client: int) -> None:
        self.max_pending = max_pending
        self.max_per_client = max_per_client
        self._lock = threading.Lock()
        self._by_client: Counter[str] = Counter()
        self.cancelled = 0  # answers stopped because their client went away

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(self._by_client.values())

    def enter(self, client: str) -> Refusal | None:
        """Take a slot for ``client`` (its address), or say why not; a taken slot needs :meth:`leave`."""
        with self._lock:
            if self._by_client[client] >= self.max_per_client:
                return Refusal(429, f"this client already has {self.max_per_client} answers in progress "
                               "(RAG_API_MAX_ANSWERS_PER_CLIENT); wait for one to finish", "too_many_requests")
            if sum(self._by_client.values()) >= self.max_pending:
                return Refusal(503, f"the server is busy: {self.max_pending} answers are already in progress "
                               "(RAG_API_MAX_PENDING_ANSWERS); retry in a moment", "server_busy")
            self._by_client[client] += 1
            return None

    def leave(self, client: str, cancelled: bool = False) -> None:
        with self._lock:
            self._by_client[client] -= 1
            if self._by_client[client] <= 0:
                del self._by_client[client]
            self.cancelled += cancelled


async def run_unless_client_leaves(
    work: Callable[[threading.Event], T], receive: Receive, finished: Callable[[bool], None]
) -> T | None:
    """Run blocking ``work(cancel)`` in its own thread while watching the ASGI connection: when
    the client disconnects first, ``cancel`` is set (the model stops at its next token and is
    free for the next request) and None is returned. ``finished(cancelled)`` runs in the worker
    thread once ``work`` has really stopped, so a slot is held until the model is released."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    cancel = threading.Event()

    def settle(outcome: Callable[[], None]) -> None:
        try:
            loop.call_soon_threadsafe(lambda: None if done.done() else outcome())
        except RuntimeError:  # the event loop is gone (server shutting down)
            cancel.set()

    def run() -> None:
        try:
            result = work(cancel)
        except BaseException as e:  # noqa: BLE001 - re-raised in the request's task
            settle(lambda e=e: done.set_exception(e))
        else:
            settle(lambda: done.set_result(result))
        finally:
            finished(cancel.is_set())

    async def client_gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    threading.Thread(target=run, daemon=True, name="rag-api-answer").start()
    watcher = asyncio.ensure_future(client_gone())
    try:
        await asyncio.wait({done, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if done.done():
            return done.result()
        cancel.set()
        log.info("the client went away: its answer was cancelled")
        return None
    finally:
        watcher.cancel()
        if not done.done():
            cancel.set()
