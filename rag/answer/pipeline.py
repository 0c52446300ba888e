"""From a question (and chat history) to a cited, checked Answer, streamed."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rag.answer import guards
from rag.answer.choices import pick_choice
from rag.answer.citations import best_sentence, parse_citations
from rag.answer.grounding import unsupported_claims
from rag.answer.prompts import REFUSAL_MARKER, Prompts
from rag.models.llama import Generator
from rag.results import Answer, Hit
from rag.text import split_sentences

History = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Phase:
    """What answering is doing before its first word (:meth:`rag.RAG.stream_phases`), for a
    progress line: ``rewriting`` a follow-up, ``searching``, then ``reading`` ``passages``
    (the model processes its prompt, the long wait on a CPU) until the first piece arrives."""

    name: Literal["rewriting", "searching", "reading"]
    passages: int = 0


def condense_question(
    generator: Generator, prompts: Prompts, question: str, history: History, cancel: threading.Event | None = None
) -> str:
    """Rewrite a follow-up ('and what did he say about Iran?') into a standalone question."""
    if not history:
        return question
    messages = prompts.condense_messages(question, history)
    reply = "".join(generator.stream(messages, max_tokens=64, temperature=0.0, cancel=cancel))
    line = next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
    line = re.sub(r"^(standalone question:|question:)\s*", "", line, flags=re.I).strip().strip('"“”')
    return line if 3 <= len(line) <= 300 else question


@dataclass(frozen=True)
class AnswerGuards:
    """The two refusal checks that can be switched off (Settings.guard_coverage/guard_numbers),
    so benchmarks/news_qa.py can measure what each costs in false refusals and what it catches.
    The grounding and claim checks are the injection defence and always run."""

    coverage: bool = True  # refuse before generating when no passage mentions a salient question term
    numbers: bool = True  # refuse an answer that states a number no source has


# Answer.refused_by: which check refused.
REFUSED_BY = {
    "empty": "no passage was retrieved",
    "coverage": "no retrieved passage mentions a salient term of the question (checked before generating)",
    "model": "the model said the sources do not answer",
    "grounding": "every answer sentence came from instruction-like text or from no source",
    "claims": "every answer sentence named things its cited sentence does not say",
    "no-content": "the cited passage had no news content",
    "uncited": "the answer matched no source",
    "numbers": "the answer gave a number no source has",
}


@dataclass
class Request:
    """One question on its way through the pipeline, as :meth:`rag.RAG.stream` hands it over:
    everything the final Answer reports besides what the model and the checks produce."""

    asked: str  # the question as the user wrote it
    standalone: str  # what was searched for and answered (a follow-up rewritten), else ``asked``
    choices: Sequence[str] = ()
    date_note: str | None = None  # how a time named in the question was read
    started: float = field(default_factory=time.perf_counter)
    retrieval_s: float = float("nan")
    checks: AnswerGuards = AnswerGuards()
    model: str = ""  # the generator's name


def _answer(request: Request | None, question: str, timings: dict[str, float] | None, **fields: object) -> Answer:
    """The Answer, built once with everything it reports."""
    notes = list(fields.pop("notes", []))  # type: ignore[call-overload]
    if request is None:
        return Answer(question=question, notes=notes, timings=dict(timings or {}), **fields)  # type: ignore[arg-type]
    if request.date_note:
        notes.append(f"dates: {request.date_note}")
    text, refused = str(fields.get("text", "")), bool(fields.get("refused", False))
    if not fields.get("model"):
        fields["model"] = request.model
    choices = list(request.choices)
    return Answer(
        question=request.asked,
        standalone_question=request.standalone if request.standalone != request.asked else None,
        choices=choices,
        choice=None if refused or not choices else pick_choice(text, choices),
        notes=notes,
        timings={"retrieval_s": request.retrieval_s, **(timings or {}), "total_s": time.perf_counter() - request.started},
        **fields,  # type: ignore[arg-type]
    )


def _refusal(
    question: str, hits: Sequence[Hit], prompts: Prompts, by: str, note: str, request: Request | None = None,
    timings: dict[str, float] | None = None, **extra: object,
) -> Answer:
    return _answer(request, question, timings, text=prompts.refusal, citations=[], sources=list(hits), refused=True,
                   notes=[note], refused_by=by, **extra)


def _evidence(hits: Sequence[Hit], texts: dict[str, str]) -> list[Hit]:
    """The sources as evidence: their non-news sentences blanked out (see rag.answer.injection)."""
    return [guards.mask_instructions(h, texts.get(h.article.id) or None) for h in hits]


def _drop(text: str, bad: Sequence[str]) -> str:
    return " ".join(s for span in split_sentences(text) if (s := text[span.start : span.end].strip()) not in bad)


def finish_answer(
    question: str,
    raw: str,
    hits: Sequence[Hit],
    prompts: Prompts,
    article_text: Callable[[str], str | None],
    checks: AnswerGuards = AnswerGuards(),
    request: Request | None = None,
    timings: dict[str, float] | None = None,
    model: str = "",
) -> Answer:
    """Turn the model's raw reply into an Answer, applying the guards in :mod:`rag.answer.guards`.
    With ``request`` (from :func:`stream_answer`), the Answer also carries the question as
    asked, its options and pick, the timings and notes: it is built here, once."""
    r = {"request": request, "timings": timings, "model": model}
    texts = {h.article.id: article_text(h.article.id) or "" for h in hits}
    evidence = _evidence(hits, texts)
    notes: list[str] = []
    if guards.is_refusal(raw):
        return _refusal(question, hits, prompts, "model", "the model found no answer in the sources", raw_text=raw, **r)
    parsed = parse_citations(raw, hits, texts, evidence)
    invalid = parsed.invalid
    if invalid:
        notes.append(f"dropped citations to sources that were not given: {invalid}")
    text = parsed.text
    # A full answer that loses every sentence below is refused; a short one ("Elena Teslova [1]")
    # that fails becomes the cited passage's best sentence, like a bare "[3]".
    full = guards.has_words(text)
    if guards.has_words(text, 1):
        # Article text is data: what the answer takes from instruction-like source text (or
        # from nowhere, or from the system prompt) is dropped, and nothing left means no answer.
        ungrounded = guards.ungrounded_sentences(text, question, hits, prompts.fill("answer_system"), texts)
        if ungrounded:
            text = _drop(text, ungrounded)
            if full and not guards.has_words(text):
                return _refusal(question, hits, prompts, "grounding", "the answer was not supported by the sources' news content", raw_text=raw, **r)
            notes.append(f"dropped answer sentences the sources' news content does not support: {ungrounded}")
        # A sentence's names, numbers and links must be in the sentence it cites.
        unsupported = unsupported_claims(text, evidence, question)
        if unsupported:
            text = _drop(text, [s for s, _ in unsupported])
            missing = "; ".join(f"{s!r} ({', '.join(m)})" for s, m in unsupported)
            if full and not guards.has_words(text):
                return _refusal(question, hits, prompts, "claims", f"the cited sentences do not say: {missing}", raw_text=raw, **r)
            notes.append(f"dropped answer sentences whose cited sentence does not say: {missing}")
        if ungrounded or unsupported:
            parsed = parse_citations(text, hits, texts, evidence) if guards.has_words(text, 1) else parsed
            text = parsed.text if guards.has_words(text, 1) else ""
    if not guards.has_words(text, 1):
        # A bare "[3]": answer with the cited (or best) passage's most relevant sentence instead
        # (never one of its instruction-like sentences, which are blanked out first).
        n = parsed.citations[0].n if parsed.citations else 1
        quote, _, _ = best_sentence(evidence[n - 1], None, question)
        if not quote.strip():
            return _refusal(question, hits, prompts, "no-content", "the cited passage has no news content", raw_text=raw, **r)
        text = f"{quote} [{n}]"
        notes.append("the model answered without words; the answer quotes the cited passage")
    elif not parsed.citations:
        cited = guards.add_missing_citations(text, evidence)
        if cited is None:
            return _refusal(question, hits, prompts, "uncited", "the answer was not supported by any source", raw_text=raw, **r)
        text = cited
        notes.append("the model gave no citations; they were added where the answer matches a source")
    invented = guards.unsupported_numbers(text, question, evidence) if checks.numbers else set()
    if invented:
        note = f"the answer gave numbers no source has ({', '.join(sorted(invented))})"
        return _refusal(question, hits, prompts, "numbers", note, raw_text=raw, **r)
    parsed = parse_citations(text, hits, texts, evidence)
    return _answer(
        request,
        question,
        timings,
        model=model,
        text=parsed.text,
        citations=parsed.citations,
        sources=list(hits),
        invalid_citations=invalid,
        raw_text=raw,
        notes=notes,
    )


def stream_answer(
    request: Request,
    retrieved: Sequence[Hit],
    hits: Sequence[Hit],
    generator: Generator,
    prompts: Prompts,
    article_text: Callable[[str], str | None],
    max_tokens: int,
    temperature: float,
    cancel: threading.Event | None = None,
) -> Iterator[str | Answer]:
    """Yield reply pieces as the model writes them, then the final :class:`Answer`.

    ``retrieved`` are the chunks found for ``request.standalone``; ``hits`` the passages
    (sentences selected from them, or the chunks themselves) that the model sees as numbered sources.

    The streamed pieces are the model's raw words; the final Answer is the checked version
    (citations normalised, refusals and bare citations handled), which callers should display.
    """
    started = time.perf_counter()
    question, choices, checks = request.standalone, request.choices, request.checks
    if not hits:
        yield _refusal(question, hits, prompts, "empty", "no passage was retrieved (empty index or date range)", request)
        return
    missing = guards.uncovered_terms(question, retrieved) if checks.coverage else []
    if missing:
        yield _refusal(question, hits, prompts, "coverage", f"no retrieved passage mentions: {', '.join(missing)}", request)
        return
    raw = ""
    held = ""
    first_token = None
    # The model never reads source sentences that are not news (see rag.answer.injection), judged
    # against the whole article (an editorial note's figures against the article's reporting).
    messages = prompts.answer_messages(
        question, _evidence(hits, {h.article.id: article_text(h.article.id) or "" for h in hits}), choices
    )
    # Stopped before the first word (say, while a follow-up was rewritten): no prompt is run, so
    # the model is free now instead of after a whole prompt evaluation nobody will read.
    stopped = cancel is not None and cancel.is_set()
    pieces = iter(()) if stopped else generator.stream(messages, max_tokens=max_tokens, temperature=temperature, cancel=cancel)
    for piece in pieces:
        if first_token is None:
            first_token = time.perf_counter() - started
        raw += piece
        # Hold back what may be the start of the refusal marker rather than show it.
        if REFUSAL_MARKER.startswith(raw.strip().upper()):
            held += piece
            continue
        if held:
            piece, held = held + piece, ""
        yield piece
    timings = {"first_token_s": first_token if first_token is not None else float("nan"),
               "generation_s": time.perf_counter() - started}
    yield finish_answer(question, raw, hits, prompts, article_text, checks, request, timings, generator.name)
