"""Typed objects the public API returns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class IndexInfo:
    """What :meth:`rag.RAG.info` reports: the index's size and the models it is used with."""

    directory: Path
    articles: int
    chunks: int
    embedder: str
    dim: int
    chunk_tokens: int
    chunk_overlap_tokens: int
    llm: str
    llm_loaded: bool


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
class Location:
    """Where in the input something happened: a file, and a record inside it when the file holds
    many (a JSONL line, a JSON list's item). A value, so nothing re-parses ``'feed.jsonl:3'``."""

    file: str
    line: int | None = None  # 1-based line of a JSONL record
    record: int | None = None  # 0-based index in a JSON list

    def __str__(self) -> str:
        """'feed.jsonl:3', 'list.json[2]' or the file: how reports have always named it."""
        if self.line is not None:
            return f"{self.file}:{self.line}"
        return f"{self.file}[{self.record}]" if self.record is not None else self.file

    @property
    def label(self) -> str:
        """'line 3', 'record 2', or '' for the whole file."""
        if self.line is not None:
            return f"line {self.line}"
        return f"record {self.record}" if self.record is not None else ""

    def moved(self, file: str) -> Location:
        """The same place in a file shown under another name."""
        return Location(file, self.line, self.record)


@dataclass(frozen=True)
class FileFailure:
    """A file or record that failed (or loaded with a warning), and why."""

    location: Location
    reason: str

    @property
    def path(self) -> str:
        """The location as text ('feed.jsonl:3'); ``location.file`` is the file alone."""
        return str(self.location)


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


REPORT_KEEPS = 1_000  # entries an IngestReport keeps per list: a 100,000-file archive must not fill memory


@dataclass
class IngestCounts:
    """Exact totals of one ingest (the report's lists keep at most ``REPORT_KEEPS`` entries each)."""

    added: int = 0
    updated: int = 0
    duplicates: int = 0
    failed: int = 0
    warnings: int = 0
    near_duplicates: int = 0
    files: int = 0


@dataclass
class IngestReport:
    """What ``RAG.add`` did: exact counts, and the ids, per-file results and failures of the first
    ``keep`` of each (all of them, for any ingest of up to ``keep`` files and articles). The full
    per-file detail of a larger ingest goes to the ``on_file`` callback as each file finishes."""

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
    counts: IngestCounts = field(default_factory=IngestCounts)
    keep: int = field(default_factory=lambda: REPORT_KEEPS)  # read when made, so tests can lower it

    @property
    def complete(self) -> bool:
        """True when every list holds all its entries (nothing was left out for size)."""
        c, kept = self.counts, (self.added, self.updated, self.duplicates, self.failed, self.warnings)
        return [len(x) for x in kept] == [c.added, c.updated, c.duplicates, c.failed, c.warnings] and (
            len(self.near_duplicates) == c.near_duplicates and len(self.files) == c.files
        )

    def file(self, path: str) -> FileResult:
        """The result of the file at ``path``, kept in ``files`` while there is room."""
        result = self.files.get(path)
        if result is None:
            result = FileResult(path)
            self.counts.files += 1
            if len(self.files) < self.keep:
                self.files[path] = result
        return result

    def note_added(self, article_id: str, changed: bool) -> None:
        ids = self.updated if changed else self.added
        if len(ids) < self.keep:
            ids.append(article_id)
        if changed:
            self.counts.updated += 1
        else:
            self.counts.added += 1

    def note_duplicate(self, origin: str) -> None:
        self.counts.duplicates += 1
        if len(self.duplicates) < self.keep:
            self.duplicates.append(origin)

    def note_near_duplicate(self, article_id: str, original: str) -> None:
        self.counts.near_duplicates += 1
        if len(self.near_duplicates) < self.keep:
            self.near_duplicates[article_id] = original

    def note_failure(self, failure: FileFailure, warning: bool = False) -> None:
        kept = self.warnings if warning else self.failed
        if warning:
            self.counts.warnings += 1
        else:
            self.counts.failed += 1
        if len(kept) < self.keep:
            kept.append(failure)

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c.added} added, {c.updated} updated, "
            f"{c.duplicates} duplicates skipped, {c.failed} failed, "
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
