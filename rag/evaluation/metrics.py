"""Metric functions for evaluation: retrieval ranks, answer strings, percentiles. Pure and small,
so each can be checked against hand-computed cases."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Collection, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def first_occurrences(ranked: Sequence[str]) -> list[str]:
    """Ranked ids with repeats removed: several passages of one article count once, at its best rank."""
    return list(dict.fromkeys(ranked))


def hits_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 when any relevant id is in the top ``k``."""
    return float(any(r in relevant for r in first_occurrences(ranked)[:k]))


def recall_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant ids found in the top ``k``."""
    if not relevant:
        return 0.0
    return len(set(first_occurrences(ranked)[:k]) & set(relevant)) / len(set(relevant))


def mrr_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1 / rank of the first relevant id within the top ``k`` (0 when none)."""
    for rank, r in enumerate(first_occurrences(ranked)[:k], start=1):
        if r in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Binary-relevance nDCG@k."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank, r in enumerate(first_occurrences(ranked)[:k], start=1) if r in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(set(relevant)), k) + 1))
    return dcg / ideal


def normalize(text: str) -> str:
    """SQuAD-style: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(" " if ch in string.punctuation or ch in "“”‘’" else ch for ch in text)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    p = normalize(prediction)
    return float(bool(golds) and any(p == normalize(g) for g in golds))


def contains_answer(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when a gold answer appears in the prediction (after normalising both)."""
    p = f" {normalize(prediction)} "
    return float(any(normalize(g) and f" {normalize(g)} " in p for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """Best token-overlap F1 against any gold answer."""
    p = normalize(prediction).split()
    best = 0.0
    for gold in golds:
        g = normalize(gold).split()
        common = sum((Counter(p) & Counter(g)).values())
        if not p or not g or not common:
            continue
        precision, recall = common / len(p), common / len(g)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    data = sorted(v for v in values if not math.isnan(v))
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def mean(values: Sequence[float | None]) -> float:
    data = [v for v in values if v is not None and not math.isnan(v)]
    return sum(data) / len(data) if data else float("nan")


# ---------------------------------------------------------------- options and citations
# Multiple-choice data scored on free-text answers (news-qa-2024): an answer is right when it
# holds every content word of the right option, whatever else it says.

_NUMBER = re.compile(r"\d[\d,.]*")
_NAME = re.compile(r"[^\W\d_][\w'’-]*")


def option_coverage(prediction: str, option: str) -> float:
    """Share of the option's content words (stemmed) found in the prediction (0..1)."""
    from rag.answer.choices import coverage

    return coverage(prediction, option)


def option_right(prediction: str, right: str) -> float:
    """1.0 when the prediction contains every content word of the right option."""
    return float(option_coverage(prediction, right) == 1.0)


def best_option(prediction: str, choices: Sequence[str], right: str) -> float:
    """The lenient figure: 1.0 when the right option matches the prediction strictly better than
    every other option does."""
    score = option_coverage(prediction, right)
    others = [option_coverage(prediction, c) for c in choices if c != right]
    return float(score > 0 and all(score > o for o in others))


def key_words(sentence: str) -> set[str]:
    """What a citation must back: the sentence's numbers and its names (capitalised words after
    the first word), folded."""
    from rag.text import STOPWORDS, fold

    keys = {n.rstrip(",.").replace(",", "") for n in _NUMBER.findall(sentence)}
    for i, m in enumerate(_NAME.finditer(sentence)):
        word = re.sub(r"['’]s$", "", m.group())
        if i > 0 and word[:1].isupper() and fold(word) not in STOPWORDS:
            keys.add(fold(word))
    return {k for k in keys if k}


def citation_supported(sentence: str, quote: str) -> bool:
    """True when the quoted source sentence holds the citing sentence's key words (its numbers
    and names), or, for a sentence with none, at least half of its content words."""
    from rag.answer.citations import strip_citations
    from rag.text import content_words, fold

    sentence = strip_citations(sentence)
    keys = key_words(sentence)
    if keys:
        quote_words = {fold(w) for w in _NAME.findall(quote)} | {
            n.rstrip(",.").replace(",", "") for n in _NUMBER.findall(quote)
        }
        quote_words |= {re.sub(r"['’]s$", "", w) for w in quote_words}
        return keys <= quote_words
    words = content_words(sentence)
    return bool(words) and len(words & content_words(quote)) >= len(words) / 2
