"""The feed list and what each sync saw, in the index's own SQLite (tables of migration 4).

A feed is an http(s) URL or an absolute path to a local feed file. Per feed: the validators the
server gave (ETag, Last-Modified) for the next conditional request, when it was last synced
and how that went. Per item: its guid, link, a fingerprint of what the feed said about it (a
new fingerprint means the item was edited), the article it became, and its last error (an
item with an error is fetched again on the next sync)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from rag.errors import FeedNotFoundError, RagError
from rag.index import migrations
from rag.index.store import DATABASE

BUSY_TIMEOUT_MS = 30_000  # an ingest's commit holds the write lock for a moment; wait for it


@dataclass(frozen=True)
class Feed:
    id: int
    url: str  # an http(s) URL, or an absolute file path
    title: str | None
    etag: str | None
    last_modified: str | None
    added_at: str
    last_sync: str | None
    last_status: str | None  # "updated", "unchanged" or "failed"
    last_error: str | None

    @property
    def is_local(self) -> bool:
        return not self.url.startswith(("http://", "https://"))


@dataclass(frozen=True)
class SeenItem:
    guid: str
    url: str | None
    fingerprint: str | None  # None while the item has an error: it is tried again
    article_id: str | None
    last_error: str | None


@dataclass(frozen=True)
class ItemState:
    """What one sync learnt about one item, to record."""

    guid: str
    url: str | None
    fingerprint: str | None
    article_id: str | None
    error: str | None = None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def normalize_feed_ref(ref: str) -> str:
    """An http(s) URL as given, or a local path made absolute. Other schemes are refused: a
    feed must not make the fetcher read ``file://`` or talk ``ftp://`` behind the user's back."""
    ref = ref.strip()
    if not ref:
        raise RagError("the feed URL or path is empty")
    scheme = urlsplit(ref).scheme.lower()
    if scheme in ("http", "https"):
        parts = urlsplit(ref)
        if not parts.hostname:
            raise RagError(f"{ref!r} has no host name")
        return ref
    if scheme and len(scheme) > 1:  # "c:" is a drive, not a scheme
        raise RagError(f"{ref!r}: only http(s) URLs and local file paths can be feeds (not {scheme}://)")
    path = Path(ref).expanduser().resolve()
    if not path.is_file():
        raise RagError(f"{path} is not a file: a local feed is the path of an RSS or Atom file")
    return str(path)


class FeedState:
    """The feeds tables of one index (its own connection, so it never touches the Store's)."""

    def __init__(self, directory: Path, read_only: bool = False) -> None:
        self.read_only = read_only
        self._db = migrations.connect(directory / DATABASE, read_only)
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA foreign_keys = ON")
        if "feeds" not in migrations.tables(self._db):
            self._db.close()
            raise RagError(f"index {directory} has no feed tables: open it once with this version of rag (any `rag info`)")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FeedState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise RagError("the index is read-only: its feeds cannot be changed")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------ the feed list

    _COLS = "id, url, title, etag, last_modified, added_at, last_sync, last_status, last_error"

    def add(self, ref: str) -> tuple[Feed, bool]:
        """Subscribe to ``ref`` (see :func:`normalize_feed_ref`); returns the feed and whether it is new."""
        url = normalize_feed_ref(ref)
        existing = self.find(url)
        if existing:
            return existing, False
        with self._transaction() as db:
            db.execute("INSERT INTO feeds(url, added_at) VALUES (?, ?)", (url, now()))
        feed = self.find(url)
        assert feed is not None
        return feed, True

    def feeds(self) -> list[Feed]:
        rows = self._db.execute(f"SELECT {self._COLS} FROM feeds ORDER BY id").fetchall()
        return [Feed(*row) for row in rows]

    def find(self, ref: str) -> Feed | None:
        """A feed by its number (as `rag feeds list` shows it), URL or path."""
        ref = ref.strip()
        if ref.isdigit():
            row = self._db.execute(f"SELECT {self._COLS} FROM feeds WHERE id=?", (int(ref),)).fetchone()
        else:
            local = str(Path(ref).expanduser().resolve()) if not urlsplit(ref).scheme else ref
            row = self._db.execute(f"SELECT {self._COLS} FROM feeds WHERE url=? OR url=?", (ref, local)).fetchone()
        return Feed(*row) if row else None

    def remove(self, ref: str) -> tuple[Feed, list[str]]:
        """Unsubscribe; returns the feed and the ids of the articles it brought in (kept in the index)."""
        feed = self.find(ref)
        if feed is None:
            raise FeedNotFoundError(f"no feed matches {ref!r} (see `rag feeds list`)")
        articles = self.article_ids(feed.id)
        with self._transaction() as db:
            db.execute("DELETE FROM feeds WHERE id=?", (feed.id,))  # its items go with it (cascade)
        return feed, articles

    # ------------------------------------------------------------ per item

    def items(self, feed_id: int) -> dict[str, SeenItem]:
        rows = self._db.execute(
            "SELECT guid, url, fingerprint, article_id, last_error FROM feed_items WHERE feed_id=?", (feed_id,)
        ).fetchall()
        return {r[0]: SeenItem(*r) for r in rows}

    def article_ids(self, feed_id: int) -> list[str]:
        rows = self._db.execute(
            "SELECT DISTINCT article_id FROM feed_items WHERE feed_id=? AND article_id IS NOT NULL", (feed_id,)
        ).fetchall()
        return [r[0] for r in rows]

    def record_sync(
        self, feed: Feed, status: str, error: str | None = None, *, title: str | None = None,
        etag: str | None = None, last_modified: str | None = None, items: Iterable[ItemState] = (),
    ) -> None:
        """What one sync of ``feed`` did, in one transaction. Called only after its articles are
        committed, so a crash before it leaves the feed as it was: the next sync redoes the work
        and the ingest skips what is already indexed. New validators replace the old ones only
        when given (a failed fetch keeps them)."""
        stamp = now()
        with self._transaction() as db:
            db.execute(
                "UPDATE feeds SET last_sync=?, last_status=?, last_error=?, title=coalesce(?, title), "
                "etag=CASE WHEN ? THEN ? ELSE etag END, last_modified=CASE WHEN ? THEN ? ELSE last_modified END "
                "WHERE id=?",
                (stamp, status, error, title, status != "failed", etag, status != "failed", last_modified, feed.id),
            )
            db.executemany(
                "INSERT INTO feed_items(feed_id, guid, url, fingerprint, article_id, seen_at, last_error) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT(feed_id, guid) DO UPDATE SET url=excluded.url, "
                "fingerprint=excluded.fingerprint, article_id=coalesce(excluded.article_id, article_id), "
                "seen_at=excluded.seen_at, last_error=excluded.last_error",
                [(feed.id, i.guid, i.url, i.fingerprint, i.article_id, stamp, i.error) for i in items],
            )

    def forget_validators(self, feed: Feed) -> None:
        """Drop the stored ETag / Last-Modified, so the next sync fetches the feed in full."""
        with self._transaction() as db:
            db.execute("UPDATE feeds SET etag=NULL, last_modified=NULL WHERE id=?", (feed.id,))
