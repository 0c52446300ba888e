"""The index on disk: SQLite (articles, chunks, vectors, FTS5) + a FAISS file + a manifest.

SQLite is the source of truth and every change is one SQLite transaction, so a crash leaves
either the old or the new state. The FAISS file is a derived copy named after the SQLite
``generation`` it matches (``vectors.<gen>.faiss``, written beside and renamed into place);
when it is missing or stale after a crash, it is rebuilt from the vectors stored in SQLite.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from .articles import Article
from .chunking import Chunk, ChunkerSettings
from .errors import IndexCorruptError, IndexMismatchError, RagError
from .integrity import (
    DatabaseGuard,
    digest_problem,
    is_corruption,
    remove_older_copies,
    write_digest,
    write_error,
)
from .locking import WRITE_LOCK, file_lock
from .results import ArticleInfo, Hit
from . import schema, vector_index

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # of the manifest; 1 is read and migrated (rag.schema has the database's own numbers)
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


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """Open with :meth:`Store.open`. Thread-safe; writers in several processes are serialised by a lock file."""

    def __init__(self, directory: Path, manifest: Manifest, db: sqlite3.Connection, read_only: bool = False) -> None:
        self.directory = directory
        self.manifest = manifest
        self.read_only = read_only  # a read-only mount or directory: search works, writes are refused
        self._db = db
        self._lock = DatabaseGuard(directory / DATABASE)  # a RLock that also reports SQLite corruption clearly
        self._index: faiss.Index | None = None  # kind chosen by size, see rag.vector_index
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
            db = schema.connect(database, read_only)
            if "articles" not in schema.tables(db):
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
            _atomic_write(manifest_path, json.dumps(asdict(manifest), indent=2).encode())
        return cls(directory, manifest, db, read_only)

    @staticmethod
    def _prepare(directory: Path) -> bool:
        """Make the directory if needed; True when it can only be read."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            where = "it is on a read-only file system" if e.errno == 30 else (e.strerror or str(e))
            raise RagError(f"cannot create the index directory {directory}: {where}") from None
        return not schema.writable(directory)

    @staticmethod
    def _create(directory: Path, manifest: Manifest, read_only: bool) -> None:
        """A new index: the database first, complete, then the manifest (so a manifest always
        has a database beside it, and a kill before the manifest leaves a directory that opens as new)."""
        database = directory / DATABASE
        if database.exists():
            probe = schema.connect(database, read_only=True)
            try:
                ours = "articles" in schema.tables(probe)
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
            schema.create(database)
        _atomic_write(directory / MANIFEST, json.dumps(asdict(manifest), indent=2).encode())

    @staticmethod
    def _upgrade(db: sqlite3.Connection, directory: Path, manifest: Manifest, read_only: bool) -> None:
        if read_only:
            if schema.db_version(db) < schema.DB_VERSION:
                raise RagError(
                    f"index {directory} was made by an older rag and needs a schema upgrade, but it is read-only: "
                    "open it once where it is writable (any `rag info`)"
                )
            db.execute("PRAGMA foreign_keys=ON")
            return
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=FULL")
        if done := schema.migrate(db):
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
            self._db.close()

    # ------------------------------------------------------------ FAISS copy

    def _db_generation(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def _faiss_path(self, generation: int) -> Path:
        return self.directory / f"vectors.{generation}.faiss"

    def _load_vectors(self) -> None:
        """Load the FAISS copy that matches SQLite, or rebuild it from SQLite."""
        with self._lock, self._snapshot():
            generation = self._db_generation()
            count = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            path = self._faiss_path(generation)
            index = None
            untrusted = digest_problem(path) if path.exists() else None
            if untrusted:  # right size but damaged bytes would give silently wrong answers
                log.warning("%s is not trusted (%s); rebuilding from the database", path.name, untrusted)
            elif path.exists():
                try:
                    index = vector_index.load(path)  # memory-mapped, read-only
                except RuntimeError as e:
                    log.warning("unreadable %s (%s); rebuilding from the database", path.name, e)
                if index is not None and (index.ntotal != count or index.d != self.manifest.dim):
                    log.warning("%s disagrees with the database; rebuilding", path.name)
                    index = None
            if index is None:
                index = self._rebuild(generation)
            self._index = index
            self._generation = generation

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction, so the generation, the count and the vectors read agree even
        while another process commits (WAL readers see a fixed snapshot)."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def _rebuild(self, generation: int) -> faiss.Index:
        """The FAISS copy from the vectors in SQLite. A vector that fails its checksum or is not a
        finite unit vector is left out (and logged): `rag check --repair` re-embeds it."""
        all_ids, all_vecs, bad = [], [], []
        dim = self.manifest.dim
        rows = self._db.execute("SELECT id, vector, vector_checksum FROM chunks ORDER BY id")
        while batch := rows.fetchmany(4096):
            ok = [r for r in batch if len(r[1]) == dim * 4 and r[2] == schema.vector_checksum(r[1])]
            bad += [r[0] for r in batch if len(r[1]) != dim * 4 or r[2] != schema.vector_checksum(r[1])]
            if not ok:
                continue
            ids = np.array([r[0] for r in ok], dtype=np.int64)
            vecs = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in ok])
            invalid = schema.bad_vectors(vecs)
            bad += ids[invalid].tolist()
            all_ids.append(ids[~invalid])
            all_vecs.append(vecs[~invalid])
        if bad:
            log.warning("%d stored vector(s) are damaged (chunk ids %s) and left out of search; run `rag --index %s "
                        "check --repair` to re-embed them", len(bad), bad[:5], self.directory)
        if all_ids and sum(len(i) for i in all_ids):  # an IVF is trained on all the vectors, so they are gathered first
            index = vector_index.build(np.concatenate(all_vecs), np.concatenate(all_ids))
        else:
            index = vector_index.new_exact(dim)
        if index.ntotal or generation:
            self._save_faiss(index, generation)
        return index

    def _save_faiss(self, index: faiss.Index, generation: int) -> None:
        """Write the FAISS copy. It is derived data: when it cannot be written (a full disk, a
        read-only index) the in-memory copy serves, and the next open rebuilds the file."""
        if self.read_only:
            return
        path = self._faiss_path(generation)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            faiss.write_index(index, str(tmp))
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
            write_digest(path, of=tmp)
            os.replace(tmp, path)
            _fsync_dir(self.directory)
        except (OSError, RuntimeError) as e:
            tmp.unlink(missing_ok=True)
            for leftover in self.directory.glob(f".{path.name}.sha256.tmp-{os.getpid()}"):
                leftover.unlink(missing_ok=True)
            log.warning("could not write %s (%s); the database is saved and the copy is rebuilt from it on the "
                        "next open", path.name, str(e).splitlines()[0] if str(e) else type(e).__name__)
            return
        remove_older_copies(self.directory, generation)

    def refresh(self) -> None:
        """Pick up changes another process committed since we loaded."""
        with self._lock:
            if self._db_generation() != self._generation:
                self._load_vectors()

    # ------------------------------------------------------------ writing

    @property
    def generation(self) -> int:
        """How many commits the index has seen (0: never written to)."""
        return self._generation

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        if self.read_only:
            raise RagError(f"index {self.directory} is read-only: it can be searched, not changed")
        with self._lock, file_lock(self.directory / WRITE_LOCK, "writer"):
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
                        f"INSERT INTO articles({', '.join(schema.ARTICLE_COLUMNS)}, checksum) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (*row, schema.row_checksum(row)),
                    )
                    vecs = np.ascontiguousarray(u.vectors, dtype=np.float32)
                    for chunk, vec in zip(u.chunks, vecs, strict=True):
                        data = vec.tobytes()
                        cur = db.execute(
                            "INSERT INTO chunks(article_id, ordinal, start, end, text, vector, vector_checksum)"
                            " VALUES (?,?,?,?,?,?,?)",
                            (a.id, chunk.ordinal, chunk.start, chunk.end, chunk.text, data, schema.vector_checksum(data)),
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
            # The database is committed; now bring the FAISS copy up to the same generation
            # (a memory-mapped copy is read-only: changes go to an in-memory one).
            self._index = vector_index.writable(self._index, self._faiss_path(self._generation))
            if old_chunk_ids:
                self._index.remove_ids(np.array(old_chunk_ids, dtype=np.int64))
            if new_ids:
                self._index.add_with_ids(np.concatenate(new_vecs), np.array(new_ids, dtype=np.int64))
            self._generation = generation
            if vector_index.needs_rebuild(self._index):  # crossed RAG_ANN_THRESHOLD, or an IVF outgrew its lists
                self._index = self._rebuild(generation)
            else:
                self._save_faiss(self._index, generation)

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

    def signatures(self) -> list[tuple[str, np.ndarray]]:
        """(article id, MinHash signature) of every indexed article that has one."""
        with self._lock:
            rows = self._db.execute("SELECT id, minhash FROM articles WHERE minhash IS NOT NULL").fetchall()
        return [(r[0], np.frombuffer(r[1], dtype=np.uint64)) for r in rows]

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

    def counts(self) -> tuple[int, int]:
        with self._lock:
            articles = self._db.execute("SELECT count(*) FROM articles").fetchone()[0]
            chunks = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(articles), int(chunks)

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
