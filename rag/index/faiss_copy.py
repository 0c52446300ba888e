"""The FAISS copy of the vectors SQLite holds: named after the SQLite generation it matches
(``vectors.<gen>.faiss``, checksummed, written beside and renamed into place), loaded
memory-mapped, rebuilt from SQLite when missing, stale or damaged. A part of :class:`rag.index.store.Store`."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from rag.index import migrations
from rag.index import vectors as vector_index
from rag.index.files import DatabaseGuard, digest_problem, remove_older_copies, replace_durably, temp_path, write_digest

log = logging.getLogger(__name__)


class FaissCopy:
    """Store's vector-file lifecycle; it uses the Store's directory, database and lock."""

    directory: Path
    manifest: object
    read_only: bool
    _db: sqlite3.Connection
    _lock: DatabaseGuard
    _index: faiss.Index | None
    _generation: int

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
        with self._snapshot():  # the count and the rows agree
            ids, vectors, bad = self._sound_vectors()
        if bad:
            log.warning("%d stored vector(s) are damaged (chunk ids %s) and left out of search; run `rag --index %s "
                        "check --repair` to re-embed them", len(bad), bad[:5], self.directory)
        index = vector_index.build(vectors, ids) if len(ids) else vector_index.new_exact(self.manifest.dim)
        if index.ntotal or generation:
            self._save_faiss(index, generation)
        return index

    def _sound_vectors(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """(ids, vectors) of the stored vectors that pass their checks, and the ids of the others.
        An IVF is trained on all the vectors, so they are gathered first, into one array filled
        in place (batches concatenated at the end held every vector twice)."""
        dim = self.manifest.dim
        count = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        all_ids, all_vecs, filled = np.empty(count, dtype=np.int64), np.empty((count, dim), dtype=np.float32), 0
        bad: list[int] = []
        rows = self._db.execute("SELECT id, vector, vector_checksum FROM chunks ORDER BY id")
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

    def _save_faiss(self, index: faiss.Index, generation: int) -> None:
        """Write the FAISS copy. It is derived data: when it cannot be written (a full disk, a
        read-only index) the in-memory copy serves, and the next open rebuilds the file."""
        if self.read_only:
            return
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
