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
