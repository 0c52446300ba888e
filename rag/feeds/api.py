"""The feeds' Python API: functions over an open :class:`rag.RAG` (the facade stays small)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rag.feeds.state import Feed, FeedState
from rag.feeds.sync import PAGES_DIR, Progress, SyncReport
from rag.feeds.sync import sync as _sync

if TYPE_CHECKING:
    from rag.api import RAG


def add(rag: RAG, ref: str) -> tuple[Feed, bool]:
    """Subscribe to an RSS/Atom feed: an http(s) URL or a local file path. Returns the feed and
    whether it is new (adding one twice is not an error). Nothing is fetched until :func:`sync`."""
    with FeedState(rag.store.directory, rag.store.read_only) as state:
        return state.add(ref)


def feeds(rag: RAG) -> list[Feed]:
    """The subscribed feeds, with their last sync's time, status and error."""
    with FeedState(rag.store.directory, rag.store.read_only) as state:
        return state.feeds()


def remove(rag: RAG, ref: str, articles: bool = False) -> tuple[Feed, list[str]]:
    """Unsubscribe from a feed (by number, URL or path). Its articles stay in the index unless
    ``articles``: then they are removed too. Returns the feed and the removed article ids."""
    with FeedState(rag.store.directory, rag.store.read_only) as state:
        feed, ids = state.remove(ref)
    removed: list[str] = []
    if articles:
        present = [i for i in ids if rag.store.article_hash(i)]
        removed = rag.remove(present) if present else []
        shutil.rmtree(rag.store.directory / PAGES_DIR / str(feed.id), ignore_errors=True)
    return feed, removed


def sync(
    rag: RAG, refs: Sequence[str] = (), *, full: bool = False, progress: Progress | None = None,
    ingest_progress: Progress | None = None,
) -> SyncReport:
    """Fetch the feeds (all, or those in ``refs``) and ingest their new and edited items; see
    :func:`rag.feeds.sync.sync`."""
    return _sync(rag, refs, full=full, progress=progress, ingest_progress=ingest_progress)
