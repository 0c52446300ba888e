"""The feeds over HTTP: ``GET /v1/feeds``, ``POST /v1/feeds``, ``DELETE /v1/feeds/{ref}`` and
``POST /v1/feeds/sync`` (validated shapes; errors, auth and the web guard as for every /v1 route).

Only http(s) feeds can be added here: a local path names a file on the server's disk, which a
remote caller must not be able to have read (``rag feeds add PATH`` on the machine itself can)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from rag import feeds
from rag.api import RAG
from rag.errors import FeedNotFoundError
from rag.feeds.state import Feed
from rag.serve.http.errors import ApiError

MAX_URL_CHARS = 2000
MAX_SYNC_FEEDS = 100


class FeedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_URL_CHARS)


class SyncRequest(BaseModel):
    """``feeds``: numbers or URLs of subscribed feeds (default: all); ``full``: fetch every item
    again, ignoring the feed's validators and the items already seen."""

    model_config = ConfigDict(extra="forbid")

    feeds: list[str] = Field(default_factory=list, max_length=MAX_SYNC_FEEDS)
    full: bool = False


def _feed_json(feed: Feed) -> dict[str, Any]:
    return {"object": "feed", **asdict(feed)}


def feeds_router(rag: RAG) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/feeds")
    def list_feeds() -> dict[str, Any]:
        return {"object": "list", "data": [_feed_json(f) for f in feeds.feeds(rag)]}

    @router.post("/v1/feeds")
    def add_feed(body: FeedRequest) -> dict[str, Any]:
        if not body.url.strip().lower().startswith(("http://", "https://")):
            raise ApiError(400, "only http(s) feed URLs can be added over the API (a local file: `rag feeds add PATH`)",
                           code="invalid_feed_url", param="url")
        feed, new = feeds.add(rag, body.url.strip())
        return {**_feed_json(feed), "new": new}

    @router.delete("/v1/feeds/{ref:path}")
    def remove_feed(ref: str, articles: bool = False) -> dict[str, Any]:
        try:
            feed, removed = feeds.remove(rag, ref, articles=articles)
        except FeedNotFoundError as e:  # a 404, like an unknown article
            raise ApiError(404, str(e), code="feed_not_found") from None
        return {**_feed_json(feed), "deleted": True, "removed_articles": removed}

    @router.post("/v1/feeds/sync")
    async def sync_feeds(body: SyncRequest) -> dict[str, Any]:
        # Fetching and embedding take seconds to minutes: off the event loop, like an ingest.
        report = await run_in_threadpool(feeds.sync, rag, body.feeds, full=body.full)
        return {
            "object": "feed_sync",
            "summary": report.summary(),
            "seconds": round(report.seconds, 3),
            "feeds": [{**asdict(f), "errors": [asdict(e) for e in f.errors]} for f in report.feeds],
        }

    return router
