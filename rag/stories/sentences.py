"""Candidate sentences of an article for briefings and timelines, with their article offsets,
and the support check every shown sentence must pass (the answers' grounding check, against
the sentences it cites)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rag.answer.grounding import unsupported_claims
from rag.results import ArticleInfo, Hit
from rag.stories.results import Quote
from rag.text import content_words, overlap, split_sentences

# What happened is in the lede: the splitter reads this much of each article (it is slow).
LEDE_CHARS = 1500
MIN_CHARS, MAX_CHARS = 40, 400
MIN_CONTENT_WORDS = 4
_ENDS_SENTENCE = re.compile(r"[.!…][\"'”’»)]*$")  # a question says nothing happened
# Page furniture that reads like a sentence.
_BOILERPLATE = re.compile(
    r"^(?:editor'?s note|read more|sign[- ]up|subscribe|click|follow us|watch|listen|related|copyright|this story|"
    r"this article|this page|photo|image|video|contributing|reporting by|\(?ap\)? ?photo)\b", re.I
)
# A content-word share a model-written sentence must have with the sentences it cites: the
# grounding check looks at names and numbers only, this keeps the rest of the claim close too.
MIN_MODEL_OVERLAP = 0.6


@lru_cache(maxsize=16_384)
def words(text: str) -> frozenset[str]:
    """:func:`rag.text.content_words`, remembered: a briefing asks for a sentence's words three times."""
    return frozenset(content_words(text))


@dataclass(frozen=True)
class Candidate:
    """A sentence of ``article`` (``text == article_text[start:end]``), ``position`` in its lede."""

    article: ArticleInfo
    text: str
    start: int
    end: int
    position: int

    def quote(self, n: int) -> Quote:
        return Quote(n, self.article, self.text, self.start, self.end)


def candidates(article: ArticleInfo, text: str, start: int = 0, end: int | None = None) -> list[Candidate]:
    """Whole sentences of ``text[start:end]`` (a passage; default: the lede) that can stand alone: not a
    headline or a caption (they end like a sentence), neither a fragment nor a paragraph."""
    lede = end is None
    end = min(len(text), start + LEDE_CHARS) if end is None else end
    window = text[start:end]
    spans = split_sentences(window)
    if lede and end < len(text) and spans and spans[-1].end >= len(window.rstrip()):
        spans = spans[:-1]  # cut off by the lede window: not a whole sentence
    out: list[Candidate] = []
    title = article.title.strip().casefold()
    for span in spans:
        sentence = window[span.start : span.end]
        if not MIN_CHARS <= len(sentence) <= MAX_CHARS or not _ENDS_SENTENCE.search(sentence):
            continue
        if sentence.casefold() == title or _BOILERPLATE.match(sentence) or len(words(sentence)) < MIN_CONTENT_WORDS:
            continue
        out.append(Candidate(article, sentence, start + span.start, start + span.end, len(out)))
    return out


def as_hit(quote: Quote) -> Hit:
    """A quote as the passage the grounding check reads."""
    return Hit(-1, quote.article, 0, quote.start, quote.end, quote.text, 1.0)


def unsupported(sentence: str, quotes: Sequence[Quote]) -> list[str]:
    """Why ``sentence`` is not supported by the ``quotes`` it cites (empty: supported): a name,
    number or link they lack (rag.answer.grounding), or too few of its words in them."""
    if not quotes:
        return ["cites nothing"]
    numbered = " ".join(f"[{i}]" for i in range(1, len(quotes) + 1))
    problems = [w for _, missing in unsupported_claims(f"{sentence} {numbered}", [as_hit(q) for q in quotes]) for w in missing]
    share = overlap(sentence, " ".join(q.text for q in quotes))
    if share < MIN_MODEL_OVERLAP:
        problems.append(f"only {share:.0%} of its words are in the cited sentences")
    return problems
