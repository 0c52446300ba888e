"""Find the passages that matter for a question, and fit them into the prompt's token budget."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Literal

from .citations import STOPWORDS
from .embedding import Embedder
from .results import Hit
from .store import Store


Mode = Literal["dense", "bm25", "hybrid", "rerank"]
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid", "rerank")
RRF_K = 60  # the usual reciprocal-rank-fusion constant: rank 1 scores 1/61


def query_terms(query: str) -> list[str]:
    """The words of a query worth matching lexically (no stopwords, no duplicates)."""
    words = re.findall(r"\w+", query.lower())
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())))


def fuse(rankings: Sequence[Sequence[tuple[int, float]]], k: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: an id ranked well by several rankers beats one ranked first by one."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _) in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]


def search(
    store: Store,
    embedder: Embedder,
    query: str,
    k: int,
    since: date | None = None,
    until: date | None = None,
    mode: Mode = "dense",
) -> list[Hit]:
    """Top-``k`` passages for ``query``, optionally limited to a published-date range.

    ``dense``: cosine similarity of embeddings (FAISS); ``bm25``: SQLite FTS5 over titles and
    passages; ``hybrid``: both, fused by reciprocal rank; ``rerank``: hybrid candidates
    re-ordered by their best single sentence (see :func:`rerank_by_sentence`)."""
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")
    store.refresh()
    pool = 2 * k if mode in ("dense", "bm25") else max(4 * k, 20)  # room for what collapsing removes
    rankings = []
    if mode in ("dense", "hybrid", "rerank"):
        allowed = store.chunk_ids_in_range(since, until) if (since or until) else None
        vector = embedder.embed([query])[0]
        rankings.append(store.dense_search(vector, pool, allowed))
    if mode in ("bm25", "hybrid", "rerank"):
        rankings.append(store.lexical_search(query_terms(query), pool, since, until))
    scored = rankings[0] if len(rankings) == 1 else fuse(rankings, pool)
    hits = collapse_copies(store.hits(scored))
    if mode == "rerank":  # every sentence of a candidate is embedded: keep the pool small
        hits = rerank_by_sentence(query, hits[: max(2 * k, 10)], embedder)
    return hits[:k]


def rerank_by_sentence(query: str, hits: Sequence[Hit], embedder: Embedder) -> list[Hit]:
    """Second stage: a chunk is as relevant as its best sentence. Every sentence of the
    candidates is embedded and compared with the query; the fused rank breaks near-ties."""
    from dataclasses import replace

    from .chunking import split_sentences

    if not hits:
        return []
    sentences: list[str] = []
    owner: list[int] = []
    for i, hit in enumerate(hits):
        for span in split_sentences(hit.text):
            sentences.append(hit.text[span.start : span.end])
            owner.append(i)
    vectors = embedder.embed([query, *sentences])
    sims = vectors[1:] @ vectors[0]
    best = [-1.0] * len(hits)
    for i, sim in zip(owner, sims):
        best[i] = max(best[i], float(sim))
    prior = 0.1  # how much the first-stage order still counts, at most
    scored = [(best[i] + prior * (1 - i / len(hits)), i) for i in range(len(hits))]
    return [replace(hits[i], score=score) for score, i in sorted(scored, key=lambda t: -t[0])]


def collapse_copies(hits: Sequence[Hit]) -> list[Hit]:
    """Keep one article per story: passages of a near-duplicate of an article already ranked
    higher (the same wire story from another outlet) are dropped."""
    chosen: dict[str, str] = {}  # story (root article id) -> the article kept for it
    out = []
    for hit in hits:
        story = hit.article.duplicate_of or hit.article.id
        if chosen.setdefault(story, hit.article.id) == hit.article.id:
            out.append(hit)
    return out


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
