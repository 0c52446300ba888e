"""The one cross-process writer lock of an index directory (fcntl ``flock`` on ``ingest.lock``;
released by the OS if the holder dies).

An ingest holds it from start to end, so two ingests never interleave their batches: the second
waits (and says for whom) or, with ``wait=False``, is refused. Every other write (``rag rm``,
``check --repair``) takes it for its own commit, and so waits for a running ingest; the commits
an ingest makes run under the lock it already holds (the lock is re-entrant in the thread that
took it). Readers never take it: SQLite's transactions keep them consistent.

(There used to be a second, per-commit ``.lock`` as well; it guarded nothing this one does not.)
"""

from __future__ import annotations

import errno
import fcntl
import os
import shlex
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rag.errors import IndexBusyError, RagError

INGEST_LOCK = "ingest.lock"  # named for its first use; older versions take it for ingests, so they exclude us too

_held = threading.local()  # per thread: the index directories whose lock this thread holds


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it ('pid 123 since …'); may be empty for a moment."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 200).decode(errors="replace").strip()
    return text or "pid unknown"


@contextmanager
def file_lock(
    path: Path, what: str, wait: bool = True, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on ``path``. ``what`` names the activity in messages ('ingest').

    Opened without following symbolic links: a planted ``ingest.lock -> ~/precious`` would
    otherwise have its target truncated."""
    fd = _open_lock(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise IndexBusyError(
                    f"another {what} ({holder}) is writing to {path.parent}; try again when it has finished, "
                    "or leave out --no-wait to queue behind it"
                ) from None
            if on_wait:
                on_wait(f"waiting for another {what} ({holder}) to finish writing to {path.parent}…")
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            _stamp(fd, f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}\n")
            yield
        finally:
            _stamp(fd, "")
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_lock(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RagError(
                f"{path} is a symbolic link; an index's lock files must be plain files. Remove it "
                f"(rm {shlex.quote(str(path))}) and try again."
            ) from None
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise RagError(f"index {path.parent} is read-only ({e.strerror}): it can be searched, not changed") from None
        raise RagError(f"cannot open the lock file {path}: {e.strerror or e}") from None


def _stamp(fd: int, text: str) -> None:
    """Who holds the lock, for messages; best effort (a full disk must not fail the lock)."""
    try:
        os.ftruncate(fd, 0)
        if text:
            os.pwrite(fd, text.encode(), 0)
    except OSError:
        pass


@contextmanager
def index_lock(
    directory: Path, what: str, wait: bool = True, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the writer lock of the index in ``directory`` (see the module docstring); ``what``
    names this writer in messages. Re-entrant: inside a thread's hold, it is already held."""
    key = os.path.realpath(directory)
    mine: set[str] = _held.__dict__.setdefault("directories", set())
    if key in mine:
        yield
        return
    with file_lock(directory / INGEST_LOCK, what, wait, on_wait):
        mine.add(key)
        try:
            yield
        finally:
            mine.discard(key)


def ingest_lock(
    directory: Path, wait: bool = True, on_wait: Callable[[str], None] | None = None
) -> AbstractContextManager[None]:
    """Held for a whole ingest (see the module docstring)."""
    return index_lock(directory, "ingest", wait, on_wait)
