"""Sentence-aware chunking sized in the embedder's tokens, with overlap and character offsets."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from .articles import Article

TokenCounter = Callable[[str], int]
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    """A passage of an article: ``article.text[start:end] == text``."""

    article_id: str
    ordinal: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ChunkerSettings:
    max_tokens: int = 128
    overlap_tokens: int = 24


@lru_cache(maxsize=1)
def _segmenter():  # type: ignore[no-untyped-def]
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str) -> list[Span]:
    """Sentence spans of ``text``; line breaks always end a sentence (headings, list items)."""
    spans: list[Span] = []
    for line in re.finditer(r"[^\n]+", text):
        base, line_text = line.start(), line.group()
        if not line_text.strip():
            continue
        pos = 0
        for sentence in _segmenter().segment(line_text):
            s = sentence.strip()
            if not s:
                continue
            found = line_text.find(s, pos)
            if found < 0:  # pysbd altered the text; fall back to the rest of the line
                found, s = pos, line_text[pos:].strip()
                if not s:
                    break
                found = line_text.find(s, pos)
            spans.append(Span(base + found, base + found + len(s)))
            pos = found + len(s)
        if pos < len(line_text) and line_text[pos:].strip():
            rest = line_text[pos:]
            lead = len(rest) - len(rest.lstrip())
            spans.append(Span(base + pos + lead, base + len(line_text.rstrip())))
    return spans


def _split_long(text: str, span: Span, max_tokens: int, count: TokenCounter) -> list[Span]:
    """Cut a sentence longer than the budget at word boundaries."""
    pieces: list[Span] = []
    start = None
    used = 0
    last_end = span.start
    for word in _WORD.finditer(text, span.start, span.end):
        n = count(word.group())
        if start is not None and used + n > max_tokens:
            pieces.append(Span(start, last_end))
            start, used = None, 0
        if start is None:
            start = word.start()
        used += n
        last_end = word.end()
    if start is not None:
        pieces.append(Span(start, last_end))
    return pieces


def chunk_article(article: Article, settings: ChunkerSettings, count: TokenCounter) -> list[Chunk]:
    """Pack whole sentences into chunks of at most ``max_tokens``; consecutive chunks share
    up to ``overlap_tokens`` of trailing sentences so a fact on a boundary is never lost."""
    text = article.text
    units: list[tuple[Span, int]] = []
    for span in split_sentences(text):
        n = count(text[span.start : span.end])
        if n > settings.max_tokens:
            units.extend((p, count(text[p.start : p.end])) for p in _split_long(text, span, settings.max_tokens, count))
        else:
            units.append((span, n))

    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, used = i, 0
        while j < len(units) and (j == i or used + units[j][1] <= settings.max_tokens):
            used += units[j][1]
            j += 1
        start, end = units[i][0].start, units[j - 1][0].end
        chunks.append(Chunk(article.id, len(chunks), start, end, text[start:end]))
        if j >= len(units):
            break
        # Next chunk begins with the trailing sentences that fit in the overlap budget.
        k, back = j, 0
        while k - 1 > i and back + units[k - 1][1] <= settings.overlap_tokens:
            k -= 1
            back += units[k][1]
        i = k
    return chunks


def embedding_text(article: Article, chunk_text: str) -> str:
    """What gets embedded: the passage with its headline and date, which carry much of its meaning."""
    header = article.title
    if article.published:
        header += f" ({article.published.isoformat()})"
    return f"{header}\n{chunk_text}"
