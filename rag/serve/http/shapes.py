"""Request and response shapes of the API (pydantic), and the JSON forms of articles, hits and citations."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.results import Answer, ArticleInfo, Hit
from rag.settings import Mode

MAX_JSON_ARTICLES = 1000


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # [{"type": "text", "text": ...}, ...]
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type", "text") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI's chat request; unknown OpenAI parameters are ignored. ``k``, ``since``, ``until``,
    ``mode`` and ``today`` are this API's extensions (``extra_body`` in the openai client)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    n: int = Field(1, ge=1, le=1)
    k: int | None = Field(None, ge=1, le=50)
    since: date | None = None
    until: date | None = None
    mode: Mode | None = None
    today: date | None = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000)
    k: int | None = Field(None, ge=1, le=50)
    since: date | None = None
    until: date | None = None
    mode: Mode | None = None
    today: date | None = None


class ArticleIn(BaseModel):
    """One article to index. Other field names the JSON loader knows (``body``, ``published_at``,
    ``headline``, ...) are accepted too."""

    model_config = ConfigDict(extra="allow")

    title: str | None = None
    text: str | None = None
    url: str | None = None
    published: str | None = None
    source: str | None = None
    author: str | None = None
    id: str | None = None


class ArticlesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    articles: list[ArticleIn] = Field(min_length=1, max_length=MAX_JSON_ARTICLES)


def _article_json(a: ArticleInfo) -> dict[str, Any]:
    return {
        "id": a.id, "object": "article", "title": a.title, "source": a.source, "url": a.url, "author": a.author,
        "published": a.published.isoformat() if a.published else None, "chunks": a.chunk_count,
        "added_at": a.added_at, "duplicate_of": a.duplicate_of,
    }


def _hit_json(h: Hit) -> dict[str, Any]:
    return {
        "object": "passage", "article_id": h.article.id, "title": h.article.title, "source": h.article.source,
        "url": h.article.url, "published": h.article.published.isoformat() if h.article.published else None,
        "text": h.text, "start": h.start, "end": h.end, "score": round(h.score, 4),
    }


def _citations(answer: Answer) -> list[dict[str, Any]]:
    citations = answer.to_dict()["citations"]
    assert isinstance(citations, list)
    for c, citation in zip(citations, answer.citations):
        c["url"] = citation.article.url
    return citations
