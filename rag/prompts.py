"""Prompt templates from ``prompts/*.md``, filled with ``string.Template`` ($name placeholders),
so users can edit the wording without touching Python and literal braces need no escaping."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
import re
from string import Template

from .errors import RagError
from .results import Hit

REFUSAL_MARKER = "NOT IN SOURCES"
_TEMPLATES = ("answer_system", "answer_user", "article", "source", "condense", "refusal")
_MARKER_LOOKALIKE = re.compile(r"\[\s*(\d+)\s*\]")


class Prompts:
    """The templates of one prompts directory, read once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._templates: dict[str, Template] = {}
        for name in _TEMPLATES:
            path = directory / f"{name}.md"
            try:
                self._templates[name] = Template(path.read_text(encoding="utf-8").strip())
            except OSError as e:
                raise RagError(f"prompt template {path} cannot be read ({e}); set RAG_PROMPTS_DIR") from None

    def fill(self, name: str, **values: object) -> str:
        try:
            return self._templates[name].substitute(refusal_marker=REFUSAL_MARKER, **values)
        except (KeyError, ValueError) as e:
            raise RagError(f"prompt template {self.directory / name}.md has an unknown placeholder: {e}") from None

    @property
    def refusal(self) -> str:
        return self.fill("refusal")

    def sources(self, hits: Sequence[Hit]) -> str:
        """Numbered passages, one per line, under a line naming their article's source and date.

        Headlines are left out on purpose: small models tend to repeat them instead of answering.
        Article text cannot fake a source: line breaks and "[n]" look-alikes are neutralised.
        """
        lines: list[str] = []
        last_article = None
        for n, hit in enumerate(hits, start=1):
            a = hit.article
            if a.id != last_article:
                published = f"published {a.published.isoformat()}" if a.published else "undated"
                lines.append(self.fill("article", title=a.title, meta=f"{a.source or 'an unknown source'}, {published}"))
                last_article = a.id
            text = _MARKER_LOOKALIKE.sub(r"(\1)", " ".join(hit.text.split()))
            lines.append(self.fill("source", n=n, text=text))
        return "\n".join(lines)

    def answer_messages(self, question: str, hits: Sequence[Hit]) -> list[dict[str, str]]:
        question = " ".join(question.split())
        return [
            {"role": "system", "content": self.fill("answer_system")},
            {"role": "user", "content": self.fill("answer_user", sources=self.sources(hits), question=question)},
        ]

    def condense_messages(self, question: str, history: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
        lines = []
        for user, assistant in history[-3:]:
            lines.append(f"User: {user}")
            if assistant:
                lines.append(f"Assistant: {assistant[:400]}")
        return [{"role": "user", "content": self.fill("condense", history="\n".join(lines), question=question)}]
