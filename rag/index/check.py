"""``rag check``: verify that an index is consistent, and repair what can be repaired.

Checks: the manifest; SQLite ``integrity_check`` and foreign keys; every article complete (has
chunks, ordinals 0..n-1, chunk text = its span of the article); the BM25 (FTS5) rows equal the
chunks; stored vectors have the manifest's dimension; the near-duplicate bands are those of the
stored signatures; the FAISS copy in use matches its checksum and the stored vectors
(rag.index.check_faiss; it may be behind the database); no dead writer's temp files.
Checking reads only (one SQLite snapshot), so it is safe while questions are answered or an
ingest runs.

Repairs (under both write locks): drop orphan chunks, remove incomplete articles (to be
ingested again), rebuild the BM25 rows and the near-duplicate bands, rebuild the FAISS copy
from SQLite, delete stale copies and temp files. A damaged SQLite file or manifest cannot be
repaired here.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from rag.documents.articles import terminal_safe
from rag.errors import RagError
from rag.index import migrations
from rag.index.check_faiss import check_faiss
from rag.index.check_rows import check_rows, repair_rows
from rag.index.faiss_copy import VALID_FROM, valid_from
from rag.index.files import copy_generation, is_corruption, stray_temp_files
from rag.index.locks import INGEST_LOCK, ingest_lock
from rag.index.store import DATABASE, MANIFEST, SCHEMA_VERSION, Manifest, Store, missing_database_message

if TYPE_CHECKING:
    from rag.models.embedding import Embedder

Severity = Literal["error", "warning"]
_REBUILD_FAISS = {"faiss-missing", "faiss-stale", "faiss-newer", "faiss-untrusted", "faiss-unreadable", "faiss-mismatch",
                  "chunk-vector"}
_REMOVE_ARTICLES = {"article-without-chunks", "article-partial"}


@dataclass(frozen=True)
class Problem:
    code: str  # e.g. "fts", "faiss-stale"
    message: str
    severity: Severity = "error"
    repairable: bool = True
    items: tuple[str, ...] = ()  # the article ids or chunk ids concerned, for repairs


@dataclass
class CheckReport:
    directory: Path
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    articles: int = 0
    chunks: int = 0
    fts_rows: int = 0
    faiss_vectors: int | None = None
    faiss_generation: int | None = None  # of the FAISS copy in use (it may be behind the database's)
    generation: int | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """Consistent: no errors (warnings are leftovers that the next open or write tidies)."""
        return not self.errors

    @property
    def repair_command(self) -> str:
        return f"rag --index {shlex.quote(str(self.directory))} check --repair"

    def add(self, code: str, message: str, severity: Severity = "error", repairable: bool = True, items: tuple[str, ...] = ()) -> None:
        self.problems.append(Problem(code, message, severity, repairable, items))

    def text(self) -> str:
        faiss_part = "no FAISS copy" if self.faiss_vectors is None else f"{self.faiss_vectors} FAISS vectors"
        if self.faiss_vectors is not None and self.faiss_generation != self.generation:
            faiss_part += f" as of generation {self.faiss_generation}"
        lines = [
            (f"index {self.directory}: {self.articles} articles, {self.chunks} chunks, {self.fts_rows} BM25 rows, "
            f"{faiss_part} (generation {self.generation if self.generation is not None else '?'})")
        ]
        lines += [f"repaired: {r}" for r in self.repaired]
        lines += [f"{p.severity}: {p.message}" for p in self.problems]
        lines += [f"note: {n}" for n in self.notes]
        fixable = [p for p in self.problems if p.repairable]
        if self.ok:
            verdict = "consistent"
            if self.warnings:
                verdict += f" ({len(self.warnings)} warning(s); the next open or ingest tidies them, or `{self.repair_command}`)"
        else:
            verdict = f"INCONSISTENT: {len(self.errors)} error(s)."
            if fixable:
                verdict += f" Repair with: {self.repair_command}"
            if any(not p.repairable for p in self.errors):
                verdict += " Some errors cannot be repaired automatically (see above)."
        return terminal_safe("\n".join([*lines, verdict]))  # file names may hold terminal escapes


@cache
def schema_tables() -> frozenset[str]:
    """The tables every index database at the current schema has, read from one that
    rag.index.migrations creates (so a table a new migration adds is checked too), less those
    --repair re-creates (the near-duplicate bands: a dropped table is a "minhash-bands" problem)."""
    query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"  # not SQLite's own
    with tempfile.TemporaryDirectory(prefix="rag-schema-") as tmp:
        migrations.create(Path(tmp) / DATABASE)
        with closing(sqlite3.connect(Path(tmp) / DATABASE)) as fresh, closing(sqlite3.connect(":memory:")) as rebuilt:
            for statement in migrations.BANDS_TABLE:
                rebuilt.execute(statement)
            return frozenset(r[0] for r in fresh.execute(query)) - {r[0] for r in rebuilt.execute(query)}


def _short(items: list[str] | list[int], n: int = 5) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f" … (+{len(items) - n} more)" if len(items) > n else "")


def _check_manifest(directory: Path, report: CheckReport) -> Manifest | None:
    path = directory / MANIFEST
    rebuild = "rebuild the index: move the directory aside and `rag ingest` your articles into a new one"
    if not path.exists():
        report.add("manifest", f"{MANIFEST} is missing; {rebuild}", repairable=False)
        return None
    try:
        manifest = Manifest(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
        report.add("manifest", f"{MANIFEST} is not a valid manifest ({e}); restore it from a backup or {rebuild}", repairable=False)
        return None
    if not 1 <= manifest.schema_version <= SCHEMA_VERSION:
        report.add("manifest", f"schema version {manifest.schema_version}, this rag reads 1 to {SCHEMA_VERSION}; {rebuild}", repairable=False)
    return manifest


def _check_database(
    db: sqlite3.Connection, dim: int | None, report: CheckReport
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Everything checked inside SQLite. Returns every chunk id, the ids of the sound vectors and
    those vectors (sorted by id; FAISS must hold exactly the sound ones, damaged ones may be absent)."""
    damaged = [r[0] for r in db.execute("PRAGMA integrity_check(20)")]
    if damaged != ["ok"]:
        report.add("database", f"{DATABASE} is damaged: {'; '.join(damaged[:5])}. Restore it from a backup, or rebuild "
                   "the index (move the directory aside and `rag ingest` your articles again)", repairable=False)
    tables = migrations.tables(db)
    if "articles" not in tables:
        _missing_database(db_dir(db), report, "is empty (it holds no index tables)")
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), None
    if migrations.db_version(db) < migrations.DB_VERSION:  # before the tables: older schemas lack the newer ones
        report.add("schema", f"{DATABASE} has schema {migrations.db_version(db)} (current: {migrations.DB_VERSION}); opening the "
                   "index once (any `rag info`) upgrades it", "warning", repairable=False)
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), None
    if missing := sorted(schema_tables() - tables):
        report.add("database", f"{DATABASE} lacks the tables {missing} of schema {migrations.DB_VERSION}: not an index database, "
                   "or a damaged one; restore it from a backup, or move the directory aside and `rag ingest` again", repairable=False)
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), None
    row = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
    report.generation = int(row[0]) if row else 0
    report.articles = db.execute("SELECT count(*) FROM articles").fetchone()[0]
    report.chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    report.fts_rows = db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]

    orphans = [str(r[1]) for r in db.execute("PRAGMA foreign_key_check(chunks)")]
    if orphans:
        report.add("orphan-chunks", f"{len(orphans)} chunk(s) belong to no article (ids {_short(orphans)})", items=tuple(orphans))
    bare = db.execute(
        "SELECT id, origin FROM articles a WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.article_id = a.id)"
    ).fetchall()
    if bare:
        report.add("article-without-chunks", f"{len(bare)} article(s) have no chunks: {_short([f'{i} ({o})' for i, o in bare])}; "
                   "--repair removes them, then ingest their files again", items=tuple(r[0] for r in bare))
    # Articles whose chunks are not exactly ordinals 0..n-1.
    partial = [r[0] for r in db.execute(
        "SELECT article_id FROM chunks GROUP BY article_id "
        "HAVING min(ordinal) != 0 OR max(ordinal) != count(*) - 1 OR count(DISTINCT ordinal) != count(*)")]
    if partial:
        report.add("article-partial", f"{len(partial)} article(s) miss some chunks: {_short(partial)}; "
                   "--repair removes them, then ingest their files again", items=tuple(partial))
    # Chunks whose text is not their span of the article (compared as stored bytes).
    differ = db.execute("SELECT c.id, c.article_id FROM chunks c JOIN articles a ON a.id = c.article_id "
                        "WHERE CAST(substr(a.text, c.start + 1, c.end - c.start) AS BLOB) != CAST(c.text AS BLOB)").fetchall()
    if differ:
        report.add("chunk-text", f"{len(differ)} chunk(s) differ from their article's text (chunks "
                   f"{_short([f'{c} of {a}' for c, a in differ])}); --repair re-derives them from the article",
                   items=tuple(str(c) for c, _ in differ))

    expected = {r[0]: (r[1], r[2]) for r in db.execute("SELECT c.id, a.title, c.text FROM chunks c JOIN articles a ON a.id = c.article_id")}
    actual = {r[0]: (r[1], r[2]) for r in db.execute("SELECT rowid, title, text FROM chunks_fts")}
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    differ = sorted(i for i in set(expected) & set(actual) if expected[i] != actual[i])
    if missing or extra or differ:
        report.add("fts", f"the BM25 (FTS5) rows disagree with the chunks: {len(missing)} missing, {len(extra)} extra, "
                   f"{len(differ)} with other text")

    return check_rows(db, dim, report)


def db_dir(db: sqlite3.Connection) -> Path:
    return Path(db.execute("PRAGMA database_list").fetchone()[2]).parent


def _missing_database(directory: Path, report: CheckReport, what: str) -> None:
    """A manifest without its database: repairable (re-created empty) only when nothing was
    ever committed, which is when no FAISS copy exists (an older rag killed while creating it)."""
    if any(copy_generation(p) is not None for p in directory.glob("vectors.*")):
        report.add("database-missing", missing_database_message(directory, what), repairable=False)
    else:
        report.add("database-missing", f"{DATABASE} {what}, and no FAISS copy exists: nothing was ever committed "
                   "(a kill while the index was first created?); --repair re-creates it empty")


def _check_fts_index(db: sqlite3.Connection, report: CheckReport) -> None:
    """FTS5's own check of its inverted index (a write-mode statement, so outside the snapshot)."""
    try:
        db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('integrity-check')")
    except sqlite3.OperationalError as e:
        report.notes.append(f"the BM25 index was not checked ({e})")
    except sqlite3.DatabaseError as e:
        report.add("fts", f"the BM25 (FTS5) index is damaged ({e})")


def _running_ingest(directory: Path) -> str | None:
    """'pid N since …' of a live ingest, from the lock file (stale text of a dead one is ignored)."""
    try:
        fd = os.open(directory / INGEST_LOCK, os.O_RDONLY | os.O_NOFOLLOW)  # never read through a planted link
        try:
            text = os.read(fd, 200).decode(errors="replace").strip()
        finally:
            os.close(fd)
        pid = int(text.split()[1])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return text


def check_index(directory: str | Path) -> CheckReport:
    """Check the index in ``directory`` without changing it (and without loading any model)."""
    directory = Path(directory).expanduser().resolve()
    report = CheckReport(directory)
    if not (directory / DATABASE).exists():
        if (directory / MANIFEST).exists():
            _missing_database(directory, report, "is missing")
        else:
            report.add("database", f"no index database at {directory / DATABASE}", repairable=False)
        return report
    manifest = _check_manifest(directory, report)
    dim = manifest.dim if manifest else None
    try:
        db = migrations.connect(directory / DATABASE, read_only=not migrations.writable(directory))
    except sqlite3.DatabaseError as e:
        raise RagError(f"cannot check {directory / DATABASE}: {e}") from None
    try:
        db.execute("BEGIN")  # one snapshot, even while an ingest commits
        all_ids, ids, vectors = _check_database(db, dim, report)
        floor = valid_from(db) if "meta" in migrations.tables(db) else 0
        db.execute("COMMIT")
        if any(p.code in ("database-missing", "schema") for p in report.problems):
            return report
        if not any(p.code == "database" for p in report.problems):
            _check_fts_index(db, report)
    except sqlite3.DatabaseError as e:
        if not is_corruption(e):
            raise RagError(f"cannot check {directory / DATABASE}: {e}") from None
        report.add("database", f"{DATABASE} is damaged ({e}). Restore it from a backup, or rebuild the index "
                   "(move the directory aside and `rag ingest` your articles again)", repairable=False)
        return report
    finally:
        db.close()
    check_faiss(directory, report, dim, all_ids, ids, vectors, floor)
    strays = stray_temp_files(directory)
    if strays:
        report.add("temp-files", f"{len(strays)} temp file(s) left by a writer that died: {_short([p.name for p in strays])}", "warning")
    running = _running_ingest(directory)
    if running:
        report.notes.append(f"an ingest is running ({running}); the FAISS copy may lag the database for a moment")
    return report


def _repair_database(
    directory: Path, problems: list[Problem], embedder: Embedder | None, load: Callable[[], Embedder] | None,
    notes: list[str],
) -> list[str]:
    codes = {p.code for p in problems}
    done: list[str] = []
    db = migrations.connect(directory / DATABASE, read_only=False)
    try:
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("BEGIN IMMEDIATE")
        orphans = [int(i) for p in problems if p.code == "orphan-chunks" for i in p.items]
        if orphans:
            db.executemany("DELETE FROM chunks WHERE id=?", [(i,) for i in orphans])
            done.append(f"deleted {len(orphans)} chunk(s) of no article")
        removed = []
        for codes_of, what in ((_REMOVE_ARTICLES, "incomplete"), ({"article-checksum"}, "damaged")):
            ids = sorted({a for p in problems if p.code in codes_of for a in p.items} - set(removed))
            if ids:
                origins = [r[0] for a in ids for r in db.execute("SELECT origin FROM articles WHERE id=?", (a,))]
                db.executemany("DELETE FROM articles WHERE id=?", [(a,) for a in ids])  # chunks go by cascade
                done.append(f"removed {len(ids)} {what} article(s); ingest again: {_short(origins, 10)}")
                removed += ids
        fixed = repair_rows(db, problems, embedder, load, notes)
        done += fixed
        if "fts" in codes or orphans or removed or fixed:
            db.execute("DELETE FROM chunks_fts")
            db.execute("INSERT INTO chunks_fts(rowid, title, text) SELECT c.id, a.title, c.text FROM chunks c JOIN articles a ON a.id = c.article_id")
            done.append("rebuilt the BM25 (FTS5) rows from the chunks")
        if "minhash-bands" in codes:
            migrations.fill_bands(db)  # all of them, from the signatures
            done.append("rebuilt the near-duplicate bands (minhash_bands) from the stored signatures")
        if done:  # readers reload when the generation moves, from a FAISS copy no older (vectors changed in place)
            db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
            db.execute("INSERT OR REPLACE INTO meta SELECT ?, value FROM meta WHERE key='generation'", (VALID_FROM,))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.close()
    return done


def _recreate_database(directory: Path) -> str:
    for path in directory.glob(f"{DATABASE}*"):
        path.unlink()
    migrations.create(directory / DATABASE)
    return "re-created the empty index database (nothing had been committed to it)"


def repair_index(
    directory: str | Path, embedder: Embedder | None = None, load_embedder: Callable[[], Embedder] | None = None
) -> CheckReport:
    """Repair what :func:`check_index` finds repairable, then check again. Refuses (IndexBusyError)
    while an ingest runs. The returned report lists what was done in ``repaired``.

    Damaged vectors are re-embedded from their text with ``embedder`` (or the one
    ``load_embedder`` loads, only when needed); without one they stay out of search."""
    directory = Path(directory).expanduser().resolve()
    before = check_index(directory)
    fixable = [p for p in before.problems if p.repairable]
    if not fixable:
        return before
    if any(p.code in ("database", "manifest") or (p.code == "database-missing" and not p.repairable)
           for p in before.problems):
        before.notes.append("nothing repaired: the database or manifest itself is damaged")
        return before
    done: list[str] = []
    notes: list[str] = []
    try:
        with ingest_lock(directory, wait=False):
            if any(p.code == "database-missing" for p in fixable):
                done.append(_recreate_database(directory))
            else:
                done += _repair_database(directory, fixable, embedder, load_embedder, notes)
            if done or any(p.code in _REBUILD_FAISS for p in fixable):
                for path in directory.glob("vectors.*"):
                    path.unlink()
                manifest = Store._read_manifest(directory / MANIFEST)
                Store.open(directory, manifest.embedder, manifest.dim, manifest.chunker).close()  # rebuilds from SQLite
                done.append("rebuilt the FAISS copy from the vectors in SQLite")
            strays = stray_temp_files(directory)
            for path in strays:
                path.unlink(missing_ok=True)
            if strays:
                done.append(f"deleted {len(strays)} temp file(s)")
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EROFS):
            raise
        raise RagError(f"cannot repair {directory}: {e.strerror}") from None
    after = check_index(directory)
    after.repaired = done
    after.notes += notes
    return after
