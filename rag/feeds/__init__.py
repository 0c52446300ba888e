"""Feeds and folders that keep the archive fresh: RSS/Atom feeds synced over HTTP(S) (their
linked pages extracted and ingested), and a folder watched for new, changed and removed files.

    >>> from rag import RAG, feeds
    >>> rag = RAG.open("index/")
    >>> feeds.add(rag, "https://example.org/world.rss")
    >>> print(feeds.sync(rag).summary())
    "1 feed synced (0 failed): 12 added, 0 updated, 0 already indexed, 0 items failed in 8.1s"

Everything goes in through ``RAG.add``, so a fetched page is handled exactly like a file the
user ingests (the same extraction, dedup, injection masking and atomic commits)."""

from __future__ import annotations

from rag.feeds.api import add, feeds, remove, sync
from rag.feeds.state import Feed
from rag.feeds.sync import FeedResult, ItemError, SyncReport

__all__ = ["Feed", "FeedResult", "ItemError", "SyncReport", "add", "feeds", "remove", "sync"]
