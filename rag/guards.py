"""Checks around the model, because small models neither refuse nor cite reliably on their own.

Before generation: a question naming something (a person, place, number) that no retrieved
passage mentions is declined without asking the model. After generation: an answer that is
only a citation is replaced by the cited sentence; an uncited answer gets citations where its
words clearly come from a source, and is declined when they come from none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .citations import CITATION, content_words, fold, overlap, strip_citations
from .chunking import split_sentences
from .prompts import REFUSAL_MARKER
from .results import Hit

# Capitalised words that do not name anything a passage must contain.
_NOT_ENTITIES = frozenset(
    """i what who whom whose when where why how which did does do is are was were can could would should will
    tell list name give according the a an and or in on at of for about please
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow""".split()
)
_REFUSAL_PATTERNS = re.compile(
    r"not in (the )?sources|(sources?|articles?|texts?|passages?|context|information provided)\s+"
    r"(do|does|did)\s*(not|n['’]t)\s+(contain|mention|say|provide|include|specify|discuss|address)|"
    r"no (relevant )?information|(is|are|was|were) not (mentioned|provided|specified|stated)|"
    r"(cannot|can['’]t|unable to) (answer|find|determine)",
    re.I,
)


def salient_terms(question: str) -> list[str]:
    """Names and numbers in the question: runs of capitalised words (not the first word) and digits."""
    terms: list[str] = []
    run: list[str] = []
    words = list(re.finditer(r"[^\W_][\w'’.-]*", question))
    for i, m in enumerate(words):
        word = re.sub(r"['’]s$|[.'’-]+$", "", m.group())
        is_name = word[:1].isupper() and i > 0 and fold(word) not in _NOT_ENTITIES
        if is_name:
            run.append(word)
            continue
        if run:
            terms.append(" ".join(run))
            run = []
        if word.isdigit() and not (len(word) == 4 and 1900 <= int(word) <= 2100):
            terms.append(word)  # years are dates, which the metadata (not the text) carries
    if run:
        terms.append(" ".join(run))
    return terms


def _covered(term: str, folded_words: set[str], raw_text: str) -> bool:
    parts = term.split()
    acronym = "".join(p[0] for p in parts if p[0].isupper())
    if len(parts) > 1 and len(acronym) > 1 and re.search(rf"\b{re.escape(acronym)}\b", raw_text):
        return True
    for part in parts:
        f = fold(part.replace(".", ""))
        if len(f) < 4:
            if f in folded_words:
                return True
        elif any(w.startswith(f[:4]) for w in folded_words):
            return True
    return False


def uncovered_terms(question: str, hits: Sequence[Hit]) -> list[str]:
    """Salient question terms that appear in none of the passages (or their titles and sources)."""
    raw = "\n".join(f"{h.article.title}\n{h.article.source or ''}\n{h.text}" for h in hits)
    folded = {fold(w).replace(".", "") for w in re.findall(r"[\w.]+", raw)}
    return [t for t in salient_terms(question) if not _covered(t, folded, raw)]


_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.I)


def numbers(text: str) -> set[str]:
    """Numbers in ``text``, as digits ('three' -> '3', '2,700' -> '2700')."""
    out = set()
    for m in _NUMBER.finditer(text):
        token = m.group().lower()
        out.add(_NUMBER_WORDS.get(token, token.replace(",", "")))
    return out


def unsupported_numbers(answer: str, question: str, hits: Sequence[Hit]) -> set[str]:
    """Numbers the answer states that neither the question nor any source (or its date) has:
    small models invent figures ("20 people attended") more than anything else."""
    known = numbers(question)
    for h in hits:
        known |= numbers(h.text)
        if h.article.published:
            known |= {str(h.article.published.year), str(h.article.published.month), str(h.article.published.day)}
    return numbers(strip_citations(answer)) - known


def is_refusal(text: str) -> bool:
    """True when the model says the sources do not answer (in its first sentence)."""
    if REFUSAL_MARKER.lower() in text.lower():
        return True
    spans = split_sentences(text)
    first = text[spans[0].start : spans[0].end] if spans else text
    return bool(_REFUSAL_PATTERNS.search(first))


def has_words(text: str, minimum: int = 3) -> bool:
    """Does the answer say anything besides citations? ('[3]' alone does not.)"""
    return len(content_words(strip_citations(text))) >= minimum


def add_missing_citations(text: str, hits: Sequence[Hit], threshold: float = 0.5) -> str | None:
    """Cite, sentence by sentence, the source an uncited answer's words come from.

    Returns None when no sentence is supported by any source: then the answer is not grounded.
    """
    out: list[str] = []
    supported = False
    for span in split_sentences(text):
        sentence = text[span.start : span.end]
        if CITATION.search(sentence) or not content_words(sentence):
            out.append(sentence)
            continue
        scores = [overlap(sentence, h.text) for h in hits]
        best = max(range(len(hits)), key=lambda i: scores[i]) if hits else -1
        if best >= 0 and scores[best] >= threshold:
            supported = True
            body = sentence.rstrip()
            end = body[-1] if body and body[-1] in ".!?" else ""
            out.append(f"{body[: len(body) - len(end)]} [{best + 1}]{end}")
        else:
            out.append(sentence)
    return " ".join(out) if supported else None
