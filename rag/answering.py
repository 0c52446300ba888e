"""From a question (and chat history) to a cited, checked Answer, streamed."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from . import guards
from .chunking import split_sentences
from .citations import best_sentence, parse_citations
from .generation import Generator
from .grounding import unsupported_claims
from .prompts import REFUSAL_MARKER, Prompts
from .results import Answer, Hit

History = Sequence[tuple[str, str]]


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


def _refusal(question: str, hits: Sequence[Hit], prompts: Prompts, note: str, **extra: object) -> Answer:
    return Answer(question=question, text=prompts.refusal, citations=[], sources=list(hits), refused=True, notes=[note], **extra)  # type: ignore[arg-type]


def _evidence(hits: Sequence[Hit], texts: dict[str, str]) -> list[Hit]:
    """The sources as evidence: their non-news sentences blanked out (see rag.injection)."""
    return [guards.mask_instructions(h, texts.get(h.article.id) or None) for h in hits]


def _drop(text: str, bad: Sequence[str]) -> str:
    return " ".join(s for span in split_sentences(text) if (s := text[span.start : span.end].strip()) not in bad)


def finish_answer(
    question: str,
    raw: str,
    hits: Sequence[Hit],
    prompts: Prompts,
    article_text: Callable[[str], str | None],
) -> Answer:
    """Turn the model's raw reply into an Answer, applying the guards in :mod:`rag.guards`."""
    texts = {h.article.id: article_text(h.article.id) or "" for h in hits}
    evidence = _evidence(hits, texts)
    notes: list[str] = []
    if guards.is_refusal(raw):
        return _refusal(question, hits, prompts, "the model found no answer in the sources", raw_text=raw)
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
                return _refusal(question, hits, prompts, "the answer was not supported by the sources' news content", raw_text=raw)
            notes.append(f"dropped answer sentences the sources' news content does not support: {ungrounded}")
        # A sentence's names, numbers and links must be in the sentence it cites.
        unsupported = unsupported_claims(text, evidence, question)
        if unsupported:
            text = _drop(text, [s for s, _ in unsupported])
            missing = "; ".join(f"{s!r} ({', '.join(m)})" for s, m in unsupported)
            if full and not guards.has_words(text):
                return _refusal(question, hits, prompts, f"the cited sentences do not say: {missing}", raw_text=raw)
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
            return _refusal(question, hits, prompts, "the cited passage has no news content", raw_text=raw)
        text = f"{quote} [{n}]"
        notes.append("the model answered without words; the answer quotes the cited passage")
    elif not parsed.citations:
        cited = guards.add_missing_citations(text, evidence)
        if cited is None:
            return _refusal(question, hits, prompts, "the answer was not supported by any source", raw_text=raw)
        text = cited
        notes.append("the model gave no citations; they were added where the answer matches a source")
    invented = guards.unsupported_numbers(text, question, evidence)
    if invented:
        note = f"the answer gave numbers no source has ({', '.join(sorted(invented))})"
        return _refusal(question, hits, prompts, note, raw_text=raw)
    parsed = parse_citations(text, hits, texts, evidence)
    return Answer(
        question=question,
        text=parsed.text,
        citations=parsed.citations,
        sources=list(hits),
        invalid_citations=invalid,
        raw_text=raw,
        notes=notes,
    )


def stream_answer(
    question: str,
    retrieved: Sequence[Hit],
    hits: Sequence[Hit],
    generator: Generator,
    prompts: Prompts,
    article_text: Callable[[str], str | None],
    max_tokens: int,
    temperature: float,
    cancel: threading.Event | None = None,
    choices: Sequence[str] = (),
) -> Iterator[str | Answer]:
    """Yield reply pieces as the model writes them, then the final :class:`Answer`.

    ``retrieved`` are the chunks found for the question; ``hits`` the passages (sentences
    selected from them, or the chunks themselves) that the model sees as numbered sources.

    The streamed pieces are the model's raw words; the final Answer is the checked version
    (citations normalised, refusals and bare citations handled), which callers should display.
    """
    started = time.perf_counter()
    if not hits:
        yield _refusal(question, hits, prompts, "no passage was retrieved (empty index or date range)")
        return
    missing = guards.uncovered_terms(question, retrieved)
    if missing:
        yield _refusal(question, hits, prompts, f"no retrieved passage mentions: {', '.join(missing)}")
        return
    raw = ""
    held = ""
    first_token = None
    # The model never reads source sentences that are not news (see rag.injection), judged
    # against the whole article (an editorial note's figures against the article's reporting).
    messages = prompts.answer_messages(
        question, _evidence(hits, {h.article.id: article_text(h.article.id) or "" for h in hits}), choices
    )
    for piece in generator.stream(messages, max_tokens=max_tokens, temperature=temperature, cancel=cancel):
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
    answer = finish_answer(question, raw, hits, prompts, article_text)
    answer.model = generator.name
    answer.timings["first_token_s"] = first_token if first_token is not None else float("nan")
    answer.timings["generation_s"] = time.perf_counter() - started
    yield answer
