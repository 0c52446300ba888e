"""A separate process that ingests with the fast hashing embedder, for the crash and concurrency
tests. It can kill itself with SIGKILL at an exact point of a commit (``--die-at``; ``between-commits:N``
dies right after the N-th commit, before the next batch), pause holding the ingest lock
(``--hold``), remove articles first (``--remove``), and prints one line per commit
("committed <generation>").

    python tests/ingest_worker.py INDEX PATH... [--batch N] [--die-at POINT:N] [--hold FILE] [--no-wait] [--remove ID]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag import RAG, IndexBusyError, Settings
from rag.index import faiss_copy
from rag.index import store as store_module
from rag.ingest import driver as ingest_module
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

POINTS = ("mid-transaction", "after-commit", "faiss-write", "before-rename", "after-rename", "between-commits")


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class Counter:
    def __init__(self, at: int) -> None:
        self.at, self.n = at, 0

    def hit(self) -> bool:
        self.n += 1
        return self.n == self.at


class DyingConnection:
    """Forwards to the real sqlite3 connection; dies at the N-th FTS insert, inside a transaction."""

    def __init__(self, db: object, counter: Counter) -> None:
        self._db, self._counter = db, counter

    def execute(self, sql: str, *args: object) -> object:
        if sql.startswith("INSERT INTO chunks_fts") and self._counter.hit():
            die()
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


def inject(point: str, at: int, rag: RAG) -> None:
    counter = Counter(at)
    store_cls = store_module.Store
    if point == "mid-transaction":
        rag.store._db = DyingConnection(rag.store._db, counter)  # type: ignore[assignment]
    elif point == "after-commit":  # SQLite committed, FAISS copy not yet written
        real_save = store_cls._save_faiss

        def save(self, *a, **k):  # type: ignore[no-untyped-def]
            if counter.hit():
                die()
            return real_save(self, *a, **k)

        store_cls._save_faiss = save  # type: ignore[method-assign]
    elif point == "faiss-write":  # half a temp file on disk
        import faiss

        real_write = faiss.write_index

        def write(index, path):  # type: ignore[no-untyped-def]
            real_write(index, path)
            if counter.hit():
                with open(path, "rb+") as f:
                    f.truncate(os.path.getsize(path) // 2)
                die()

        faiss.write_index = write
    elif point == "before-rename":  # checksum of the new file written, file not yet renamed
        real_digest = faiss_copy.write_digest

        def digest(path, of):  # type: ignore[no-untyped-def]
            real_digest(path, of)
            if counter.hit():
                die()

        faiss_copy.write_digest = digest  # where the FAISS copy is written
    elif point == "after-rename":  # new copy in place, older copies not yet deleted
        real_remove = faiss_copy.remove_older_copies

        def remove(directory, generation):  # type: ignore[no-untyped-def]
            if counter.hit():
                die()
            return real_remove(directory, generation)

        faiss_copy.remove_older_copies = remove
    elif point == "between-commits":  # the commit is whole; the FAISS file may be behind it
        real_commit = store_cls.commit

        def commit(self, *a, **k):  # type: ignore[no-untyped-def]
            real_commit(self, *a, **k)
            if counter.hit():
                die()

        store_cls.commit = commit  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown --die-at point {point!r}; choose from {POINTS}")


def report_commits(hold: Path | None) -> None:
    real_commit = store_module.Store.commit

    def commit(self, *a, **k):  # type: ignore[no-untyped-def]
        real_commit(self, *a, **k)
        print(f"committed {self._generation}", flush=True)
        while hold is not None and not hold.exists():  # keep the ingest lock until told to go on
            time.sleep(0.02)

    store_module.Store.commit = commit  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("index", type=Path)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--batch", type=int, default=ingest_module.COMMIT_BATCH)
    parser.add_argument("--die-at", default=None, help="POINT:N, POINT one of " + ", ".join(POINTS))
    parser.add_argument("--hold", type=Path, default=None)
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--remove", action="append", default=[], help="an article id to remove first (one commit)")
    args = parser.parse_args()

    ingest_module.COMMIT_BATCH = args.batch
    rag = RAG.open(
        settings=Settings(index_dir=args.index, seeds_dir=None), embedder=HashingEmbedder(),
        llm=ExtractiveFakeGenerator(), seed=False,
    )
    report_commits(args.hold)
    if args.die_at:
        point, _, n = args.die_at.partition(":")
        inject(point, int(n or 1), rag)
    print(f"started {os.getpid()}", flush=True)
    for ref in args.remove:
        rag.remove(ref)
    try:
        report = rag.add(args.paths, wait=not args.no_wait, on_wait=lambda m: print(m, file=sys.stderr, flush=True))
    except IndexBusyError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(3) from None
    print(f"done {report.summary()}", flush=True)
    rag.close()


if __name__ == "__main__":
    main()
