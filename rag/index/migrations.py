"""The SQLite side of an index: its tables, numbered migrations, checksums, and how it is opened.

``PRAGMA user_version`` holds the database's schema number, and every migration that ran is
recorded in ``meta`` as ``migration:<n>`` (with the time it ran):

0. the original tables;
1. MinHash signatures and near-duplicate links on articles;
2. a checksum of every article row and of every stored vector (computed for existing rows);
3. the near-duplicate LSH bands of every article's signature (``minhash_bands``, computed for
   existing rows), so finding copies reads candidates from SQLite instead of holding every
   signature in memory (rag.index.near_duplicates);
4. the subscribed feeds and what each sync saw (``feeds``, ``feed_items``: rag.feeds.state).

Why checksums: SQLite's own checks see a valid page with a flipped bit in a float or a name
as healthy data. A flipped exponent bit made one vector score 2.6e35 and rank first for every
question; a flip in ``source`` silently changed an article's attribution.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import numpy as np

from rag.documents.dedup import NUM_PERM
from rag.errors import IndexMismatchError, RagError
from rag.index.files import replace_durably
from rag.index.near_duplicates import band_keys

DB_VERSION = 4
_BASE = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT, url TEXT, author TEXT,
    published TEXT,
    origin TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_hash ON articles(content_hash);
CREATE INDEX IF NOT EXISTS articles_published ON articles(published);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(title, text, tokenize='unicode61 remove_diacritics 2');
"""

# Derived from articles.minhash (rebuilt from it by `rag check --repair`); deleted with the article.
# Keyed by article for the cascade and for checking; looked up by (band, key) when finding copies.
BANDS_TABLE = (
    """CREATE TABLE IF NOT EXISTS minhash_bands (
        article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
        band INTEGER NOT NULL,
        key INTEGER NOT NULL,
        PRIMARY KEY (article_id, band)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS minhash_bands_key ON minhash_bands(band, key)",
)

# The article columns a checksum covers, in order (the checksum column itself excluded).
ARTICLE_COLUMNS = ("id", "content_hash", "title", "text", "source", "url", "author", "published", "origin",
                   "added_at", "minhash", "duplicate_of")
_NULL = b"\xff" * 8  # no length prefix starts like this


def row_checksum(values: Sequence[str | bytes | None]) -> str:
    """Checksum of one article row, from its values as written (str) or as read back raw (bytes)."""
    h = hashlib.blake2b(digest_size=16)
    for value in values:
        if value is None:
            h.update(_NULL)
            continue
        data = value.encode("utf-8") if isinstance(value, str) else value
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def vector_checksum(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def bad_vectors(vectors: np.ndarray) -> np.ndarray:
    """Rows that cannot be a stored embedding: not finite, or neither unit length nor zero
    (every embedder here normalises; a text with no words embeds to zeros)."""
    finite = np.isfinite(vectors).all(axis=1)
    norms = np.linalg.norm(np.where(finite[:, None], vectors, 0).astype(np.float64), axis=1)
    return ~(finite & ((np.abs(norms - 1.0) < 1e-3) | (norms == 0)))


def lenient_text(data: bytes) -> str:
    """How TEXT is read back: bytes a damaged page turned into invalid UTF-8 show as U+FFFD
    instead of an exception in the middle of a search (`rag check` names the row)."""
    return data.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- migrations


def _add_duplicate_columns(db: sqlite3.Connection) -> None:
    columns = {row[1] for row in db.execute("PRAGMA table_info(articles)")}
    for name, kind in (("minhash", "BLOB"), ("duplicate_of", "TEXT")):
        if name not in columns:
            db.execute(f"ALTER TABLE articles ADD COLUMN {name} {kind}")


def _add_checksums(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE articles ADD COLUMN checksum TEXT")
    db.execute("ALTER TABLE chunks ADD COLUMN vector_checksum TEXT")
    factory = db.text_factory
    db.text_factory = bytes  # checksum the bytes on disk, whatever they are
    try:
        cols = ", ".join(ARTICLE_COLUMNS)
        rows = db.execute(f"SELECT rowid, {cols} FROM articles").fetchall()
        db.executemany("UPDATE articles SET checksum=? WHERE rowid=?", [(row_checksum(r[1:]), r[0]) for r in rows])
        cur = db.execute("SELECT id, vector FROM chunks")
        while batch := cur.fetchmany(4096):
            db.executemany("UPDATE chunks SET vector_checksum=? WHERE id=?", [(vector_checksum(v), i) for i, v in batch])
    finally:
        db.text_factory = factory


def write_bands(db: sqlite3.Connection, article_id: str, minhash: np.ndarray | None) -> None:
    """The band rows of one article (none without a signature); the caller deletes old ones."""
    if minhash is not None and minhash.shape == (NUM_PERM,):
        db.executemany("INSERT INTO minhash_bands(article_id, band, key) VALUES (?,?,?)",
                       [(article_id, band, key) for band, key in band_keys(minhash)])


def signature_of(data: bytes | None) -> np.ndarray | None:
    """A stored ``minhash`` as a signature, or None when there is none (or it has the wrong size)."""
    if data is None or len(data) != NUM_PERM * 8:
        return None
    return np.frombuffer(data, dtype=np.uint64)


def fill_bands(db: sqlite3.Connection) -> None:
    """(Re)write every article's bands from its stored signature, inside the caller's transaction."""
    for statement in BANDS_TABLE:  # `rag check --repair` also re-creates a dropped table
        db.execute(statement)
    db.execute("DELETE FROM minhash_bands")
    cur = db.execute("SELECT id, minhash FROM articles WHERE minhash IS NOT NULL")
    while batch := cur.fetchmany(2048):
        for article_id, data in batch:
            write_bands(db, article_id, signature_of(data))


# The feed list and its sync state live beside the articles, so a copied index keeps its feeds.
# feed_items.article_id is deliberately no foreign key: an update replaces the article row (delete,
# insert), which a cascade would turn into "never seen". Its last_error keeps an item retried.
FEED_TABLES = (
    """CREATE TABLE IF NOT EXISTS feeds (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        url TEXT NOT NULL UNIQUE,
        title TEXT,
        etag TEXT,
        last_modified TEXT,
        added_at TEXT NOT NULL,
        last_sync TEXT,
        last_status TEXT,
        last_error TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS feed_items (
        feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        guid TEXT NOT NULL,
        url TEXT,
        fingerprint TEXT,
        article_id TEXT,
        seen_at TEXT NOT NULL,
        last_error TEXT,
        PRIMARY KEY (feed_id, guid)
    ) WITHOUT ROWID""",
)


def _add_feed_tables(db: sqlite3.Connection) -> None:
    for statement in FEED_TABLES:
        db.execute(statement)


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _add_duplicate_columns, 2: _add_checksums, 3: fill_bands, 4: _add_feed_tables,
}


def db_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection) -> list[int]:
    """Run the migrations the database lacks, each in its own transaction; returns their numbers."""
    version = db_version(db)
    if version > DB_VERSION:
        raise IndexMismatchError(
            f"the index database has schema {version}; this version of rag reads up to {DB_VERSION}. Upgrade rag."
        )
    done = []
    for number, step in MIGRATIONS.items():
        if number <= version:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"migration:{number}", stamp))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        done.append(number)
    return done


# ---------------------------------------------------------------- creating and opening


def create(path: Path) -> None:
    """Build an empty index database beside ``path`` and rename it into place: a kill at any
    moment leaves either no database (only a temp file, tidied later) or a complete one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")  # a temp file has nothing to roll back to: no journal file either
        db.executescript(_BASE)
        migrate(db)
        db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
    finally:
        db.close()
    replace_durably(tmp, path)


def writable(directory: Path) -> bool:
    """False on a read-only mount or without write permission (``access`` reports both, even for root)."""
    return os.access(directory, os.W_OK)


def connect(path: Path, read_only: bool) -> sqlite3.Connection:
    """Open an existing index database (never creating one). Read-only, it is opened
    ``immutable`` (no lock or WAL files to create) unless a write-ahead log still holds data."""
    uri = "file:" + quote(os.fsencode(path))
    wal = path.with_name(path.name + "-wal")
    if not read_only:
        db = sqlite3.connect(uri + "?mode=rw", uri=True, check_same_thread=False, isolation_level=None)
    elif wal.exists() and wal.stat().st_size:
        try:
            db = sqlite3.connect(uri + "?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as e:
            raise RagError(
                f"{path} is read-only and its write-ahead log ({wal.name}) still holds changes ({e}); open the "
                "index once where it is writable (any `rag info`), so the log is folded into the database"
            ) from None
    else:
        db = sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, check_same_thread=False, isolation_level=None)
    db.text_factory = lenient_text
    return db


def tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
