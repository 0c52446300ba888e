"""Searching the index: the exact or approximate vector search, BM25 over FTS5, date ranges,
and hits with their articles. A part of :class:`rag.index.store.Store`."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import date

import faiss
import numpy as np

from rag.index import vectors as vector_index
from rag.index.files import DatabaseGuard
from rag.results import Hit

log = logging.getLogger(__name__)


def _published_between(since: date | None, until: date | None) -> tuple[list[str], list[str]]:
    """SQL conditions (on articles aliased ``a``) and their parameters for a date range."""
    clauses, params = [], []
    if since:
        clauses.append("a.published >= ?")
        params.append(since.isoformat())
    if until:
        clauses.append("a.published <= ?")
        params.append(until.isoformat())
    return clauses, params


class Search:
    """Store's read paths for retrieval; it uses the Store's database, lock and FAISS copy."""

    _db: sqlite3.Connection
    _lock: DatabaseGuard
    _index: faiss.Index | None

    def hits(self, scored: Sequence[tuple[int, float]]) -> list[Hit]:
        """Hits for (chunk id, score) pairs, in the given order."""
        if not scored:
            return []
        with self._lock:
            ids = [cid for cid, _ in scored]
            marks = ",".join("?" * len(ids))
            rows = self._db.execute(
                f"SELECT c.id, c.ordinal, c.start, c.end, c.text, {self._ARTICLE_COLS}, "
                "(SELECT count(*) FROM chunks c2 WHERE c2.article_id=a.id) "
                f"FROM chunks c JOIN articles a ON a.id=c.article_id WHERE c.id IN ({marks})",
                ids,
            ).fetchall()
        by_id = {r[0]: r for r in rows}
        out = []
        for cid, score in scored:
            r = by_id.get(cid)
            if r is None:
                continue
            out.append(Hit(int(r[0]), self._info(r[5:14], int(r[14])), int(r[1]), int(r[2]), int(r[3]), str(r[4]), float(score)))
        return out

    def chunk_ids_in_range(self, since: date | None, until: date | None) -> np.ndarray:
        clauses, params = _published_between(since, until)
        where = " AND ".join(clauses) or "1"
        with self._lock:
            rows = self._db.execute(
                f"SELECT c.id FROM chunks c JOIN articles a ON a.id=c.article_id WHERE {where}", params
            ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def lexical_search(
        self, terms: Sequence[str], k: int, since: date | None = None, until: date | None = None,
        title_weight: float = 0.5,
    ) -> list[tuple[int, float]]:
        """BM25 over titles and passages (SQLite FTS5); any of ``terms`` may match; the headline
        column counts ``title_weight`` times a passage word."""
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        dates, params = _published_between(since, until)
        clauses, params = ["chunks_fts MATCH ?", *dates], [match, *params]
        sql = (
            f"SELECT chunks_fts.rowid, bm25(chunks_fts, {float(title_weight)!r}, 1.0) AS rank FROM chunks_fts "
            "JOIN chunks c ON c.id = chunks_fts.rowid JOIN articles a ON a.id = c.article_id "
            f"WHERE {' AND '.join(clauses)} ORDER BY rank LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (*params, k)).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]  # bm25() is lower-is-better

    def dense_search(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        with self._lock:
            assert self._index is not None
            if self._index.ntotal == 0 or (allowed is not None and len(allowed) == 0):
                return []
            scores, ids = vector_index.search(self._index, vector, k, allowed)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
