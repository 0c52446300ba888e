"""Articles into stories: near-duplicate copies first (the groups ingest marked with MinHash,
``duplicate_of``), then average-linkage clustering of what remains (scikit-learn) on a
similarity that adds shared names to the cosine of the article vectors and takes away
for days apart, so a story may span outlets and days but a subject's next event is another story."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.results import ArticleInfo


@dataclass(frozen=True)
class GroupingSettings:
    link_similarity: float = 0.5  # average combined similarity a cluster must keep
    name_weight: float = 0.3  # how much shared names add (name overlap is 0..1)
    gap_days: int = 3  # articles this many days apart are not penalised yet
    gap_penalty: float = 0.03  # similarity lost per day beyond gap_days


def copy_groups(articles: Sequence[ArticleInfo]) -> list[list[int]]:
    """Indices of ``articles`` grouped by near-duplicate root: an article and its copies (also
    copies of one root outside ``articles``) form one group, in first-seen order."""
    by_id = {a.id: a for a in articles}

    def root(a: ArticleInfo) -> str:
        seen = {a.id}
        while a.duplicate_of and a.duplicate_of not in seen:
            seen.add(a.duplicate_of)
            if a.duplicate_of not in by_id:
                return a.duplicate_of
            a = by_id[a.duplicate_of]
        return a.id

    groups: dict[str, list[int]] = {}
    for i, a in enumerate(articles):
        groups.setdefault(root(a), []).append(i)
    return list(groups.values())


def _normalised(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def name_overlaps(names: Sequence[frozenset[str]]) -> np.ndarray:
    """Pairwise :func:`rag.stories.names.name_overlap`, as one sparse product (a Python double
    loop took 3 s over 1,000 articles)."""
    from scipy.sparse import csr_matrix

    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for i, words in enumerate(names):
        for w in words:
            rows.append(i)
            cols.append(vocabulary.setdefault(w, len(vocabulary)))
    marks = csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(names), max(len(vocabulary), 1)))
    shared = (marks @ marks.T).toarray()
    sizes = np.array([len(n) for n in names], dtype=np.float32)
    smaller = np.maximum(np.minimum(sizes[:, None], sizes[None, :]), 1.0)
    return np.where(shared >= 2, shared / smaller, 0.0).astype(np.float32)


def similarity_matrix(
    vectors: np.ndarray, names: Sequence[frozenset[str]], days: np.ndarray, settings: GroupingSettings
) -> np.ndarray:
    """Pairwise combined similarity: cosine + name_weight * shared names - the days-apart penalty."""
    sim = vectors @ vectors.T
    if settings.name_weight:
        sim += settings.name_weight * name_overlaps(names)
    apart = np.abs(days[:, None] - days[None, :])
    sim -= settings.gap_penalty * np.maximum(apart - settings.gap_days, 0)
    return sim


def group_articles(
    articles: Sequence[ArticleInfo],
    vectors: np.ndarray,
    names: Sequence[frozenset[str]],
    settings: GroupingSettings | None = None,
) -> list[list[int]]:
    """Stories as lists of indices into ``articles`` (row i of ``vectors`` and ``names[i]`` are
    article i's). Copies are one unit; units are clustered by average linkage, so one
    borderline pair cannot chain two stories together as single linkage would."""
    settings = settings or GroupingSettings()
    units = copy_groups(articles)
    if len(units) <= 1:
        return units
    unit_vectors = _normalised(np.stack([vectors[u].sum(axis=0) for u in units]).astype(np.float32))
    unit_names = [frozenset().union(*(names[i] for i in u)) for u in units]
    dated = [a.published.toordinal() for a in articles if a.published]
    fallback = float(np.median(dated)) if dated else 0.0
    unit_days = np.array(
        [np.mean([a.published.toordinal() if (a := articles[i]).published else fallback for i in u]) for u in units]
    )
    sim = similarity_matrix(unit_vectors, unit_names, unit_days, settings)
    from sklearn.cluster import AgglomerativeClustering

    distance = np.clip(1.0 - sim, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    labels = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=1.0 - settings.link_similarity
    ).fit_predict(distance)
    stories: dict[int, list[int]] = {}
    for unit, label in zip(units, labels):
        stories.setdefault(int(label), []).extend(unit)
    return [sorted(s) for s in stories.values()]
