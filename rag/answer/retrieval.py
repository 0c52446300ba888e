"""Find the passages that matter for a question, and fit them into the prompt's token budget."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date

from rag.index.store import Store
from rag.models.embedding import Embedder
from rag.results import Hit
from rag.settings import MODES, Mode
from rag.text import STOPWORDS

RRF_K = 60  # the usual reciprocal-rank-fusion constant: rank 1 scores 1/61


def query_terms(query: str) -> list[str]:
    """The words of a query worth matching lexically (no stopwords, no duplicates)."""
    words = re.findall(r"\w+", query.lower())
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())))


def fuse(
    rankings: Sequence[Sequence[tuple[int, float]]], k: int, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: an id ranked well by several rankers beats one ranked first by one."""
    scores: dict[int, float] = {}
    for i, ranking in enumerate(rankings):
        weight = weights[i] if weights else 1.0
        for rank, (chunk_id, _) in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]


@dataclass(frozen=True)
class Ranking:
    """How candidates are scored beyond the retrieval mode (each field is a ``Settings`` field;
    the defaults are the measured choices, see benchmarks/news_qa.py)."""

    pool: int = 0  # candidates per ranker; 0: max(4k, 20)
    dense_weight: float = 1.0  # weights of the two rankings in the fusion
    bm25_weight: float = 1.0
    title_weight: float = 0.5  # BM25 weight of the headline column (the passage text weighs 1)
    recency_half_life_days: float = 0.0  # 0: no recency prior
    recency_weight: float = 0.0  # a passage published on ``today`` scores (1 + weight) times more
    lede_boost: float = 0.0  # an article's first passage (headline and lede) scores (1 + this) times more
    per_article: int = 0  # >0: rank articles by their best passage, keep this many passages each
    evidence_per_article: int = 0  # for answers: the top k, then up to this many passages of each of their articles
    today: date | None = None  # what "recent" is measured from


def recency_factor(published: date | None, ranking: Ranking) -> float:
    """The soft recency prior: 1 + weight * 2^(-age / half-life). A news question asked on day D
    means "lately" even when it names no time, but an older article that matches much better
    still wins: this re-weights, it never filters. Undated and future articles get no bonus."""
    if not (ranking.today and published and ranking.recency_weight and ranking.recency_half_life_days > 0):
        return 1.0
    age = (ranking.today - published).days
    if age < 0:
        return 1.0
    return 1.0 + ranking.recency_weight * 0.5 ** (age / ranking.recency_half_life_days)


def search(
    store: Store,
    embedder: Embedder,
    query: str,
    k: int,
    since: date | None = None,
    until: date | None = None,
    mode: Mode = "dense",
    ranking: Ranking = Ranking(),
    article_ids: Sequence[str] = (),
) -> list[Hit]:
    """Top-``k`` passages for ``query``, optionally limited to a published-date range and to
    the articles ``article_ids``.

    ``dense``: cosine similarity of embeddings (FAISS); ``bm25``: SQLite FTS5 over titles and
    passages; ``hybrid``: both, fused by reciprocal rank; ``rerank``: hybrid candidates
    re-ordered by their best single sentence (see :func:`rerank_by_sentence`). ``ranking`` adds
    the recency prior and article-level ranking (see :class:`Ranking`)."""
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")
    store.refresh()
    pool = ranking.pool or (2 * k if mode in ("dense", "bm25") else max(4 * k, 20))  # room for what collapsing removes
    if ranking.per_article:  # several passages of one article compete for one place
        pool = max(pool, 4 * k)
    rankings: list[tuple[list[tuple[int, float]], float]] = []
    if mode in ("dense", "hybrid", "rerank"):
        allowed = store.chunk_ids_in_range(since, until, article_ids) if (since or until or article_ids) else None
        vector = embedder.embed([query])[0]
        rankings.append((store.dense_search(vector, pool, allowed), ranking.dense_weight))
    if mode in ("bm25", "hybrid", "rerank"):
        lexical = store.lexical_search(query_terms(query), pool, since, until, ranking.title_weight, article_ids)
        rankings.append((lexical, ranking.bm25_weight))
    scored = rankings[0][0] if len(rankings) == 1 else fuse([r for r, _ in rankings], pool, [w for _, w in rankings])
    hits = store.hits(scored)
    if (ranking.recency_weight and ranking.today) or ranking.lede_boost:
        hits = sorted(
            (replace(h, score=h.score * recency_factor(h.article.published, ranking)
                     * (1.0 + ranking.lede_boost * (h.ordinal == 0))) for h in hits),
            key=lambda h: -h.score,
        )
    hits = collapse_copies(hits)
    if ranking.per_article:
        hits = by_article(hits, ranking.per_article)
    if mode == "rerank":  # every sentence of a candidate is embedded: keep the pool small
        hits = rerank_by_sentence(query, hits[: max(2 * k, 10)], embedder)
    if ranking.per_article and ranking.evidence_per_article > ranking.per_article:
        return with_more_of_the_top_articles(hits, k, ranking.evidence_per_article)
    return hits[:k]


def with_more_of_the_top_articles(hits: Sequence[Hit], k: int, per_article: int) -> list[Hit]:
    """The top ``k`` hits, then further retrieved passages of those hits' articles (up to
    ``per_article`` each): for answering, article ranking picks the stories and evidence is then
    chosen from all that was retrieved of them, so a question about one article of a small
    library still reads more than its single best passage."""
    top = list(hits[:k])
    count: dict[str, int] = {}
    for h in top:
        count[h.article.id] = count.get(h.article.id, 0) + 1
    for h in hits[k:]:
        if count.get(h.article.id, per_article) < per_article:
            top.append(h)
            count[h.article.id] += 1
    return top


def by_article(hits: Sequence[Hit], per_article: int) -> list[Hit]:
    """Passage-then-article ranking: articles in the order of their best passage, each with its
    next best passages (up to ``per_article``); an article's further passages come only after
    every article's first ones, so a question about one article still gets all of it, but the
    top k of a large archive spans k stories."""
    groups: dict[str, list[Hit]] = {}
    for hit in hits:  # hits arrive best first
        groups.setdefault(hit.article.id, []).append(hit)
    first = [h for group in groups.values() for h in group[:per_article]]
    rest = sorted((h for group in groups.values() for h in group[per_article:]), key=lambda h: -h.score)
    return first + rest


def rerank_by_sentence(query: str, hits: Sequence[Hit], embedder: Embedder) -> list[Hit]:
    """Second stage: a chunk is as relevant as its best sentence. Every sentence of the
    candidates is embedded and compared with the query; the fused rank breaks near-ties."""
    from rag.text import split_sentences

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
