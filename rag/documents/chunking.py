"""Sentence-aware chunking sized in the embedder's tokens, with overlap and character offsets."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.documents.articles import Article
from rag.text import Span, split_sentences

TokenCounter = Callable[[str], int]
_WORD = re.compile(r"\S+")
# A chunk never spans more characters than this per budget token: a tokenizer may count a
# huge unbroken "word" as one unknown token, which would otherwise make one giant chunk.
MAX_CHARS_PER_TOKEN = 12


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


def _cut_word(start: int, end: int, text: str, max_tokens: int, max_chars: int, count: TokenCounter) -> list[Span]:
    """Cut one word that alone is over the budget (a URL, a run of digits, garbage) into pieces."""
    pieces = []
    while start < end:
        size = min(max_chars, end - start)
        while size > 1 and count(text[start : start + size]) > max_tokens:
            size //= 2
        pieces.append(Span(start, start + size))
        start += size
    return pieces


def _split_long(text: str, span: Span, max_tokens: int, max_chars: int, count: TokenCounter) -> list[Span]:
    """Cut a sentence longer than the budget (in tokens or characters) at word boundaries."""
    pieces: list[Span] = []
    start = None
    used = 0
    last_end = span.start
    for word in _WORD.finditer(text, span.start, span.end):
        n = count(word.group())
        if n > max_tokens or word.end() - word.start() > max_chars:
            if start is not None:
                pieces.append(Span(start, last_end))
                start, used = None, 0
            pieces.extend(_cut_word(word.start(), word.end(), text, max_tokens, max_chars, count))
            continue
        if start is not None and (used + n > max_tokens or word.end() - start > max_chars):
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
    max_chars = settings.max_tokens * MAX_CHARS_PER_TOKEN
    units: list[tuple[Span, int]] = []
    for span in split_sentences(text):
        n = count(text[span.start : span.end])
        if n > settings.max_tokens or span.end - span.start > max_chars:
            pieces = _split_long(text, span, settings.max_tokens, max_chars, count)
            units.extend((p, count(text[p.start : p.end])) for p in pieces)
        else:
            units.append((span, n))

    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, used = i, 0
        while j < len(units) and (
            j == i or (used + units[j][1] <= settings.max_tokens and units[j][0].end - units[i][0].start <= max_chars)
        ):
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
