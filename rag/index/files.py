"""The index's files: the one durable write (temp file, fsync, rename, fsync of the folder),
checksums for the FAISS copy, SQLite corruption turned into :class:`IndexCorruptError`, and the
leftovers a killed writer can leave behind.

Why a checksum: a FAISS file with the right vector count but flipped bytes loads fine and
gives silently wrong answers. A sha256 sidecar (``vectors.<gen>.faiss.sha256``) costs about
20 ms for 10k chunks of 384 dims (reading the file costs ~10 ms; comparing it with the vectors
in SQLite ~100 ms), so every load verifies it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import sqlite3
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

from rag.errors import IndexCorruptError, RagError

DIGEST_SUFFIX = ".sha256"
_TEMP = re.compile(r"^\..+\.tmp-(\d+)$")  # what Store writes beside a file before renaming it
_COPY = re.compile(r"^vectors\.(\d+)\.")
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 8, 10, 11, 13, 26
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def temp_path(path: Path) -> Path:
    """Where a new version of ``path`` is written before it is renamed into place (the pid marks
    whose leftover it is: see :func:`stray_temp_files`)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: Path, path: Path) -> None:
    """Make ``tmp`` the file ``path``: flushed to disk, renamed over it, the rename flushed too,
    so a crash at any point leaves the old file or the new one, whole."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` as ``path`` durably and all at once (see :func:`replace_durably`)."""
    tmp = temp_path(path)
    tmp.write_bytes(data)
    replace_durably(tmp, path)


def file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def digest_path(path: Path) -> Path:
    return path.with_name(path.name + DIGEST_SUFFIX)


def write_digest(path: Path, of: Path) -> None:
    """Record the checksum of ``of`` (a temp file about to be renamed to ``path``) beside ``path``.

    Written, fsynced and renamed *before* the data file is renamed into place, so a crash leaves
    either a matching pair or a mismatch that is detected, never an unverified file."""
    atomic_write(digest_path(path), (file_digest(of) + "\n").encode())


def digest_problem(path: Path) -> str | None:
    """Why ``path`` cannot be trusted (no checksum, or a different one), or None when it matches."""
    try:
        expected = digest_path(path).read_bytes().decode("ascii", errors="replace").strip()
    except FileNotFoundError:
        return "it has no checksum file"
    if not _HEX_DIGEST.fullmatch(expected):  # damaged bytes, maybe not even text
        return f"its checksum file {digest_path(path).name} does not hold a sha256 digest"
    try:
        actual = file_digest(path)
    except FileNotFoundError:  # replaced by a newer generation while we looked
        return "it was removed while being read"
    if actual != expected:
        return f"its sha256 {actual[:12]}… differs from the recorded {expected[:12]}…"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stray_temp_files(directory: Path) -> list[Path]:
    """Temp files left by a process that died before renaming them (live writers' are kept)."""
    out = []
    for path in directory.iterdir() if directory.is_dir() else ():
        m = _TEMP.match(path.name)
        if m and not _pid_alive(int(m.group(1))):
            out.append(path)
    return sorted(out)


def copy_generation(path: Path) -> int | None:
    """The generation in a FAISS copy's name (``vectors.<gen>.faiss`` and its sidecars)."""
    m = _COPY.match(path.name)
    return int(m.group(1)) if m else None


def remove_older_copies(directory: Path, generation: int) -> None:
    """Delete FAISS copies (and checksums) of generations before ``generation``, and dead writers'
    temp files. Newer ones are kept: a slower process must not delete a faster one's work."""
    for path in directory.glob("vectors.*"):
        g = copy_generation(path)
        if g is not None and g < generation:
            path.unlink(missing_ok=True)
    for path in stray_temp_files(directory):
        path.unlink(missing_ok=True)


def is_corruption(error: BaseException) -> bool:
    """True for SQLite's 'malformed' / 'not a database' errors; False for 'locked' and the like."""
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(error, sqlite3.DatabaseError) and code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def sqlite_code(error: BaseException) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(error, sqlite3.DatabaseError) and code is not None else None


def _nearly_full(directory: Path) -> bool:
    try:
        return shutil.disk_usage(directory).free < 1 << 20
    except OSError:
        return False


def write_error(database: Path, error: BaseException) -> RagError | None:
    """A clear error for a write that the disk refused (full, or read-only), else None."""
    code = sqlite_code(error)
    if code == _SQLITE_IOERR and _nearly_full(database.parent):  # e.g. no room for the WAL index (-shm) on open
        code = _SQLITE_FULL
    if code == _SQLITE_FULL or (isinstance(error, OSError) and error.errno == errno.ENOSPC):
        return RagError(
            f"the disk is full ({database.parent}): this write was not saved (what was committed before is kept). "
            "Free some space, then run the command again."
        )
    if code == _SQLITE_READONLY or (isinstance(error, OSError) and error.errno == errno.EROFS):
        return RagError(f"index {database.parent} is read-only: it can be searched, not changed")
    return None


def corrupt_database_error(database: Path, error: BaseException) -> IndexCorruptError:
    return IndexCorruptError(
        f"{database} is damaged ({error}). Run `rag --index {database.parent} check` for details; "
        "restore the index from a backup, or rebuild it: move the directory aside and `rag ingest` "
        "your articles into a new one."
    )


class DatabaseGuard:
    """A re-entrant lock that also turns SQLite corruption raised inside it into IndexCorruptError,
    so a damaged database is a clear error at any call, not a traceback from deep inside."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self._lock = threading.RLock()

    def __enter__(self) -> Self:
        self._lock.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._lock.release()
        if error is not None and is_corruption(error):
            raise corrupt_database_error(self.database, error) from None
        if error is not None and (clear := write_error(self.database, error)):
            raise clear from None
