"""The FAISS copy of the vectors SQLite holds, and when it is written. A part of
:class:`rag.index.store.Store`.

A copy is ``vectors.<gen>.faiss``: the vectors as they were at SQLite generation ``<gen>``,
checksummed (``.sha256``), written beside and renamed into place, loaded memory-mapped. It is
*not* rewritten after every commit: that made a long ingest quadratic (every commit of a
100,000-article archive rewrote the whole, growing file). Commits change the in-memory index;
the file is rewritten only once the vectors changed since it was written reach
``Settings.faiss_save_fraction`` of it (0.5: the saved sizes grow geometrically, so an ingest
writes a small multiple of the final file in all, benchmarks/README.md), and when the index is
closed. A process that opens the index, or sees another's commits, takes the newest trusted
copy at or before the database's generation (or its own in-memory index, if newer) and catches
it up from SQLite: it removes the ids SQLite no longer has and adds the chunks SQLite has that
the copy lacks. After a SIGKILL the next open does the same, reading at most that fraction of
the vectors instead of all of them.

Why a diff by chunk id is enough: a chunk's vector never changes under its id (a changed article
gets new chunks), and ``chunks.id`` is ``AUTOINCREMENT``, so an id is never handed out again
after a delete (``sqlite_sequence`` keeps the highest ever used): the chunks added since a copy
was written are exactly those above its highest id. The one write that changes vectors in
place, ``rag check --repair`` re-embedding damaged ones, records the generation it made as
``meta.faiss_valid_from``; older copies (and in-memory indexes) are not caught up, but
replaced. A copy that lacks a sound vector below its highest id is not this database's
history (a restored backup?) and is rebuilt from SQLite instead.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from rag.errors import RagError
from rag.index import migrations
from rag.index import vectors as vector_index
from rag.index.files import (
    DatabaseGuard,
    copy_generation,
    digest_path,
    digest_problem,
    remove_older_copies,
    replace_durably,
    temp_path,
    write_digest,
)
from rag.index.locks import index_lock

log = logging.getLogger(__name__)

VALID_FROM = "faiss_valid_from"  # meta key: copies older than this generation are not caught up


def save_fraction() -> float:
    """Settings.faiss_save_fraction (``RAG_FAISS_SAVE_FRACTION``)."""
    from rag.settings import Settings

    return Settings().faiss_save_fraction


def copies(directory: Path, up_to: int, valid_from: int = 0) -> list[tuple[int, Path]]:
    """The FAISS copies usable at database generation ``up_to``, newest first."""
    found = []
    for path in directory.glob("vectors.*.faiss"):
        g = copy_generation(path)
        if g is not None and valid_from <= g <= up_to and path.name == f"vectors.{g}.faiss":
            found.append((g, path))
    return sorted(found, reverse=True)


def valid_from(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key=?", (VALID_FROM,)).fetchone()
    return int(row[0]) if row else 0


class FaissCopy:
    """Store's vector-file lifecycle; it uses the Store's directory, database and lock."""

    directory: Path
    manifest: object
    read_only: bool
    _db: sqlite3.Connection
    _lock: DatabaseGuard
    _index: faiss.Index | None
    _generation: int  # of the in-memory index
    _saved: tuple[int, int] = (-1, 0)  # (generation, vector count) of the file the in-memory index started from
    _unsaved: int = 0  # vectors added or removed since that file

    def _db_generation(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def _faiss_path(self, generation: int) -> Path:
        return self.directory / f"vectors.{generation}.faiss"

    # ------------------------------------------------------------ loading

    def _load_vectors(self) -> None:
        """Bring the in-memory index to the database's generation (see the module docstring)."""
        with self._lock, self._snapshot():
            generation, floor = self._db_generation(), valid_from(self._db)
            index = None
            found = copies(self.directory, generation, floor)
            mine = self._index is not None and not vector_index.is_mapped(self._index)
            if mine and floor <= self._generation <= generation and self._generation >= (found[0][0] if found else -1):
                index = self._catch_up(self._index)  # our own index is newer than any file
            if index is None:
                index = self._newest_copy(found, generation, floor)
            if index is None:
                index = self._rebuild(generation)
            elif vector_index.needs_rebuild(index):  # the catch-up crossed RAG_ANN_THRESHOLD or outgrew the IVF
                index = self._rebuild(generation)
            self._index, self._generation = index, generation
            if self._save_due():
                self._save_if_free()

    def _newest_copy(self, found: list[tuple[int, Path]], generation: int, floor: int) -> faiss.Index | None:
        """The newest copy that is trusted and can be caught up, caught up; None if there is none."""
        for _ in range(3):  # a copy can be replaced by a newer one (and deleted) while we look
            vanished = False
            for g, path in found:
                index = self._read_copy(path)
                if index is None:
                    vanished = not path.exists()
                    if vanished:
                        break
                    continue
                self._saved, self._unsaved = (g, int(index.ntotal)), 0
                if g == generation and index.ntotal == self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]:
                    return index  # written at this very generation: nothing to catch up (and it stays mapped)
                if (caught := self._catch_up(index, path)) is not None:
                    return caught
                log.warning("%s lacks vectors the database holds below its highest id (a restored backup?); not "
                            "using it", path.name)
            if not vanished:
                return None
            found = copies(self.directory, generation, floor)
        return None

    def _read_copy(self, path: Path) -> faiss.Index | None:
        untrusted = digest_problem(path)
        if untrusted:  # right size but damaged bytes would give silently wrong answers
            if path.exists():
                log.warning("%s is not trusted (%s); not using it", path.name, untrusted)
            return None
        try:
            index = vector_index.load(path)  # memory-mapped, read-only
        except RuntimeError as e:
            if path.exists():
                log.warning("unreadable %s (%s); not using it", path.name, str(e).splitlines()[0])
            return None
        if index.d != self.manifest.dim:  # type: ignore[attr-defined]
            log.warning("%s has dimension %d, the index %d; not using it", path.name, index.d, self.manifest.dim)  # type: ignore[attr-defined]
            return None
        return index

    def _catch_up(self, index: faiss.Index, path: Path | None = None) -> faiss.Index | None:
        """``index`` with SQLite's changes since it was made: the ids SQLite no longer has removed,
        the chunks above its highest id added. None when it lacks a sound vector below that id."""
        have = np.sort(vector_index.contents(index, with_vectors=False)[0])
        rows = self._db.execute("SELECT id FROM chunks")  # unordered: read from an index, not the rows with their vectors
        stored = np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64))
        gone = np.setdiff1d(have, stored, assume_unique=True)
        top = int(have[-1]) if len(have) else -1
        lacking = np.setdiff1d(stored[stored <= top], have, assume_unique=True)
        # Damaged vectors are left out of every copy; a sound one missing means another history.
        if len(lacking) > 256 or (len(lacking) and len(self._sound_vectors(only=lacking)[0])):
            return None
        ids, vectors, bad = self._sound_vectors(above=top)
        self._warn_damaged(bad)
        if not len(gone) and not len(ids):
            return index
        if path is not None:  # a memory-mapped copy is read-only: change a private in-memory one
            index = vector_index.writable(index, path)
        if len(gone):
            index.remove_ids(gone)
        if len(ids):
            index.add_with_ids(vectors, ids)
        self._unsaved += len(gone) + len(ids)
        return index

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction, so the generation, the ids and the vectors read agree even
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
        with self._snapshot():  # the count and the rows agree
            ids, vectors, bad = self._sound_vectors()
        self._warn_damaged(bad)
        index = vector_index.build(vectors, ids) if len(ids) else vector_index.new_exact(self.manifest.dim)  # type: ignore[attr-defined]
        self._saved, self._unsaved = (-1, 0), int(index.ntotal)
        if index.ntotal or generation:
            self._save_faiss(index, generation)
        return index

    def _warn_damaged(self, bad: list[int]) -> None:
        if bad:
            log.warning("%d stored vector(s) are damaged (chunk ids %s) and left out of search; run `rag --index %s "
                        "check --repair` to re-embed them", len(bad), bad[:5], self.directory)

    def _sound_vectors(self, above: int = -1, only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """(ids, vectors) of the stored vectors (with an id above ``above``, or among ``only``)
        that pass their checks, and the ids of the others. An IVF is trained on all the vectors,
        so they are gathered first, into one array filled in place (batches concatenated at the
        end held every vector twice)."""
        dim = self.manifest.dim  # type: ignore[attr-defined]
        if only is not None:
            where, params = f"id IN ({','.join('?' * len(only))})", [int(i) for i in only]
        else:
            where, params = "id > ?", [above]
        count = self._db.execute(f"SELECT count(*) FROM chunks WHERE {where}", params).fetchone()[0]
        all_ids, all_vecs, filled = np.empty(count, dtype=np.int64), np.empty((count, dim), dtype=np.float32), 0
        bad: list[int] = []
        rows = self._db.execute(f"SELECT id, vector, vector_checksum FROM chunks WHERE {where} ORDER BY id", params)
        while batch := rows.fetchmany(4096):
            ok = [r for r in batch if len(r[1]) == dim * 4 and r[2] == migrations.vector_checksum(r[1])]
            bad += [r[0] for r in batch if len(r[1]) != dim * 4 or r[2] != migrations.vector_checksum(r[1])]
            if not ok:
                continue
            ids = np.array([r[0] for r in ok], dtype=np.int64)
            vecs = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in ok])
            invalid = migrations.bad_vectors(vecs)
            bad += ids[invalid].tolist()
            n = len(ids) - int(invalid.sum())
            all_ids[filled : filled + n], all_vecs[filled : filled + n] = ids[~invalid], vecs[~invalid]
            filled += n
        return all_ids[:filled], all_vecs[:filled], bad

    # ------------------------------------------------------------ writing

    def _apply_commit(self, removed: list[int], added: list[int], vectors: list[np.ndarray], generation: int) -> None:
        """After SQLite committed ``generation``: the same change in memory; the file when due."""
        assert self._index is not None
        # Copies named after a later generation are another history's (a restored database):
        # this one will reach those names, so they must go before it does.
        for _, path in copies(self.directory, 1 << 62, generation + 1):
            digest_path(path).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        if vector_index.is_mapped(self._index):  # read-only: changes go to an in-memory copy
            try:
                self._index = vector_index.writable(self._index, self._faiss_path(self._saved[0]))
            except RuntimeError as e:  # its file went (deleted by hand?): SQLite already holds this commit
                log.warning("cannot reload %s (%s); rebuilding from the database", self._faiss_path(self._saved[0]).name, e)
                self._index, self._generation = self._rebuild(generation), generation
                return
        if removed:
            self._index.remove_ids(np.array(removed, dtype=np.int64))
        if added:
            self._index.add_with_ids(np.concatenate(vectors), np.array(added, dtype=np.int64))
        self._unsaved += len(removed) + len(added)
        self._generation = generation
        if vector_index.needs_rebuild(self._index):  # crossed RAG_ANN_THRESHOLD, or an IVF outgrew its lists
            self._index = self._rebuild(generation)
        elif self._save_due():
            self._save_faiss(self._index, generation)

    def _save_due(self) -> bool:
        """True once the changes since the file reach a fraction of it: a geometric schedule."""
        return not self.read_only and self._unsaved > 0 and self._unsaved >= save_fraction() * self._saved[1]

    def _save_if_free(self) -> None:
        """Write the in-memory index if it matches the database and no other writer is at work
        (that one writes it; two writers of one file name could leave a checksum of the other's)."""
        try:
            with index_lock(self.directory, "writer", wait=False), self._snapshot():
                if self._db_generation() == self._generation and self._index is not None:
                    self._save_faiss(self._index, self._generation)
        except (RagError, sqlite3.Error) as e:  # busy, or no longer writable: the next writer saves it
            log.debug("FAISS copy not written now (%s)", e)

    def _save_faiss(self, index: faiss.Index, generation: int) -> bool:
        """Write the FAISS copy. It is derived data: when it cannot be written (a full disk, a
        read-only index) the in-memory copy serves, and the next open catches up or rebuilds."""
        if self.read_only:
            return False
        path = self._faiss_path(generation)
        tmp = temp_path(path)
        try:
            faiss.write_index(index, str(tmp))
            write_digest(path, of=tmp)  # the checksum is in place before the file it describes
            replace_durably(tmp, path)
        except (OSError, RuntimeError) as e:
            tmp.unlink(missing_ok=True)
            for leftover in self.directory.glob(f".{path.name}.sha256.tmp-{os.getpid()}"):
                leftover.unlink(missing_ok=True)
            log.warning("could not write %s (%s); the database is saved and the copy is caught up from it on the "
                        "next open", path.name, str(e).splitlines()[0] if str(e) else type(e).__name__)
            return False
        self._saved, self._unsaved = (generation, int(index.ntotal)), 0  # ``index`` is (or becomes) the in-memory one
        remove_older_copies(self.directory, generation)
        return True

    def save(self) -> None:
        """Write the FAISS copy now if commits changed it since it was written (on close; a
        process killed before leaves the database whole, and the next open catches up)."""
        with self._lock:
            if not self.read_only and self._unsaved:
                self._save_if_free()

    def refresh(self) -> None:
        """Pick up changes another process committed since we loaded."""
        with self._lock:
            if self._db_generation() != self._generation:
                self._load_vectors()

    @property
    def generation(self) -> int:
        """How many commits the index has seen (0: never written to)."""
        return self._generation
