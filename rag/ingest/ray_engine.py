"""Ingestion on Ray: the stages of :mod:`rag.ingest.driver` run by a pool of Ray actors, written into
the index by the driver (this process) exactly as the local engine writes it, streamed in
bounded windows so the driver's memory does not grow with the size of the archive:

    driver: list files, read the next PARSE_BATCH files' bytes
      -> Ray actors: parse (loaders: bytes -> normalised articles, per-file failures)
      -> driver:     plan (exact duplicates against the index and this run, changed articles)
      -> Ray actors: chunk + embed (the model loads once per actor; ``workers`` actors)
      -> driver:     near-duplicates, then ``Store.commit`` per batch, in input order

At most ``IN_FLIGHT`` parse calls per worker are outstanding (and embedding calls for one more
commit batch), the driver reads more files only when a parse result has been taken, and plans
more articles only when an embedding result has been taken, so it holds a few windows of bytes
and articles at any time, not the archive.

Bytes, not paths, go to the workers: they need no access to the driver's files (no shared
storage). A worker that dies (OOM killer, a lost node) is restarted and its calls run again
(``max_restarts`` / ``max_task_retries``); the stages are pure, and only the driver writes, so a
retried call cannot write twice. Ray is an optional extra (``pip install 'rag[ray]'``); nothing
here imports it at module level.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from rag.documents.articles import Article
from rag.documents.chunking import Chunk, ChunkerSettings
from rag.errors import RagError
from rag.index.store import ArticleUpdate, Store
from rag.ingest import driver
from rag.ingest.driver import FileBytes, Progress, chunk, commit_all, embed, parse, read, start_report
from rag.ingest.formats import LoadFailure, LoadResult, iter_files
from rag.models.embedding import Embedder, SentenceTransformerEmbedder, load_embedder
from rag.results import FileFailure, IngestReport

if TYPE_CHECKING:
    from ray.actor import ActorHandle

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'rag[ray]'"
PARSE_BATCH = 16  # files per parse call
EMBED_BATCH = 32  # articles per chunk+embed call (a few hundred chunks)
IN_FLIGHT = 2  # outstanding calls per worker and stage: workers never wait, the driver holds little
RETRIES = 3  # restarts of a dead worker, and re-runs of each call it was running or had queued

EmbedderFactory = Callable[[], Embedder]
Spans = list[tuple[int, int, int]]  # (ordinal, start, end) of each chunk in the article's text
Embedded = tuple[Spans, np.ndarray, np.ndarray | None]  # spans, vectors, MinHash signature
T = TypeVar("T")


class RayUnavailableError(RagError):
    """The Ray engine was asked for but Ray is not installed."""


def ray_available() -> bool:
    """True when Ray can be imported."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def unavailable_message() -> str:
    return f"Ray is not installed, so the ray engine is unavailable; install it with: {INSTALL_HINT}"


def embedder_factory(embedder: Embedder) -> EmbedderFactory:
    """How a worker gets the same embedder: a sentence-transformers model is loaded again by
    name there (a model cannot be pickled); any other embedder is shipped as it is."""
    if isinstance(embedder, SentenceTransformerEmbedder):
        return functools.partial(load_embedder, embedder.name, embedder.batch_size)
    return functools.partial(_same, embedder)


def _same(embedder: Embedder) -> Embedder:
    return embedder


# ---------------------------------------------------------------- the worker


class Worker:
    """Ray actor for both stages: ``rag.ingest.driver.parse``, and ``rag.ingest.driver.chunk`` then
    ``rag.ingest.driver.embed``. It holds the embedder, so the model loads once per worker (and again
    only when Ray restarts it); chunking runs here because it counts the model's tokens."""

    def __init__(self, make_embedder: EmbedderFactory, chunker: ChunkerSettings) -> None:
        self.embedder = make_embedder()
        self.chunker = chunker

    def parse(self, files: list[FileBytes]) -> list[LoadResult]:
        return parse(files)

    def chunk_and_embed(self, articles: list[Article]) -> list[Embedded]:
        """Per article: its chunks' spans, their vectors and its signature (no chunks: empty).
        The driver still has the articles, so their text is not sent back."""
        chunked = chunk(articles, self.chunker, self.embedder.count_tokens)
        updates = iter(embed([(a, c) for a, c in chunked if c], self.embedder))
        empty = np.zeros((0, self.embedder.dim), dtype=np.float32)
        out: list[Embedded] = []
        for _, chunks in chunked:
            u = next(updates) if chunks else None
            spans = [(c.ordinal, c.start, c.end) for c in chunks]
            out.append((spans, np.ascontiguousarray(u.vectors, dtype=np.float32), u.minhash) if u else (spans, empty, None))
        return out


# ---------------------------------------------------------------- the driver


def _connect(address: str | None) -> bool:
    """Join the cluster at ``address`` or start a local one; True when this call started Ray."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if address:
        # Ship this version of the package, so workers run the same stages as the driver;
        # its dependencies and the embedder's model package must be installed on the cluster.
        kwargs["runtime_env"] = {"py_modules": [str(Path(__file__).resolve().parents[1])]}  # the rag package
    try:
        ray.init(address=address or None, **kwargs)
    except ConnectionError as e:
        raise RagError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
    return True


def _ordered(
    calls: Iterable[tuple[T, Callable[[ActorHandle], Any]]], actors: Sequence[ActorHandle], window: int
) -> Iterator[tuple[T, Any]]:
    """Submit each call to the next actor in turn, keep at most ``window`` outstanding, and yield
    ``(tag, result)`` in submission order. ``calls`` is pulled only as results are taken."""
    import ray

    pending: deque[tuple[T, Any]] = deque()
    turn = itertools.cycle(actors)
    for tag, submit in calls:
        pending.append((tag, submit(next(turn))))
        if len(pending) >= window:
            tag, ref = pending.popleft()
            yield tag, ray.get(ref)
    while pending:
        tag, ref = pending.popleft()
        yield tag, ray.get(ref)


def _parse_calls(
    paths: Iterable[str | Path], max_bytes: int, follow_symlinks: bool
) -> Iterator[tuple[list[LoadFailure | None], Callable[[ActorHandle], Any]]]:
    """Read ``PARSE_BATCH`` files at a time; the tag keeps only the failures (by position: what
    the folder walk skipped, then what could not be read), so the bytes live only in the call's
    arguments, freed once it has run."""
    skipped: list[LoadFailure] = []
    files = iter_files(paths, follow_symlinks, skipped)
    while True:
        batch = list(itertools.islice(files, PARSE_BATCH))
        walked, skipped[:] = list(skipped), []
        if not batch and not walked:
            return
        read_out = read(batch, max_bytes)
        readable = [f for f in read_out if isinstance(f, FileBytes)]
        failed: list[LoadFailure | None] = [*walked, *(f if isinstance(f, LoadFailure) else None for f in read_out)]
        yield failed, lambda actor, r=readable: actor.parse.remote(r)


def _windows(parsed: Iterable[tuple[list[LoadFailure | None], list[LoadResult]]]) -> Iterator[LoadResult]:
    """Each window's failures and articles in file order, like ``load_paths``."""
    for failed, results in parsed:
        done = iter(results)
        loaded = LoadResult()
        for f in failed:
            one = LoadResult(failures=[f]) if f is not None else next(done)
            loaded.articles.extend(one.articles)
            loaded.failures.extend(one.failures)
            loaded.warnings.extend(one.warnings)
        yield loaded


class _Run:
    """The driver's state for one ingest: the report, what this run has planned (so an article
    seen in an earlier window is a duplicate before that window is committed), and progress."""

    def __init__(self, store: Store, progress: Progress | None) -> None:
        self.store = store
        self.report = IngestReport()
        self.load_failed: list[FileFailure] = []  # reported before commit failures, as locally
        self.hashes: set[str] = set()
        self.ids: set[str] = set()
        self.changed: set[str] = set()  # read by commit_all as it goes
        self.planned = self.done = 0
        self.progress = progress

    def tick(self, done: int = 0) -> None:
        self.done += done
        if self.progress:
            self.progress(self.done, self.planned)

    def record_load(self, loaded: LoadResult) -> None:
        """Failures and warnings, labelled as ``rag.ingest.driver.start_report`` labels them."""
        part, _, _ = start_report(LoadResult(failures=loaded.failures, warnings=loaded.warnings), self.store)
        self.load_failed.extend(part.failed)
        self.report.warnings.extend(part.warnings)
        for path, f in part.files.items():
            mine = self.report.file(path)
            mine.failures.extend(f.failures)
            mine.warnings.extend(f.warnings)

    def plan(self, articles: Iterable[Article]) -> list[Article]:
        """``rag.ingest.driver.plan`` over this run so far: exact duplicates skipped, and per window the
        new articles before the changed ones."""
        new: list[Article] = []
        changed: list[Article] = []
        for a in articles:
            h = a.content_hash
            if h in self.hashes or a.id in self.ids or self.store.article_by_hash(h):
                self.report.duplicates.append(a.origin)
                self.report.file(a.origin).duplicates += 1
                continue
            self.hashes.add(h)
            self.ids.add(a.id)
            if self.store.article_hash(a.id):
                self.changed.add(a.id)
                changed.append(a)
            else:
                new.append(a)
        return new + changed

    def embed_calls(self, windows: Iterable[LoadResult]) -> Iterator[tuple[list[Article], Callable[[ActorHandle], Any]]]:
        """``EMBED_BATCH`` planned articles at a time; a window is planned only when needed."""
        waiting: list[Article] = []
        for loaded in windows:
            self.record_load(loaded)
            todo = self.plan(loaded.articles)
            self.planned += len(todo)
            self.tick()
            waiting.extend(todo)
            while len(waiting) >= EMBED_BATCH:
                batch, waiting = waiting[:EMBED_BATCH], waiting[EMBED_BATCH:]
                yield batch, lambda actor, b=batch: actor.chunk_and_embed.remote(b)
        if waiting:
            yield waiting, lambda actor, b=waiting: actor.chunk_and_embed.remote(b)

    def updates(self, embedded: Iterable[tuple[list[Article], list[Embedded]]]) -> Iterator[ArticleUpdate]:
        for articles, results in embedded:
            for a, (spans, vectors, minhash) in zip(articles, results, strict=True):
                yield ArticleUpdate(a, [Chunk(a.id, o, s, e, a.text[s:e]) for o, s, e in spans], vectors, minhash=minhash)
            self.tick(len(articles))


def ingest_on_ray(
    paths: Iterable[str | Path],
    store: Store,
    make_embedder: EmbedderFactory,
    max_file_bytes: int,
    *,
    address: str | None = None,
    workers: int = 2,
    progress: Progress | None = None,
    follow_symlinks: bool = False,
) -> IngestReport:
    """Ingest ``paths`` with the stages running on Ray (a local cluster when ``address`` is None,
    or the cluster already initialised in this process). Same report and index as
    :func:`rag.ingest.driver.ingest`, except that ``progress`` counts articles, not chunks, and its
    total grows as files are parsed (the archive is never loaded whole to count them). Each
    commit is one transaction, as locally, so an interrupted run leaves whole articles only.
    Folders are walked as :func:`rag.ingest.formats.iter_files` walks them (``follow_symlinks``)."""
    if workers < 1:
        raise RagError(f"workers must be at least 1, not {workers}")
    if not ray_available():
        raise RayUnavailableError(unavailable_message())
    import ray

    started = time.perf_counter()
    started_ray = _connect(address)
    actors: list[ActorHandle] = []
    run = _Run(store, progress)
    try:
        # One CPU each, as the local engine's torch gets all of them; restarted when they die.
        remote = ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)(Worker)
        actors = [remote.remote(make_embedder, store.manifest.chunker) for _ in range(workers)]
        windows = _windows(_ordered(_parse_calls(paths, max_file_bytes, follow_symlinks), actors, workers * IN_FLIGHT))
        # Enough embedding in flight to keep the workers busy while the driver writes a commit batch.
        embedded = _ordered(run.embed_calls(windows), actors, workers * IN_FLIGHT + math.ceil(driver.COMMIT_BATCH / EMBED_BATCH))
        commit_all(run.updates(embedded), store, run.report, run.changed)
    except RagError:
        raise
    except Exception as e:  # a worker's error arrives wrapped; say where it came from
        raise RagError(f"ingestion on Ray failed: {type(e).__name__}: {e}") from e
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if started_ray:
            ray.shutdown()
    report = run.report
    report.failed[:0] = run.load_failed
    report.engine = "ray"
    report.seconds = time.perf_counter() - started
    return report
