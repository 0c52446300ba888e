"""Which loaded articles need writing: exact duplicates (the same content hash, in the index or
earlier in this run) and repeated ids are skipped; an id indexed with other content is a change.

What this run has planned is kept in a private temporary SQLite database (it spills to disk),
not in Python sets: on a 100,000-article archive the sets alone held ~35 MB of the driver."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rag.documents.articles import Article
from rag.index.store import Store

_LOOKUP = 500  # values per `IN (...)` query, well under SQLite's variable limit


@dataclass
class Planned:
    """Articles that need writing, split by what they are to the index."""

    new: list[Article] = field(default_factory=list)
    changed: list[Article] = field(default_factory=list)
    duplicates: list[Article] = field(default_factory=list)


class SeenInRun:
    """The content hashes and ids of the articles planned so far in one run."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a private temporary database, on disk beyond its page cache
        self._db.executescript(
            "CREATE TABLE hashes(value TEXT PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TABLE ids(value TEXT PRIMARY KEY) WITHOUT ROWID;"
        )

    def known(self, table: str, values: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(values), _LOOKUP):
            part = values[start : start + _LOOKUP]
            rows = self._db.execute(f"SELECT value FROM {table} WHERE value IN ({','.join('?' * len(part))})", part)
            found.update(r[0] for r in rows)
        return found

    def add(self, hashes: Iterable[str], ids: Iterable[str]) -> None:
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO hashes VALUES (?)", ((h,) for h in hashes))
            self._db.executemany("INSERT OR IGNORE INTO ids VALUES (?)", ((i,) for i in ids))

    def close(self) -> None:
        self._db.close()


def plan(articles: Sequence[Article], store: Store, seen: SeenInRun) -> Planned:
    """Split one window of ``articles`` (in order) against the index and what ``seen`` holds,
    then remember the window's planned articles in ``seen``."""
    out = Planned()
    old_hashes = seen.known("hashes", [a.content_hash for a in articles])
    old_ids = seen.known("ids", [a.id for a in articles])
    hashes: set[str] = set()  # this window's, in order
    ids: set[str] = set()
    for a in articles:
        h = a.content_hash
        if h in hashes or h in old_hashes or a.id in ids or a.id in old_ids or store.article_by_hash(h):
            out.duplicates.append(a)
            continue
        hashes.add(h)
        ids.add(a.id)
        (out.changed if store.article_hash(a.id) else out.new).append(a)
    seen.add(hashes, ids)
    return out
