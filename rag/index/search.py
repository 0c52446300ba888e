"""Searching the index: the exact or approximate vector search, BM25 over FTS5, date ranges and
article filters, hits with their articles, and the Library's search of titles and bodies. A part
of :class:`rag.index.store.Store`."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Sequence
from datetime import date

import faiss
import numpy as np

from rag.documents.articles import Article
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


def _limits(since: date | None, until: date | None, article_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """:func:`_published_between`, and only the articles ``article_ids`` when any are given."""
    clauses, params = _published_between(since, until)
    if article_ids:
        clauses.append(f"a.id IN ({','.join('?' * len(article_ids))})")
        params.extend(article_ids)
    return clauses, params


def word_queries(text: str) -> list[str]:
    """One FTS5 query per word of ``text``, the last word also as a prefix (the user may still
    be typing it). Every word is quoted, so FTS5's operators and column filters in what a user
    typed are read as plain words."""
    quoted = ['"' + w.replace('"', '""') + '"' for w in re.findall(r"\w+", text)]
    return [*quoted[:-1], f"{quoted[-1]} OR {quoted[-1]}*"] if quoted else []


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

    def chunk_ids_in_range(self, since: date | None, until: date | None, article_ids: Sequence[str] = ()) -> np.ndarray:
        """The chunks of articles published in the range (and among ``article_ids``, if any)."""
        clauses, params = _limits(since, until, article_ids)
        where = " AND ".join(clauses) or "1"
        with self._lock:
            rows = self._db.execute(
                f"SELECT c.id FROM chunks c JOIN articles a ON a.id=c.article_id WHERE {where}", params
            ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def lexical_search(
        self, terms: Sequence[str], k: int, since: date | None = None, until: date | None = None,
        title_weight: float = 0.5, article_ids: Sequence[str] = (),
    ) -> list[tuple[int, float]]:
        """BM25 over titles and passages (SQLite FTS5); any of ``terms`` may match; the headline
        column counts ``title_weight`` times a passage word. ``article_ids``: only these articles."""
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        dates, params = _limits(since, until, article_ids)
        clauses, params = ["chunks_fts MATCH ?", *dates], [match, *params]
        sql = (
            f"SELECT chunks_fts.rowid, bm25(chunks_fts, {float(title_weight)!r}, 1.0) AS rank FROM chunks_fts "
            "JOIN chunks c ON c.id = chunks_fts.rowid JOIN articles a ON a.id = c.article_id "
            f"WHERE {' AND '.join(clauses)} ORDER BY rank LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (*params, k)).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]  # bm25() is lower-is-better

    def articles_with_words(self, text: str) -> set[str]:
        """Ids of the articles whose headline or text has every word of ``text``, in any of its
        passages (FTS5, so case and accents do not matter: "pyongyang" finds "Pyongyang")."""
        found: set[str] | None = None
        with self._lock:
            for query in word_queries(text):
                rows = self._db.execute(
                    "SELECT DISTINCT c.article_id FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
                    "WHERE chunks_fts MATCH ?", (query,),
                ).fetchall()
                found = {r[0] for r in rows} if found is None else found & {r[0] for r in rows}
                if not found:
                    break
        return found or set()

    def article_record(self, article_id: str) -> Article | None:
        """The indexed article as a record :meth:`rag.RAG.restore` takes back: text, title,
        source, URL, author, date and origin as stored, and its id."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, title, text, source, url, author, published, origin FROM articles WHERE id=?", (article_id,)
            ).fetchone()
        if row is None:
            return None
        published = date.fromisoformat(row[6]) if row[6] else None
        return Article(title=row[1], text=row[2], key=f"indexed:{row[0]}", source=row[3], url=row[4], author=row[5],
                       published=published, origin=row[7] or "", indexed_id=row[0])

    def dense_search(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        with self._lock:
            assert self._index is not None
            if self._index.ntotal == 0 or (allowed is not None and len(allowed) == 0):
                return []
            scores, ids = vector_index.search(self._index, vector, k, allowed)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
