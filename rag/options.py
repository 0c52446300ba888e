"""Per-question options: one typed object that the API, CLI, web app, HTTP server and
evaluation all pass to :meth:`rag.RAG.ask` / :meth:`rag.RAG.stream`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Literal, TypedDict

from rag.settings import Mode

DateLike = date | str | None
EvidenceKind = Literal["sentences", "chunks"]


@dataclass(frozen=True)
class AskOptions:
    """What one question may set; None means "the Settings' value"."""

    k: int | None = None  # passages retrieved (Settings.top_k)
    since: DateLike = None  # only articles published on or after this date
    until: DateLike = None  # ... and on or before this one
    mode: Mode | None = None  # retrieval mode (Settings.retrieval)
    today: DateLike = None  # the date "yesterday" or "last week" are read against (default: today)
    llm: str | None = None  # a listed model name (Settings.llm)
    evidence: EvidenceKind | None = None  # sentences or whole chunks (Settings.evidence)
    max_tokens: int | None = None  # Settings.max_answer_tokens
    temperature: float | None = None  # Settings.temperature
    choices: Sequence[str] = ()  # options the question comes with (a quiz): Answer.choice names one
    article_ids: Sequence[str] = ()  # only passages of these articles (e.g. "Ask about this article")

    def with_changes(self, **changes: object) -> AskOptions:
        """A copy with ``changes``; an unknown name is a TypeError (a typo must not be ignored)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown question options: {', '.join(sorted(unknown))}")
        return replace(self, **changes) if changes else self  # type: ignore[arg-type]


class AskFields(TypedDict, total=False):
    """:class:`AskOptions`' fields as keyword arguments (``rag.ask(q, k=3, today="2024-05-01")``)."""

    k: int | None
    since: DateLike
    until: DateLike
    mode: Mode | None
    today: DateLike
    llm: str | None
    evidence: EvidenceKind | None
    max_tokens: int | None
    temperature: float | None
    choices: Sequence[str]
    article_ids: Sequence[str]
