"""The news views over HTTP: ``POST /v1/briefing``, ``POST /v1/timeline`` and
``GET /v1/articles/{id}/related`` (validated shapes; errors, auth and limits as for every /v1 route)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.api import RAG
from rag.index.periods import article_infos
from rag.serve.admission import Admission
from rag.serve.http.errors import ApiError
from rag.serve.request_checks import check_text

MAX_TOPIC_CHARS = 500
_SINCE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|\d{1,4}[dwDW])$")  # the date itself is read by rag.stories.spans


class BriefingRequest(BaseModel):
    """``since``: a date or a span back from ``until`` ("7d", "2w"; default 7d); ``until``: a date
    (default today). ``write``: the model (``model``, default the configured one) writes the
    summaries; a sentence it cannot ground falls back to the article sentences."""

    model_config = ConfigDict(extra="forbid")

    since: date | str | None = None
    until: date | None = None
    topic: str | None = Field(None, max_length=MAX_TOPIC_CHARS)
    max_stories: int | None = Field(None, ge=1, le=100)
    write: bool = False
    model: str | None = Field(None, max_length=200)

    @field_validator("since")
    @classmethod
    def _since(cls, value: date | str | None) -> date | str | None:
        if isinstance(value, str) and not _SINCE.match(value):
            raise ValueError("since must be a date (YYYY-MM-DD) or a span back from until, like 7d or 2w")
        return value


class TimelineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000)
    since: date | None = None
    until: date | None = None


def stories_router(rag: RAG, admission: Admission) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/briefing")
    def briefing(body: BriefingRequest, request: Request) -> dict[str, Any]:
        if body.topic is not None:
            check_text(body.topic, "the topic", MAX_TOPIC_CHARS)
        if not body.write:
            return {"object": "briefing", **rag.brief(body.since, body.until, body.topic, body.max_stories).to_dict()}
        if body.model is not None and body.model not in rag.available_llms():
            raise ApiError(404, f"unknown model '{body.model}'; see GET /v1/models", code="model_not_found", param="model")
        client = request.client.host if request.client else "?"
        # Writing summaries runs the model, so it takes an answer's slot.
        if refused := admission.enter(client):
            raise ApiError(refused.status, refused.message, "rate_limit_error" if refused.status == 429 else "api_error", refused.code)
        try:
            found = rag.brief(body.since, body.until, body.topic, body.max_stories, llm=body.model or True)
        finally:
            admission.leave(client)
        return {"object": "briefing", **found.to_dict()}

    @router.post("/v1/timeline")
    def timeline(body: TimelineRequest) -> dict[str, Any]:
        check_text(body.query, "the query", 4000)
        return {"object": "timeline", **rag.timeline(body.query, body.since, body.until).to_dict()}

    @router.get("/v1/articles/{article_id}/related")
    def related(article_id: str) -> dict[str, Any]:
        # Exact ids only, as for DELETE: RAG.related also takes prefixes, too loose for a URL.
        if article_id not in article_infos(rag.store, [article_id]):
            raise ApiError(404, f"no article with id '{article_id}'", code="article_not_found", param="article_id")
        return {"object": "related", **rag.related(article_id).to_dict()}

    return router
