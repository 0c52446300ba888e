"""Find ``[n]`` citations in an answer, check them against the sources, and quote the sentence
each one points at."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.results import ArticleInfo, Citation, Hit
from rag.text import content_words, numbers, overlap, split_sentences

# [1], [1, 2], [1][2], [Source 1], [1-3]
CITATION = re.compile(r"\[\s*(?:(?:source|src|passage|doc)\s*)?(\d+(?:\s*(?:[,;]|-|–|and)\s*(?:(?:source|src)\s*)?\d+)*)\s*\]", re.I)
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
    offsets, see :func:`rag.answer.injection.mask_instructions`); a quote is only ever taken from them,
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
