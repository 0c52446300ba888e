"""What a saved conversation holds, and how an :class:`~rag.results.Answer` is kept in it.

An answer is stored whole, as JSON: its text, every passage it was given with the article's
metadata, and each citation's quoted sentence. ``Answer.to_dict`` is the compact public view and
leaves out what re-drawing the Sources panel needs (URLs, authors, passage offsets), and the
index may since have dropped or changed the article: a saved answer must still show, export and
cite what it was built from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from rag.results import Answer, ArticleInfo, Citation, Hit

Feedback = Literal["up", "down"]
RECORD_VERSION = 1  # of the JSON below; a reader refuses newer ones (see ``answer_from_record``)


@dataclass(frozen=True)
class Turn:
    """One question and its final answer, at ``position`` (0-based) in its conversation."""

    position: int
    answer: Answer
    asked_at: datetime  # UTC
    feedback: Feedback | None = None
    filter_note: str = ""  # the date filter in words ("published on or after 2024-03-01"), if one was on

    @property
    def question(self) -> str:
        return self.answer.question


@dataclass(frozen=True)
class ConversationSummary:
    """A conversation as the list shows it."""

    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    turns: int


@dataclass(frozen=True)
class Conversation:
    """A saved conversation with its turns in order."""

    id: str
    user: str
    title: str
    created_at: datetime
    updated_at: datetime
    turns: list[Turn]

    @property
    def answers(self) -> list[Answer]:
        return [t.answer for t in self.turns]


def _article(a: ArticleInfo) -> dict[str, Any]:
    return {"id": a.id, "title": a.title, "source": a.source, "url": a.url, "author": a.author,
            "published": a.published.isoformat() if a.published else None, "origin": a.origin,
            "chunk_count": a.chunk_count, "added_at": a.added_at, "duplicate_of": a.duplicate_of}


def _hit(h: Hit) -> dict[str, Any]:
    return {"chunk_id": h.chunk_id, "article_id": h.article.id, "ordinal": h.ordinal, "start": h.start, "end": h.end,
            "text": h.text, "score": h.score}


def answer_record(answer: Answer) -> dict[str, Any]:
    """``answer`` as JSON-ready data that :func:`answer_from_record` turns back into an equal Answer."""
    hits = [*answer.sources, *(c.hit for c in answer.citations)]
    return {
        "version": RECORD_VERSION,
        "question": answer.question, "text": answer.text, "refused": answer.refused, "refused_by": answer.refused_by,
        "standalone_question": answer.standalone_question, "invalid_citations": list(answer.invalid_citations),
        "raw_text": answer.raw_text, "model": answer.model, "notes": list(answer.notes), "timings": dict(answer.timings),
        "choices": list(answer.choices), "choice": answer.choice,
        "articles": {h.article.id: _article(h.article) for h in hits},
        "sources": [_hit(h) for h in answer.sources],
        "citations": [{"n": c.n, "quote": c.quote, "start": c.quote_start, "end": c.quote_end, "hit": _hit(c.hit)}
                      for c in answer.citations],
    }


def answer_from_record(record: dict[str, Any]) -> Answer:
    """The Answer an :func:`answer_record` holds; ValueError for a record this version cannot read."""
    version = record.get("version")
    if not isinstance(version, int) or version > RECORD_VERSION:
        raise ValueError(f"saved answer format {version!r} is newer than this version of rag reads ({RECORD_VERSION})")
    articles = {
        key: ArticleInfo(a["id"], a["title"], a["source"], a["url"], a["author"],
                         date.fromisoformat(a["published"]) if a["published"] else None, a["origin"], a["chunk_count"],
                         a["added_at"], a["duplicate_of"])
        for key, a in record["articles"].items()
    }

    def hit(h: dict[str, Any]) -> Hit:
        return Hit(h["chunk_id"], articles[h["article_id"]], h["ordinal"], h["start"], h["end"], h["text"], h["score"])

    return Answer(
        question=record["question"], text=record["text"],
        citations=[Citation(c["n"], hit(c["hit"]), c["quote"], c["start"], c["end"]) for c in record["citations"]],
        sources=[hit(h) for h in record["sources"]], refused=record["refused"],
        standalone_question=record["standalone_question"], invalid_citations=list(record["invalid_citations"]),
        raw_text=record["raw_text"], model=record["model"], notes=list(record["notes"]), timings=dict(record["timings"]),
        choices=list(record["choices"]), choice=record["choice"], refused_by=record["refused_by"],
    )
