"""Typed objects the public API returns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class ArticleInfo:
    """An indexed article's metadata (the text is fetched with ``RAG.article_text``)."""

    id: str
    title: str
    source: str | None
    url: str | None
    author: str | None
    published: date | None
    origin: str
    chunk_count: int
    added_at: str
    duplicate_of: str | None = None  # the article this one is a near-copy of (wire stories)

    def label(self) -> str:
        """'Title — Source, 2023-10-19' for source lists."""
        parts = [p for p in (self.source, self.published.isoformat() if self.published else None) if p]
        return f"{self.title} — {', '.join(parts)}" if parts else self.title


@dataclass(frozen=True)
class Hit:
    """A retrieved passage: ``article`` text from ``start`` to ``end``, with its relevance score."""

    chunk_id: int
    article: ArticleInfo
    ordinal: int
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Citation:
    """A ``[n]`` in an answer, resolved to the passage it points at and the sentence it quotes."""

    n: int
    hit: Hit
    quote: str
    quote_start: int  # character offsets of the quote in the article text
    quote_end: int

    @property
    def article(self) -> ArticleInfo:
        return self.hit.article


@dataclass
class Evidence:
    """What an answer is built from: the passages retrieved for it and the evidence the model reads."""

    retrieved: list[Hit]
    passages: list[Hit]
    date_note: str | None = None  # how a time named in the question was read, if one was


@dataclass
class Answer:
    """The final answer to a question, with everything needed to show and check it."""

    question: str
    text: str
    citations: list[Citation]
    sources: list[Hit]
    refused: bool = False
    standalone_question: str | None = None
    invalid_citations: list[int] = field(default_factory=list)
    raw_text: str = ""
    model: str = ""
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    choices: list[str] = field(default_factory=list)  # the options, when the question came with some
    choice: int | None = None  # the option the answer picks (index into ``choices``), if it picks one
    # Which check refused (see rag.answer.pipeline.REFUSED_BY): "empty", "coverage", "model", "grounding",
    # "claims", "uncited", "no-content" or "numbers"; None when answered.
    refused_by: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form, for the CLI's --json, the web API and evaluation records."""
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.text,
            "refused": self.refused,
            "refused_by": self.refused_by,
            "model": self.model,
            "citations": [
                {"n": c.n, "article_id": c.article.id, "title": c.article.title, "source": c.article.source,
                 "published": c.article.published.isoformat() if c.article.published else None,
                 "quote": c.quote, "start": c.quote_start, "end": c.quote_end}
                for c in self.citations
            ],
            "sources": [
                {"n": n, "article_id": h.article.id, "title": h.article.title, "text": h.text,
                 "start": h.start, "end": h.end, "score": round(h.score, 4)}
                for n, h in enumerate(self.sources, start=1)
            ],
            "choices": self.choices,
            "choice": self.choice,
            "invalid_citations": self.invalid_citations,
            "notes": self.notes,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    @property
    def cited_sources(self) -> list[Hit]:
        seen: dict[int, Hit] = {}
        for c in self.citations:
            seen.setdefault(c.n, c.hit)
        return [seen[n] for n in sorted(seen)]


@dataclass(frozen=True)
class FileFailure:
    path: str
    reason: str


@dataclass
class FileResult:
    """What happened to one input file (a feed or JSONL file can hold many articles)."""

    path: str
    added: int = 0
    updated: int = 0
    duplicates: int = 0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # loaded, but something was guessed, fixed or dropped

    @property
    def status(self) -> str:
        """'added', 'updated', 'duplicate', 'failed', or 'partly failed'."""
        ok = self.added + self.updated + self.duplicates
        if self.failures:
            return "partly failed" if ok else "failed"
        return "added" if self.added else "updated" if self.updated else "duplicate"

    def detail(self) -> str:
        parts = [f"{n} {label}" for n, label in ((self.added, "added"), (self.updated, "updated"), (self.duplicates, "duplicate")) if n]
        return "; ".join(parts + self.failures + [f"warning: {w}" for w in self.warnings])


@dataclass
class IngestReport:
    """What ``RAG.add`` did: counts, per-file results, and a reason for each failure."""

    added: list[str] = field(default_factory=list)  # article ids
    updated: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # origins skipped as already indexed
    failed: list[FileFailure] = field(default_factory=list)
    warnings: list[FileFailure] = field(default_factory=list)  # e.g. a guessed encoding, an unreadable date, a repeated id
    chunks: int = 0
    seconds: float = 0.0
    files: dict[str, FileResult] = field(default_factory=dict)  # by file path
    near_duplicates: dict[str, str] = field(default_factory=dict)  # new article id -> the one it copies
    engine: str = "local"  # which ingest engine ran: "local" or "ray"

    def file(self, path: str) -> FileResult:
        return self.files.setdefault(path, FileResult(path))

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.duplicates)} duplicates skipped, {len(self.failed)} failed, "
            f"{self.chunks} chunks in {self.seconds:.1f}s"
        )


def final_answer(events: Iterable[str | Answer], on_piece: Callable[[str], object] | None = None) -> Answer:
    """Drain a :meth:`rag.RAG.stream`: hand each reply piece to ``on_piece`` and return the final
    Answer (the one every caller displays: the pieces are the model's raw words)."""
    answer = None
    for event in events:
        if isinstance(event, Answer):
            answer = event
        elif on_piece is not None:
            on_piece(event)
    if answer is None:
        raise RuntimeError("the answer stream ended without an Answer")
    return answer
