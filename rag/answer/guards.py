"""Checks around the model, because small models neither refuse nor cite reliably on their own.

Before generation: a question naming something (a person, place, number) that no retrieved
passage mentions is declined without asking the model. After generation: an answer that is
only a citation is replaced by the cited sentence; an uncited answer gets citations where its
words clearly come from a source, and is declined when they come from none; an answer
sentence that follows an injected instruction, echoes the system prompt or has no support in
the sources is dropped. Which source sentences are instructions is rag.answer.injection's
call; whether a sentence's names and numbers are in what it cites is rag.answer.grounding's.
The thresholds are named below, each with what it decides.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answer.citations import CITATION, metadata_fields, strip_citations
from rag.answer.grounding import NAME_STEM_LETTERS
from rag.answer.injection import injected_text, instruction_spans, looks_like_instruction, mask_instructions
from rag.answer.prompts import REFUSAL_MARKER
from rag.results import Hit
from rag.text import content_words, fold, numbers, overlap, split_sentences

# rag.answer.pipeline reaches these through this module.
__all__ = ["instruction_spans", "looks_like_instruction", "mask_instructions", "numbers"]

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


# A capitalised word on its own that is an adjective of a place or people ("Which European
# nation", "the Canadian giant", "30,000 Serbians"): the story says "France", "Tim Hortons",
# "Serbia". Measured on news-qa-2024: these were 3 of the guard's 5 refusals of answerable
# questions in a 20-question sample, and 1 of its 10 catches.
_DEMONYM = re.compile(r"(?:ican|ean|ian|ese|ish)s?$")
# Four-digit numbers in this range are years: dates, which the metadata (not the text) carries.
YEARS = range(1900, 2101)
# An answer with fewer content words than this ("Elena Teslova [1]") is a short one: when a
# check drops it, the cited sentence answers instead of a refusal.
FULL_ANSWER_WORDS = 3
# An uncited answer sentence is cited to the source that holds at least this share of its
# content words (text and metadata); below it the words are the model's own.
CITE_MIN_OVERLAP = 0.5
# After generation, an answer sentence is dropped when it uses words found only in
# instruction-like source text and less than this share of its words is in the news content
# (an obeyed injection) ...
OBEYED_INJECTION_SUPPORT = 0.8
# ... or when it has at least UNGROUNDED_MIN_WORDS content words and less than this share of
# them is in the question or the sources (it talks about something else; shorter sentences,
# "Yes, he did.", carry too few words to judge) ...
UNGROUNDED_SUPPORT = 0.2
UNGROUNDED_MIN_WORDS = 3
# ... or when it repeats this many words in a row of the system prompt (shorter runs of the
# prompt are phrases an answer uses too: "the cited source says").
PROMPT_ECHO_WORDS = 5


def salient_terms(question: str) -> list[str]:
    """Names and numbers in the question: runs of capitalised words (not the first word) and digits."""
    terms: list[str] = []
    run: list[str] = []
    words = list(re.finditer(r"\d{1,3}(?:,\d{3})+|[^\W_][\w'’.-]*", question))
    for i, m in enumerate(words):
        word = re.sub(r"['’]s$|[.'’-]+$", "", m.group()).replace(",", "")
        is_name = word[:1].isupper() and i > 0 and fold(word) not in _NOT_ENTITIES
        is_name = is_name and not (_DEMONYM.search(word) and not run and not _next_is_name(words, i))
        if is_name:
            run.append(word)
            continue
        if run:
            terms.append(" ".join(run))
            run = []
        if word.isdigit() and not (len(word) == 4 and int(word) in YEARS):
            terms.append(word)
    if run:
        terms.append(" ".join(run))
    return terms


def _next_is_name(words: Sequence[re.Match[str]], i: int) -> bool:
    """Whether the word after ``i`` is capitalised: "Christian Democrats" is a name, "Canadian giant" not."""
    return i + 1 < len(words) and words[i + 1].group()[:1].isupper()


def _covered(term: str, folded_words: set[str], raw_text: str) -> bool:
    parts = term.split()
    acronym = "".join(p[0] for p in parts if p[0].isupper())
    if len(parts) > 1 and len(acronym) > 1 and re.search(rf"\b{re.escape(acronym)}\b", raw_text):
        return True
    for part in parts:
        f = fold(part.replace(".", ""))
        if len(f) < NAME_STEM_LETTERS:
            if f in folded_words:
                return True
        elif any(w.startswith(f[:NAME_STEM_LETTERS]) for w in folded_words):
            return True
    return False


def uncovered_terms(question: str, hits: Sequence[Hit]) -> list[str]:
    """Salient question terms that appear in none of the passages (or their titles and sources)."""
    raw = "\n".join(f"{h.article.title}\n{h.article.source or ''}\n{h.article.author or ''}\n{h.text}" for h in hits)
    folded = {fold(w).replace(".", "") for w in re.findall(r"[\w.]+", raw)}
    folded |= {n.replace(",", "") for n in re.findall(r"\d{1,3}(?:,\d{3})+", raw)}  # "30,000" as one number
    return [t for t in salient_terms(question) if not _covered(t, folded, raw)]


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


def has_words(text: str, minimum: int = FULL_ANSWER_WORDS) -> bool:
    """Does the answer say anything besides citations? ('[3]' alone does not.)"""
    return len(content_words(strip_citations(text))) >= minimum


def add_missing_citations(text: str, hits: Sequence[Hit], threshold: float = CITE_MIN_OVERLAP) -> str | None:
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
        scores = [overlap(sentence, " ".join([h.text, *metadata_fields(h.article)])) for h in hits]
        best = max(range(len(hits)), key=lambda i: scores[i]) if hits else -1
        if best >= 0 and scores[best] >= threshold:
            supported = True
            body = sentence.rstrip()
            end = body[-1] if body and body[-1] in ".!?" else ""
            out.append(f"{body[: len(body) - len(end)]} [{best + 1}]{end}")
        else:
            out.append(sentence)
    return " ".join(out) if supported else None


# ---------------------------------------------------------------- answer sentences without support
# (which source sentences are injected instructions: rag.answer.injection)

def _shingles(text: str, n: int = PROMPT_ECHO_WORDS) -> set[tuple[str, ...]]:
    words = [fold(w) for w in re.findall(r"\w+", text)]
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def ungrounded_sentences(
    answer: str, question: str, hits: Sequence[Hit], system_prompt: str = "", article_texts: dict[str, str] | None = None
) -> list[str]:
    """Answer sentences the sources' news content does not support: ones that repeat words
    found only in instruction-like source text (an obeyed injection), that share no content
    with the question or the sources (text and metadata), or that quote the system prompt."""
    texts = article_texts or {}
    known = content_words(question)
    injected = set()
    for h in hits:
        clean = mask_instructions(h, texts.get(h.article.id))
        known |= content_words(" ".join([clean.text, *metadata_fields(clean.article)]))
        injected |= content_words(injected_text(h, texts.get(h.article.id)))
    injected -= known
    prompt_shingles = _shingles(system_prompt)
    bad = []
    for span in split_sentences(answer):
        sentence = strip_citations(answer[span.start : span.end])
        words = content_words(sentence)
        if not words:
            continue
        support = len(words & known) / len(words)
        obeyed = bool(words & injected) and support < OBEYED_INJECTION_SUPPORT
        off_topic = len(words) >= UNGROUNDED_MIN_WORDS and support < UNGROUNDED_SUPPORT
        if obeyed or off_topic or _shingles(sentence) & prompt_shingles:
            bad.append(answer[span.start : span.end].strip())
    return bad
