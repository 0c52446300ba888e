"""The one ingest driver, whatever engine runs the stages (:mod:`rag.ingest.engines`):

    engine.load (read, parse) -> plan (duplicates, changes) -> engine.embed (chunk, embed)
      -> near-duplicates -> Store.commit, ``COMMIT_BATCH`` articles per transaction

It alone maps failures to files, counts per-file results and writes the index, so the local and
the Ray engine report and index alike. It holds one window of the archive at a time (how large
is the engine's choice: 512 files locally, a few parse batches on Ray), and the report
keeps exact counts but at most ``IngestReport.keep`` entries per list; each file's full result
goes to ``on_file`` when the file is done."""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

from rag.documents.articles import Article
from rag.index.near_duplicates import NearDuplicates
from rag.index.store import ArticleUpdate, Store
from rag.ingest.engines import Engine, Progress
from rag.ingest.formats import LoadResult
from rag.ingest.planning import SeenInRun, plan
from rag.ingest.stages import mark_near_duplicates
from rag.results import FileFailure, FileResult, IngestReport, Location

__all__ = ["COMMIT_BATCH", "Progress", "commit_all", "ingest", "ingest_articles"]

COMMIT_BATCH = 256  # articles per transaction: bounds memory and the work a crash can lose
NO_TEXT = "article has no text to index"
OnFile = Callable[[FileResult], None]


def commit_all(
    updates: Iterable[ArticleUpdate],
    store: Store,
    report: IngestReport,
    changed_ids: Container[str] = (),
    on_committed: Callable[[Article], None] | None = None,
    on_empty: Callable[[Article], None] | None = None,
    file_of: Callable[[str], FileResult] | None = None,
) -> None:
    """Mark near-duplicates and commit ``updates`` in order, ``COMMIT_BATCH`` articles per
    transaction, counting each article in ``report`` (added, or updated when its id is in
    ``changed_ids``) and handing it to ``on_committed``. An update with no chunks is not
    written: ``on_empty`` gets it (by default it is reported as a failure). Consumes ``updates``
    lazily, so they can stream in from workers while earlier batches are written. ``file_of``
    finds a file's result (default: ``report.file``)."""
    file_of = file_of or report.file
    near = NearDuplicates(store)  # reads the indexed articles' bands from SQLite, holds one batch
    it = iter(updates)
    while group := list(islice(it, COMMIT_BATCH)):
        batch = []
        for u in group:
            if u.chunks:
                batch.append(u)
            elif on_empty:
                on_empty(u.article)
            else:
                report.note_failure(FileFailure(Location(u.article.origin), NO_TEXT))
                file_of(u.article.origin).failures.append(NO_TEXT)
        marked = mark_near_duplicates(batch, store, near)
        store.commit(marked)
        near.committed()
        for u in marked:
            a = u.article
            if u.duplicate_of:
                report.note_near_duplicate(a.id, u.duplicate_of)
            changed = a.id in changed_ids
            report.note_added(a.id, changed)
            result = file_of(a.origin)
            result.updated += changed
            result.added += not changed
            report.chunks += len(u.chunks)
            if on_committed:
                on_committed(a)


class _Run:
    """The driver's state for one ingest: the report, the run's planned articles (in SQLite), the
    files whose articles are still in flight, and the failures found at commit (reported after
    the load failures, whatever the windows)."""

    def __init__(self, store: Store, engine: str, on_file: OnFile | None) -> None:
        self.store = store
        self.report = IngestReport(engine=engine)
        self.seen = SeenInRun()
        self.on_file = on_file
        self.open: dict[str, FileResult] = {}  # files with articles not yet committed
        self.waiting: dict[str, int] = {}  # file -> its articles not yet committed
        self.changed: set[str] = set()  # ids of changes in flight
        self.late: list[FileFailure] = []

    def file(self, path: str) -> FileResult:
        result = self.open.get(path)
        if result is None:
            result = self.open[path] = self.report.file(path)
        return result

    def _done(self, path: str) -> None:
        result = self.open.pop(path)
        if self.on_file:
            self.on_file(result)

    def record(self, loaded: LoadResult) -> list[Article]:
        """One window: its failures and warnings, per file; its articles planned; the articles
        to write returned (per window, new ones before changed ones)."""
        for problems, warning in ((loaded.failures, False), (loaded.warnings, True)):
            for f in problems:
                self.report.note_failure(FileFailure(f.location, f.reason), warning)
                label = f"{f.location.label}: " if f.location.label else ""
                result = self.file(f.location.file)
                (result.warnings if warning else result.failures).append(label + f.reason)
        planned = plan(loaded.articles, self.store, self.seen)
        for a in planned.duplicates:
            self.report.note_duplicate(a.origin)
            self.file(a.origin).duplicates += 1
        todo = planned.new + planned.changed
        self.changed.update(a.id for a in planned.changed)
        for a in todo:
            self.file(a.origin)
            self.waiting[a.origin] = self.waiting.get(a.origin, 0) + 1
        for path in [p for p in self.open if p not in self.waiting]:
            self._done(path)
        return todo

    def committed(self, article: Article) -> None:
        self.changed.discard(article.id)
        self.waiting[article.origin] -= 1
        if not self.waiting[article.origin]:
            del self.waiting[article.origin]
            self._done(article.origin)

    def empty(self, article: Article) -> None:
        if len(self.late) < self.report.keep:
            self.late.append(FileFailure(Location(article.origin), NO_TEXT))
        self.report.counts.failed += 1
        self.file(article.origin).failures.append(NO_TEXT)
        self.committed(article)

    def finish(self) -> IngestReport:
        room = self.report.keep - len(self.report.failed)
        self.report.failed.extend(self.late[: max(room, 0)])
        return self.report


def ingest(
    paths: Iterable[str | Path],
    store: Store,
    engine: Engine,
    max_file_bytes: int,
    progress: Progress | None = None,
    follow_symlinks: bool = False,
    on_file: OnFile | None = None,
) -> IngestReport:
    """Index the files under ``paths`` into ``store`` with the stages run by ``engine``. Bad
    files are reported, never fatal; each commit is one transaction, so an interrupted run
    leaves whole articles only. ``on_file`` gets each file's result once it is final."""
    return _drive(store, engine, progress, on_file, lambda: engine.load(paths, max_file_bytes, follow_symlinks))


def ingest_articles(articles: Sequence[Article], store: Store, engine: Engine, progress: Progress | None = None) -> IngestReport:
    """Index articles already loaded (such as removed ones given back to undo the removal) as
    :func:`ingest` indexes a file's: duplicates skipped, changes replacing, chunked and embedded
    again by ``engine``. Their files are not read: the report's files are their origins."""
    return _drive(store, engine, progress, None, lambda: iter([LoadResult(list(articles), [], [])]))


def _drive(
    store: Store, engine: Engine, progress: Progress | None, on_file: OnFile | None, load: Callable[[], Iterator[LoadResult]]
) -> IngestReport:
    started = time.perf_counter()
    run = _Run(store, engine.name, on_file)

    def planned(windows: Iterator[LoadResult]) -> Iterator[list[Article]]:
        for loaded in windows:
            yield run.record(loaded)

    try:
        with engine.running(store.manifest.chunker):
            updates = engine.embed(planned(load()), COMMIT_BATCH, progress)
            commit_all(updates, store, run.report, run.changed, run.committed, run.empty, run.file)
    finally:
        run.seen.close()
    report = run.finish()
    report.seconds = time.perf_counter() - started
    return report
