"""Find ``[n]`` citations in an answer, check them against the sources, and quote the sentence
each one points at. Also the word-overlap measure the answer guards use."""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from .chunking import split_sentences
from .results import ArticleInfo, Citation, Hit

# [1], [1, 2], [1][2], [Source 1], [1-3]
CITATION = re.compile(r"\[\s*(?:(?:source|src|passage|doc)\s*)?(\d+(?:\s*(?:[,;]|-|–|and)\s*(?:(?:source|src)\s*)?\d+)*)\s*\]", re.I)
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


def metadata_fields(article: ArticleInfo) -> list[str]:
    """An article's metadata as citable text: what the prompt shows about it (headline, source,
    author, date). A question about the article itself is answered from these."""
    fields = [f for f in (article.title, article.source, article.author) if f]
    if article.published:
        p = article.published
        fields.append(f"{p.isoformat()} ({p.day} {p:%B %Y}, a {p:%A})")
    return fields


def _numbers(group: str) -> list[int]:
    nums: list[int] = []
    for part in re.split(r"\s*(?:[,;]|and)\s*", group):
        bounds = [int(x) for x in re.findall(r"\d+", part)]
        if len(bounds) == 2 and bounds[0] <= bounds[1] and bounds[1] - bounds[0] < 10:
            nums.extend(range(bounds[0], bounds[1] + 1))
        else:
            nums.extend(bounds)
    return nums


@dataclass
class ParsedCitations:
    text: str  # the answer with citations normalised to [n] and invalid ones removed
    citations: list[Citation]
    invalid: list[int]


def _support(claim: str, sentence: str) -> float:
    """Word overlap, and the claim's numbers found in the sentence as a tie-break."""
    claimed = numbers(claim)
    return overlap(claim, sentence) + (0.5 * len(claimed & numbers(sentence)) / len(claimed) if claimed else 0.0)


def best_sentence(hit: Hit, article_text: str | None, claim: str, metadata: bool = False) -> tuple[str, int, int]:
    """The sentence of the passage that best supports ``claim``, with its article offsets.
    With ``metadata``, a metadata field (see :func:`metadata_fields`) that supports the claim
    better than any sentence is the quote, as an empty span at the passage start."""
    text = hit.text
    best = (0.0, 0, len(text))
    for span in split_sentences(text):
        score = _support(claim, text[span.start : span.end])
        if score > best[0]:
            best = (score, span.start, span.end)
    if metadata:
        scored = [(_support(claim, f), f) for f in metadata_fields(hit.article)]
        if max(scored, default=(0.0, ""))[0] > best[0]:
            return " · ".join(f for score, f in scored if score > 0), hit.start, hit.start
    _, start, end = best
    quote = text[start:end]
    a_start = hit.start + start
    if article_text is not None and article_text[a_start : a_start + len(quote)] != quote:
        found = article_text.find(quote)
        a_start = found if found >= 0 else a_start
    return quote, a_start, a_start + len(quote)


def strip_citations(text: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", CITATION.sub("", text)).strip()


def parse_citations(
    answer: str, sources: Sequence[Hit], article_texts: dict[str, str] | None = None, evidence: Sequence[Hit] | None = None
) -> ParsedCitations:
    """Resolve every citation in ``answer``; numbers outside 1..len(sources) are dropped and reported.

    ``evidence``: the sources as they may be quoted (instruction-like sentences blanked out, same
    offsets, see :func:`rag.injection.mask_instructions`); a quote is only ever taken from them,
    and may be a metadata field of the article."""
    invalid: list[int] = []

    def normalise(m: re.Match[str]) -> str:
        nums = _numbers(m.group(1))
        good = [n for n in dict.fromkeys(nums) if 1 <= n <= len(sources)]
        invalid.extend(n for n in nums if not 1 <= n <= len(sources))
        return "".join(f"[{n}]" for n in good)

    text = CITATION.sub(normalise, answer)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    citations: list[Citation] = []
    seen: set[tuple[int, int]] = set()
    claim = ""
    for span in split_sentences(text):
        sentence = text[span.start : span.end]
        # A citation standing alone after a sentence belongs to the sentence before it.
        claim = strip_citations(sentence) if content_words(strip_citations(sentence)) else claim
        for m in re.finditer(r"\[(\d+)\]", sentence):
            n = int(m.group(1))
            hit = sources[n - 1]
            quotable = evidence[n - 1] if evidence is not None else hit
            quote, q_start, q_end = best_sentence(quotable, (article_texts or {}).get(hit.article.id), claim, evidence is not None)
            if (n, q_start) in seen:
                continue
            seen.add((n, q_start))
            citations.append(Citation(n=n, hit=hit, quote=quote, quote_start=q_start, quote_end=q_end))
    return ParsedCitations(text=text, citations=citations, invalid=sorted(set(invalid)))
