"""Reads for the news views (rag.stories): the articles published in a period, their texts,
and one vector per article — the mean of its stored chunk vectors, so a briefing over a week
of articles embeds nothing again (the vectors are in SQLite already)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from rag.index.search import _published_between
from rag.results import ArticleInfo

if TYPE_CHECKING:
    from rag.index.store import Store

_BATCH = 500  # ids per IN (...) query, well under SQLite's variable limit


def _rows_in(store: Store, sql: str, ids: Sequence[str]) -> list[tuple]:  # type: ignore[type-arg]
    """The rows of ``sql`` (its ``{marks}`` an ``IN`` list) for all of ``ids``, in batches."""
    out: list[tuple] = []  # type: ignore[type-arg]
    for i in range(0, len(ids), _BATCH):
        part = list(ids[i : i + _BATCH])
        with store._lock:
            out += store._db.execute(sql.format(marks=",".join("?" * len(part))), part).fetchall()
    return out


def _infos(store: Store, where: str, params: Sequence[object], order: str = "") -> list[ArticleInfo]:
    with store._lock:
        rows = store._db.execute(
            f"SELECT {store._ARTICLE_COLS}, (SELECT count(*) FROM chunks c WHERE c.article_id=a.id) "
            f"FROM articles a WHERE {where} {order}",
            list(params),
        ).fetchall()
    return [store._info(r[:9], int(r[9])) for r in rows]


def articles_between(store: Store, since: date | None, until: date | None) -> list[ArticleInfo]:
    """Articles published from ``since`` to ``until`` (inclusive; None: open), oldest first.
    Articles without a date belong to no period, so they are left out when a bound is given."""
    clauses, params = _published_between(since, until)
    if since or until:
        clauses.append("a.published IS NOT NULL")
    return _infos(store, " AND ".join(clauses) or "1", params, "ORDER BY a.published, a.id")


def article_infos(store: Store, ids: Sequence[str]) -> dict[str, ArticleInfo]:
    """The metadata of these articles, by id (unknown ids are absent)."""
    out: dict[str, ArticleInfo] = {}
    for i in range(0, len(ids), _BATCH):
        part = list(ids[i : i + _BATCH])
        out.update((a.id, a) for a in _infos(store, f"a.id IN ({','.join('?' * len(part))})", part))
    return out


def article_texts(store: Store, ids: Sequence[str]) -> dict[str, str]:
    return {str(r[0]): str(r[1]) for r in _rows_in(store, "SELECT id, text FROM articles WHERE id IN ({marks})", ids)}


def article_vectors(store: Store, ids: Sequence[str]) -> np.ndarray:
    """One L2-normalised vector per article (row i for ``ids[i]``): the mean of its chunk vectors;
    a zero row for an article with no sound vector (it then joins a story by its names only)."""
    dim = store.manifest.dim
    out = np.zeros((len(ids), dim), dtype=np.float32)
    row_of = {aid: i for i, aid in enumerate(ids)}
    for aid, blob in _rows_in(store, "SELECT article_id, vector FROM chunks WHERE article_id IN ({marks})", ids):
        if len(blob) == dim * 4:
            vec = np.frombuffer(blob, dtype=np.float32)
            if np.isfinite(vec).all():
                out[row_of[aid]] += vec
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def copy_families(store: Store, ids: Sequence[str]) -> dict[str, list[ArticleInfo]]:
    """For each of ``ids``, the other indexed articles of its near-duplicate family (the same
    ``duplicate_of`` root, or the root itself), oldest first."""
    if not ids:
        return {}
    roots = {str(r[0]): str(r[1]) for r in _rows_in(store, "SELECT id, coalesce(duplicate_of, id) FROM articles WHERE id IN ({marks})", ids)}
    family: dict[str, list[str]] = {}
    wanted = sorted(set(roots.values()))
    for i in range(0, len(wanted), _BATCH):
        part = wanted[i : i + _BATCH]
        marks = ",".join("?" * len(part))
        with store._lock:
            rows = store._db.execute(
                f"SELECT id, coalesce(duplicate_of, id) FROM articles WHERE id IN ({marks}) OR duplicate_of IN ({marks})",
                part + part,
            ).fetchall()
        for aid, root in rows:
            family.setdefault(str(root), []).append(str(aid))
    infos = article_infos(store, sorted({a for members in family.values() for a in members}))
    out: dict[str, list[ArticleInfo]] = {}
    for aid in ids:
        members = [infos[m] for m in family.get(roots.get(aid, aid), []) if m != aid and m in infos]
        out[aid] = sorted(members, key=lambda a: (a.published or date.min, a.id))
    return out
