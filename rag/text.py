"""Text helpers every stage shares: sentence spans, folding, stopwords, content words (stems),
word overlap, and numbers written as digits or words."""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# pysbd is slow (about 75 s per 10 MB of prose) and goes quadratic on long runs of short
# "sentences" ("a. a. a. ..."), so it only ever sees windows of this many characters, and only
# in texts up to PYSBD_MAX_TEXT; longer texts (no real article is that long) use _SENTENCE_END.
PYSBD_WINDOW = 2000
PYSBD_MAX_TEXT = 100_000
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)")
@dataclass(frozen=True)
class Span:
    start: int
    end: int


@lru_cache(maxsize=1)
def _segmenter():  # type: ignore[no-untyped-def]
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def _windows(line: str, size: int) -> list[tuple[int, int]]:
    """(start, end) pieces of ``line`` of at most ``size`` characters, cut after the last sentence
    end in each, else at the last space, else anywhere."""
    out, start = [], 0
    while len(line) - start > size:
        limit = start + size
        ends = [m.end() for m in _SENTENCE_END.finditer(line, start, limit)]
        cut = ends[-1] if ends and ends[-1] > start else line.rfind(" ", start + 1, limit)
        if cut <= start:
            cut = limit
        out.append((start, cut))
        start = cut
    out.append((start, len(line)))
    return out


def _regex_sentences(line: str) -> list[tuple[int, int]]:
    """Cheap, linear sentence spans for texts too long for pysbd."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(line):
        out.append((start, m.end()))
        start = m.end()
    out.append((start, len(line)))
    return out


def split_sentences(text: str) -> list[Span]:
    """Sentence spans of ``text``; line breaks always end a sentence (headings, list items)."""
    spans: list[Span] = []
    use_pysbd = len(text) <= PYSBD_MAX_TEXT
    for line in re.finditer(r"[^\n]+", text):
        if not line.group().strip():
            continue
        pieces = _windows(line.group(), PYSBD_WINDOW) if use_pysbd else _regex_sentences(line.group())
        for start, end in pieces:
            spans.extend(_segment(text, line.start() + start, line.start() + end, use_pysbd))
    return spans


def _segment(text: str, base: int, end: int, use_pysbd: bool) -> list[Span]:
    line_text = text[base:end]
    if not use_pysbd:
        s = line_text.strip()
        if not s:
            return []
        lead = len(line_text) - len(line_text.lstrip())
        return [Span(base + lead, base + lead + len(s))]
    spans: list[Span] = []
    if line_text.strip():
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


_WORD = re.compile(r"\w+")
STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being it its this that
    these those he she they them his her their we you i me my our your not no do does did done has have had
    what which who whom whose when where why how there here than then so such can could would should will may
    might must about into over after before also said says say any all some more most other own same only very
    just up out off again further once""".split()
)


def fold(word: str) -> str:
    """Lower-case, accents removed: 'Türkiye' -> 'turkiye'."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_local = threading.local()


def _stemmer():  # type: ignore[no-untyped-def]
    # One per thread: a snowball stemmer keeps its word in the object, so chat users answering
    # at the same time corrupted each other's stems (IndexError under load).
    if (stemmer := getattr(_local, "stemmer", None)) is None:
        import snowballstemmer

        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return stemmer


def content_words(text: str) -> set[str]:
    """Stems of the words that carry meaning, so 'proposed' meets 'proposal' and 'vetoing' 'veto'."""
    words = [f for f in (fold(w) for w in _WORD.findall(text)) if f not in STOPWORDS and len(f) > 1]
    return set(_stemmer().stemWords(words))


def overlap(answer: str, source: str) -> float:
    """Share of the answer's content words that also occur in the source (0..1)."""
    a = content_words(answer)
    return len(a & content_words(source)) / len(a) if a else 0.0


_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({w: str(10 * i) for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), start=3)})
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.I)


def numbers(text: str) -> set[str]:
    """Numbers in ``text``, as digits ('three' -> '3', '2,700' -> '2700')."""
    out = set()
    for m in _NUMBER.finditer(text):
        token = m.group().lower()
        out.add(_NUMBER_WORDS.get(token, token.replace(",", "")))
    return out


def counted(n: int, word: str, plural: str | None = None) -> str:
    """"1 article", "3 articles": a count with its noun, for messages people read."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"
