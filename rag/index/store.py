"""The index on disk: SQLite (articles, chunks, vectors, FTS5) + a FAISS file + a manifest.

SQLite is the source of truth and every change is one SQLite transaction, so a crash leaves
either the old or the new state. The FAISS file is a derived copy named after the SQLite
``generation`` it was written at (``vectors.<gen>.faiss``, written beside and renamed into
place), rewritten on a geometric schedule rather than at every commit; on open it is caught up
from SQLite, or rebuilt from it when missing or damaged (rag.index.faiss_copy).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from rag.documents.articles import Article
from rag.documents.chunking import Chunk, ChunkerSettings
from rag.errors import IndexCorruptError, IndexMismatchError, RagError
from rag.index import migrations
from rag.index.faiss_copy import FaissCopy
from rag.index.files import DatabaseGuard, atomic_write, is_corruption, write_error
from rag.index.locks import index_lock
from rag.index.search import Search
from rag.results import ArticleInfo

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # of the manifest; 1 is read and migrated (rag.index.migrations has the database's own numbers)
MANIFEST = "manifest.json"
DATABASE = "store.sqlite"


def missing_database_message(directory: Path, what: str) -> str:
    """A database gone from beside its manifest: never opened as a new, empty index."""
    return (
        f"{directory / DATABASE} {what}, but {MANIFEST} says an index was built here: the articles are not "
        "readable. Restore the directory from a backup, or rebuild it: move the directory aside and "
        f"`rag --index {directory} ingest` your articles into a new one (`rag check` tells more)."
    )


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    embedder: str
    dim: int
    chunk_tokens: int
    chunk_overlap_tokens: int
    created_at: str

    @property
    def chunker(self) -> ChunkerSettings:
        return ChunkerSettings(self.chunk_tokens, self.chunk_overlap_tokens)


@dataclass(frozen=True)
class ArticleUpdate:
    """One article to write, with its chunks and their vectors (row i belongs to chunk i)."""

    article: Article
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    minhash: np.ndarray | None = None
    duplicate_of: str | None = None




def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store(FaissCopy, Search):
    """Open with :meth:`Store.open`. Thread-safe; writers in several processes are serialised by a lock file."""

    def __init__(self, directory: Path, manifest: Manifest, db: sqlite3.Connection, read_only: bool = False) -> None:
        self.directory = directory
        self.manifest = manifest
        self.read_only = read_only  # a read-only mount or directory: search works, writes are refused
        self._db = db
        self._lock = DatabaseGuard(directory / DATABASE)  # a RLock that also reports SQLite corruption clearly
        self._index: faiss.Index | None = None  # kind chosen by size, see rag.index.vectors
        self._generation = -1
        self._load_vectors()

    # ------------------------------------------------------------ opening

    @classmethod
    def open(cls, directory: Path, embedder: str, dim: int, chunker: ChunkerSettings) -> Store:
        read_only = cls._prepare(directory)
        manifest_path, database = directory / MANIFEST, directory / DATABASE
        if manifest_path.exists():
            manifest = cls._read_manifest(manifest_path)
            if not 1 <= manifest.schema_version <= SCHEMA_VERSION:
                raise IndexMismatchError(
                    f"index {directory} has schema version {manifest.schema_version}; this version of rag "
                    f"reads versions 1 to {SCHEMA_VERSION}. Rebuild it into a new directory with `rag ingest`."
                )
            if manifest.embedder != embedder or manifest.dim != dim:
                raise IndexMismatchError(
                    f"index {directory} was built with embedder '{manifest.embedder}' (dim {manifest.dim}), "
                    f"but '{embedder}' (dim {dim}) was asked for. Use RAG_EMBEDDER='{manifest.embedder}', "
                    "or choose another index directory (RAG_INDEX_DIR / --index) for the new embedder."
                )
            if not database.exists():
                raise IndexCorruptError(missing_database_message(directory, "is missing"))
        else:
            manifest = Manifest(SCHEMA_VERSION, embedder, dim, chunker.max_tokens, chunker.overlap_tokens, _now())
            cls._create(directory, manifest, read_only)
        try:
            db = migrations.connect(database, read_only)
            if "articles" not in migrations.tables(db):
                db.close()
                raise IndexCorruptError(missing_database_message(directory, "is empty (it holds no index tables)"))
            cls._upgrade(db, directory, manifest, read_only)
        except sqlite3.DatabaseError as e:
            if not is_corruption(e):
                raise write_error(database, e) or RagError(f"cannot open {database}: {e}") from None
            raise IndexCorruptError(
                f"{database} is not a readable index database ({e}). "
                "Restore it from a backup or rebuild the index into an empty directory."
            ) from None
        if manifest.schema_version != SCHEMA_VERSION:
            manifest = Manifest(**{**asdict(manifest), "schema_version": SCHEMA_VERSION})
            atomic_write(manifest_path, json.dumps(asdict(manifest), indent=2).encode())
        return cls(directory, manifest, db, read_only)

    @staticmethod
    def _prepare(directory: Path) -> bool:
        """Make the directory if needed; True when it can only be read."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            where = "it is on a read-only file system" if e.errno == 30 else (e.strerror or str(e))
            raise RagError(f"cannot create the index directory {directory}: {where}") from None
        return not migrations.writable(directory)

    @staticmethod
    def _create(directory: Path, manifest: Manifest, read_only: bool) -> None:
        """A new index: the database first, complete, then the manifest (so a manifest always
        has a database beside it, and a kill before the manifest leaves a directory that opens as new)."""
        database = directory / DATABASE
        if database.exists():
            probe = migrations.connect(database, read_only=True)
            try:
                ours = "articles" in migrations.tables(probe)
                holds = ours and probe.execute("SELECT 1 FROM articles LIMIT 1").fetchone() is not None
            except sqlite3.DatabaseError:
                ours = holds = True  # unreadable: not ours to replace
            finally:
                probe.close()
            if holds:
                raise IndexCorruptError(
                    f"{directory / MANIFEST} is missing, but {database} holds articles: restore the manifest from a "
                    "backup, or move the directory aside and `rag ingest` your articles into a new one"
                )
            if not ours and not read_only:  # tables never made: what an older version left when killed creating it
                for leftover in directory.glob(f"{DATABASE}*"):
                    leftover.unlink()
        if read_only:
            raise RagError(f"{directory} is read-only: a new index cannot be created there (choose another --index)")
        if not database.exists():
            migrations.create(database)
        atomic_write(directory / MANIFEST, json.dumps(asdict(manifest), indent=2).encode())

    @staticmethod
    def _upgrade(db: sqlite3.Connection, directory: Path, manifest: Manifest, read_only: bool) -> None:
        if read_only:
            if migrations.db_version(db) < migrations.DB_VERSION:
                raise RagError(
                    f"index {directory} was made by an older rag and needs a schema upgrade, but it is read-only: "
                    "open it once where it is writable (any `rag info`)"
                )
            db.execute("PRAGMA foreign_keys=ON")
            return
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=FULL")
        if done := migrations.migrate(db):
            log.info("migrated %s to schema %s", directory, done[-1])
        db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")

    @staticmethod
    def _read_manifest(path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text())
            return Manifest(**data)
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
            raise IndexCorruptError(f"{path} is not a valid index manifest ({e})") from None

    def close(self) -> None:
        with self._lock:
            self.save()  # the FAISS file, if commits changed it since it was written
            self._db.close()

    # ------------------------------------------------------------ FAISS copy


    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        if self.read_only:
            raise RagError(f"index {self.directory} is read-only: it can be searched, not changed")
        # The index's one writer lock first, then this object's: a commit of another thread waits
        # for an ingest of this process without holding what that ingest's commits need.
        with index_lock(self.directory, "writer"), self._lock:
            yield

    def commit(self, updates: Sequence[ArticleUpdate] = (), remove: Sequence[str] = ()) -> None:
        """Write new/changed articles and remove others, all in one transaction."""
        if not updates and not remove:
            return
        with self._write_lock():
            self.refresh()
            assert self._index is not None
            db = self._db
            replaced_ids = [u.article.id for u in updates] + list(remove)
            new_ids: list[int] = []
            new_vecs: list[np.ndarray] = []
            db.execute("BEGIN IMMEDIATE")
            try:
                old_chunk_ids = self._chunk_ids_of(replaced_ids)
                if old_chunk_ids:
                    db.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in old_chunk_ids])
                db.executemany("DELETE FROM articles WHERE id=?", [(a,) for a in replaced_ids])
                for u in updates:
                    a = u.article
                    row = (a.id, a.content_hash, a.title, a.text, a.source, a.url, a.author,
                           a.published.isoformat() if a.published else None, a.origin, _now(),
                           u.minhash.tobytes() if u.minhash is not None else None, u.duplicate_of)
                    db.execute(
                        f"INSERT INTO articles({', '.join(migrations.ARTICLE_COLUMNS)}, checksum) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (*row, migrations.row_checksum(row)),
                    )
                    migrations.write_bands(db, a.id, u.minhash)  # the old ones went with the old row
                    vecs = np.ascontiguousarray(u.vectors, dtype=np.float32)
                    for chunk, vec in zip(u.chunks, vecs, strict=True):
                        data = vec.tobytes()
                        cur = db.execute(
                            "INSERT INTO chunks(article_id, ordinal, start, end, text, vector, vector_checksum)"
                            " VALUES (?,?,?,?,?,?,?)",
                            (a.id, chunk.ordinal, chunk.start, chunk.end, chunk.text, data, migrations.vector_checksum(data)),
                        )
                        chunk_id = int(cur.lastrowid or 0)
                        db.execute("INSERT INTO chunks_fts(rowid, title, text) VALUES (?,?,?)", (chunk_id, a.title, chunk.text))
                        new_ids.append(chunk_id)
                    new_vecs.append(vecs)
                generation = self._generation + 1
                db.execute("UPDATE meta SET value=? WHERE key='generation'", (str(generation),))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself on a full disk
                    db.execute("ROLLBACK")
                raise
            # The database is committed; now the in-memory index (and the file, when due: rag.index.faiss_copy).
            self._apply_commit(old_chunk_ids, new_ids, new_vecs, generation)

    def _chunk_ids_of(self, article_ids: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for a in article_ids:
            ids.extend(r[0] for r in self._db.execute("SELECT id FROM chunks WHERE article_id=?", (a,)))
        return ids

    # ------------------------------------------------------------ reading

    def article_by_hash(self, content_hash: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM articles WHERE content_hash=?", (content_hash,)).fetchone()
        return row[0] if row else None

    def article_hash(self, article_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT content_hash FROM articles WHERE id=?", (article_id,)).fetchone()
        return row[0] if row else None

    _ARTICLE_COLS = "a.id, a.title, a.source, a.url, a.author, a.published, a.origin, a.added_at, a.duplicate_of"

    @staticmethod
    def _info(row: Sequence[object], chunk_count: int) -> ArticleInfo:
        published = date.fromisoformat(str(row[5])) if row[5] else None
        return ArticleInfo(
            id=str(row[0]), title=str(row[1]), source=row[2], url=row[3], author=row[4],  # type: ignore[arg-type]
            published=published, origin=str(row[6]), chunk_count=chunk_count, added_at=str(row[7]),
            duplicate_of=row[8],  # type: ignore[arg-type]
        )

    def articles(self) -> list[ArticleInfo]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {self._ARTICLE_COLS}, (SELECT count(*) FROM chunks c WHERE c.article_id=a.id) "
                "FROM articles a ORDER BY a.published DESC, a.title"
            ).fetchall()
        return [self._info(r[:9], int(r[9])) for r in rows]

    def band_matches(self, keys: Sequence[tuple[int, int]]) -> list[tuple[str, np.ndarray]]:
        """(article id, MinHash signature) of the indexed articles with any of these
        (band, key) rows in ``minhash_bands`` (rag.index.near_duplicates)."""
        if not keys:
            return []
        # OR of equalities, not `(band, key) IN (VALUES ...)`: SQLite 3.40 scans the whole index for that.
        where = " OR ".join(["(b.band=? AND b.key=?)"] * len(keys))
        with self._lock:
            rows = self._db.execute(
                f"SELECT DISTINCT a.id, a.minhash FROM minhash_bands b JOIN articles a ON a.id = b.article_id WHERE {where}",
                [v for pair in keys for v in pair],
            ).fetchall()
        return [(r[0], sig) for r in rows if (sig := migrations.signature_of(r[1])) is not None]

    def duplicate_root(self, article_id: str) -> str:
        with self._lock:
            row = self._db.execute("SELECT duplicate_of FROM articles WHERE id=?", (article_id,)).fetchone()
        return row[0] if row and row[0] else article_id

    def article_text(self, article_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT text FROM articles WHERE id=?", (article_id,)).fetchone()
        return row[0] if row else None

    def find_articles(self, ref: str) -> list[str]:
        """Article ids matching an id, an id prefix, a URL or an origin path."""
        with self._lock:
            rows = self._db.execute(
                # An id prefix is compared as text: LIKE would read "_" and "%" in it as wildcards.
                "SELECT id FROM articles WHERE id=? OR url=? OR origin=? OR origin=? "
                "OR (length(?)>=6 AND substr(id, 1, length(?))=?)",
                (ref, ref, ref, str(Path(ref).expanduser()), ref, ref, ref),
            ).fetchall()
        return [r[0] for r in rows]

    def origins_in_use(self, origins: list[str]) -> set[str]:
        """Those of ``origins`` that some indexed article comes from, asked of SQLite (a scan in C
        per origin) instead of building every article's record in Python."""
        with self._lock:
            return {o for o in dict.fromkeys(origins)
                    if self._db.execute("SELECT 1 FROM articles WHERE origin=? LIMIT 1", (o,)).fetchone()}

    def counts(self) -> tuple[int, int]:
        with self._lock:
            articles = self._db.execute("SELECT count(*) FROM articles").fetchone()[0]
            chunks = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(articles), int(chunks)
