"""Find the passages that matter for a question, and fit them into the prompt's token budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from .embedding import Embedder
from .results import Hit
from .store import Store


def search(
    store: Store,
    embedder: Embedder,
    query: str,
    k: int,
    since: date | None = None,
    until: date | None = None,
) -> list[Hit]:
    """Top-``k`` passages by cosine similarity, optionally limited to a published-date range."""
    store.refresh()
    allowed = store.chunk_ids_in_range(since, until) if (since or until) else None
    vector = embedder.embed([query])[0]
    return store.hits(store.dense_search(vector, k, allowed))


def fit_budget(hits: Sequence[Hit], budget_tokens: int, count: Callable[[str], int]) -> list[Hit]:
    """The best hits, in rank order, whose passages fit in ``budget_tokens`` (always at least one)."""
    chosen: list[Hit] = []
    used = 0
    for hit in hits:
        n = count(hit.text)
        if chosen and used + n > budget_tokens:
            break
        chosen.append(hit)
        used += n
    return chosen
