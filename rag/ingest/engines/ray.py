"""The Ray engine: the stages of :mod:`rag.ingest.stages` run by a pool of Ray actors, streamed in
bounded windows so the driver's memory does not grow with the size of the archive:

    driver: list files, read the next PARSE_BATCH files' bytes
      -> Ray actors: parse (loaders: bytes -> normalised articles, per-file failures)
      -> driver:     plan (rag.ingest.driver)
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
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from rag.documents.articles import Article
from rag.documents.chunking import Chunk, ChunkerSettings
from rag.errors import RagError
from rag.index.store import ArticleUpdate
from rag.ingest.engines import Progress
from rag.ingest.formats import LoadFailure, LoadResult, iter_files
from rag.ingest.stages import FileBytes, chunk, embed, parse, read
from rag.models.embedding import Embedder, SentenceTransformerEmbedder, load_embedder

if TYPE_CHECKING:
    from ray.actor import ActorHandle

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


class Worker:
    """Ray actor for both stages: ``parse``, and ``chunk`` then ``embed``. It holds the embedder,
    so the model loads once per worker (and again only when Ray restarts it); chunking runs here
    because it counts the model's tokens."""

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


def _connect(address: str | None) -> bool:
    """Join the cluster at ``address`` or start a local one; True when this call started Ray."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if address:
        # Ship this version of the package, so workers run the same stages as the driver;
        # its dependencies and the embedder's model package must be installed on the cluster.
        kwargs["runtime_env"] = {"py_modules": [str(Path(__file__).resolve().parents[2])]}  # the rag package
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
            loaded.extend(LoadResult(failures=[f]) if f is not None else next(done))
        yield loaded


class RayEngine:
    """Parses, chunks and embeds on ``workers`` Ray actors: on the cluster at ``address``, on one
    already initialised in this process, or on a local one started for the ingest. Progress
    counts articles, not chunks, and its total grows as files are parsed (the archive is never
    loaded whole to count them)."""

    name = "ray"

    def __init__(self, embedder: Embedder, address: str | None = None, workers: int = 2) -> None:
        if workers < 1:
            raise RagError(f"workers must be at least 1, not {workers}")
        if not ray_available():
            raise RayUnavailableError(unavailable_message())
        self.make_embedder = embedder_factory(embedder)
        self.address = address
        self.workers = workers
        self._actors: list[ActorHandle] = []

    @contextmanager
    def running(self, chunker: ChunkerSettings) -> Iterator[None]:
        import ray

        started_ray = _connect(self.address)
        try:
            # One CPU each, as the local engine's torch gets all of them; restarted when they die.
            remote = ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)(Worker)
            self._actors = [remote.remote(self.make_embedder, chunker) for _ in range(self.workers)]
            yield
        except RagError:
            raise
        except Exception as e:  # a worker's error arrives wrapped; say where it came from
            raise RagError(f"ingestion on Ray failed: {type(e).__name__}: {e}") from e
        finally:
            for actor in self._actors:
                ray.kill(actor, no_restart=True)
            self._actors = []
            if started_ray:
                ray.shutdown()

    def load(self, paths: Iterable[str | Path], max_bytes: int, follow_symlinks: bool) -> Iterator[LoadResult]:
        calls = _parse_calls(paths, max_bytes, follow_symlinks)
        return _windows(_ordered(calls, self._actors, self.workers * IN_FLIGHT))

    def embed(self, planned: Iterable[list[Article]], commit_batch: int, progress: Progress | None) -> Iterator[ArticleUpdate]:
        counts = [0, 0]  # articles planned, articles embedded

        def tick() -> None:
            if progress:
                progress(counts[1], counts[0])

        def calls() -> Iterator[tuple[list[Article], Callable[[ActorHandle], Any]]]:
            waiting: list[Article] = []
            for todo in planned:  # a window is planned only when its articles are needed
                counts[0] += len(todo)
                tick()
                waiting.extend(todo)
                while len(waiting) >= EMBED_BATCH:
                    batch, waiting = waiting[:EMBED_BATCH], waiting[EMBED_BATCH:]
                    yield batch, lambda actor, b=batch: actor.chunk_and_embed.remote(b)
            if waiting:
                yield waiting, lambda actor, b=waiting: actor.chunk_and_embed.remote(b)

        # Enough embedding in flight to keep the workers busy while the driver writes a commit batch.
        window = self.workers * IN_FLIGHT + math.ceil(commit_batch / EMBED_BATCH)
        for articles, results in _ordered(calls(), self._actors, window):
            for a, (spans, vectors, minhash) in zip(articles, results, strict=True):
                yield ArticleUpdate(a, [Chunk(a.id, o, s, e, a.text[s:e]) for o, s, e in spans], vectors, minhash=minhash)
            counts[1] += len(articles)
            tick()
