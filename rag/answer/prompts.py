"""Prompt templates from ``prompts/*.md``, filled with ``string.Template`` ($name placeholders),
so users can edit the wording without touching Python and literal braces need no escaping."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path
from string import Template

from rag.errors import RagError
from rag.results import Hit
from rag.settings import PROJECT_ROOT, shipped_dir

REFUSAL_MARKER = "NOT IN SOURCES"
# The checkout's prompts/, or the copy inside an installed wheel (rag/_prompts).
DEFAULT_PROMPTS_DIR = shipped_dir("prompts") or PROJECT_ROOT / "prompts"
_TEMPLATES = ("answer_system", "answer_user", "answer_choices", "article", "source", "condense", "refusal")


def _bracket_table() -> dict[int, str]:
    """Every opening/closing bracket (Unicode Ps/Pe: ［ 【 〔 ⟦ { …) -> ( or ), quotation marks aside.

    Square brackets are the source markers and the citation syntax, so article text gets none.
    """
    table: dict[int, str] = {}
    for code in range(0x10000):  # all Ps/Pe characters are in the Basic Multilingual Plane
        c = chr(code)
        category = unicodedata.category(c)
        if category in ("Ps", "Pe") and c not in "()" and "QUOTATION" not in unicodedata.name(c, "") and c not in "「」『』﹁﹂﹃﹄":
            table[code] = "(" if category == "Ps" else ")"
    return table


_BRACKETS = _bracket_table()
# Chat-template control tokens (<|im_start|>, </s>, <start_of_turn>, <｜…｜>) all need an ASCII
# angle bracket; llama-cpp-python tokenizes the rendered chat with special=True, so one left in
# article text would become a real turn boundary. Guillemets read the same to the model.
_ANGLES = {ord("<"): "‹", ord(">"): "›"}
_INVISIBLE = ("Cf", "Cc", "Co", "Cs", "Cn")  # zero-width, bidi controls, BOM, private use, unassigned


def inline(text: str) -> str:
    """Any text (a question, a name) as one prompt line that cannot contain a control token or
    a hidden character: NFKC-normalised (fullwidth ＜ -> <), invisible characters dropped,
    whitespace (line breaks included) collapsed, angle brackets turned into guillemets."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c if c.isspace() or unicodedata.category(c) not in _INVISIBLE else "" for c in text)
    return " ".join(text.split()).translate(_ANGLES)


def quoted(text: str) -> str:
    """Article text as inert data on one source line: :func:`inline`, and every bracket made
    round, so nothing in it can pose as a ``[n]`` source marker or a citation."""
    return inline(text).translate(_BRACKETS)


class PromptMessages(list[dict[str, str]]):
    """Chat messages, plus what they were built from: ``kind`` ("answer" or "condense"), the
    question, the numbered sources' texts and the history. Models read only the messages; the
    fields are the structured hook for :mod:`rag.testing`'s fake model, so rewording a template
    cannot break it."""

    def __init__(
        self,
        messages: Sequence[dict[str, str]],
        kind: str,
        question: str,
        sources: Sequence[str] = (),
        history: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(messages)
        self.kind = kind
        self.question = question
        self.sources = list(sources)  # source n is sources[n - 1]
        self.history = list(history)


class Prompts:
    """The templates of one prompts directory, read once. A template the directory lacks comes
    from ``defaults`` (the shipped templates), so a directory may override just one of them."""

    def __init__(self, directory: Path, defaults: Path | None = DEFAULT_PROMPTS_DIR) -> None:
        self.directory = directory
        self._templates: dict[str, Template] = {}
        for name in _TEMPLATES:
            path = directory / f"{name}.md"
            if defaults is not None and not path.exists() and (defaults / f"{name}.md").exists():
                path = defaults / f"{name}.md"
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

        The article line carries its metadata (source, author, date), which is
        evidence too: "which agency published it?" is answered from it, citing the article's
        passage. Article text, titles and source names are data (:func:`quoted`): they cannot
        break a line, open a chat turn or contain a bracket, so each source is exactly one
        ``[n]`` line. Headlines stay out of the line: SmolLM2 then repeated them instead of
        answering (the seed question "What has Ankara proposed ..." was answered without, refused with).
        """
        lines: list[str] = []
        last_article = None
        for n, hit in enumerate(hits, start=1):
            a = hit.article
            if a.id != last_article:
                published = f"published {a.published.isoformat()}" if a.published else "undated"
                meta = f"{quoted(a.source or '') or 'an unknown source'}"
                meta += f", by {author}" if (author := quoted(a.author or "")) else ""
                meta += f", {published}"
                lines.append(self.fill("article", title=quoted(a.title or ""), meta=meta))
                last_article = a.id
            lines.append(self.fill("source", n=n, text=quoted(hit.text) or "(no usable text)"))
        return "\n".join(lines)

    def answer_messages(self, question: str, hits: Sequence[Hit], choices: Sequence[str] = ()) -> PromptMessages:
        """The answer prompt; with ``choices``, the options follow the question (answer_choices.md)."""
        question = quoted(question)  # "[INST]" is a control token to some models, so no brackets here either
        user = self.fill("answer_user", sources=self.sources(hits), question=question)
        if choices:
            options = "; ".join(f"{chr(65 + i)}) {quoted(c)}" for i, c in enumerate(choices))
            user += "\n" + self.fill("answer_choices", options=options)
        messages = [{"role": "system", "content": self.fill("answer_system")}, {"role": "user", "content": user}]
        return PromptMessages(messages, "answer", question, [quoted(h.text) for h in hits])

    def condense_messages(self, question: str, history: Sequence[tuple[str, str]]) -> PromptMessages:
        lines = []
        for user, assistant in history[-3:]:
            lines.append(f"User: {quoted(user)}")
            if assistant:  # earlier answers quote articles, so they are data too
                lines.append(f"Assistant: {quoted(assistant)[:400]}")
        messages = [{"role": "user", "content": self.fill("condense", history="\n".join(lines), question=quoted(question))}]
        return PromptMessages(messages, "condense", question, history=history)
