"""Ingestion on Ray Data: the stages of :mod:`rag.ingest` mapped over batches on a Ray cluster,
written into the index by the driver (this process) exactly as the local engine writes it.

    driver: list files, read their bytes
      -> Ray tasks:  parse (loaders: bytes -> normalised articles, per-file failures)
      -> driver:     plan (exact duplicates against the index, changed articles)
      -> Ray actors: chunk + embed (the model loads once per actor; ``workers`` actors)
      -> driver:     near-duplicates, then ``Store.commit`` per batch, streamed as results arrive

Bytes, not paths, go to the workers: they need no access to the driver's files (no shared
storage), at the cost of pushing the input through Ray's object store once. Deduplication runs
between the two Ray stages so content already indexed is never embedded again, as locally.
Ray is an optional extra (``pip install 'rag[ray]'``); nothing here imports it at module level.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .articles import Article
from .chunking import Chunk, ChunkerSettings
from .embedding import Embedder, SentenceTransformerEmbedder, load_embedder
from .errors import RagError
from .ingest import (
    FileBytes,
    Progress,
    chunk,
    commit_all,
    embed,
    parse,
    read,
    start_report,
)
from .loaders import LoadFailure, LoadResult, LoadWarning, iter_files
from .results import IngestReport
from .store import ArticleUpdate, Store

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'rag[ray]'"
PARSE_BATCH = 16  # files per parse task
EMBED_BATCH = 32  # articles per chunk+embed call (a few hundred chunks)
RESULT_BATCH = 64  # articles the driver pulls at a time; commits still group COMMIT_BATCH

EmbedderFactory = Callable[[], Embedder]


class RayUnavailableError(RagError):
    """The Ray engine was asked for but Ray is not installed."""


def ray_available() -> bool:
    """True when ``ray[data]`` can be imported."""
    try:
        import ray
        import ray.data  # noqa: F401
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


# ---------------------------------------------------------------- rows <-> records
# Rows carry only strings, ints and bytes, so Arrow holds them without guessing types.


def _article_json(a: Article) -> str:
    return json.dumps({
        "title": a.title, "text": a.text, "key": a.key, "source": a.source, "url": a.url, "author": a.author,
        "published": a.published.isoformat() if a.published else None, "origin": a.origin, "extra": a.extra,
    })


def _article_from_json(text: str) -> Article:
    d = json.loads(text)
    d["published"] = date.fromisoformat(d["published"]) if d["published"] else None
    return Article(**d)


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=schema)


def _parsed_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([
        ("index", pa.int64()), ("articles", pa.large_string()), ("failures", pa.large_string()),
        ("warnings", pa.large_string()),
    ])


def _embedded_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([
        ("article", pa.large_string()), ("chunks", pa.large_string()),
        ("vectors", pa.large_binary()), ("minhash", pa.large_binary()),
    ])


# ---------------------------------------------------------------- worker stages


def parse_batch(batch: pa.Table) -> pa.Table:
    """Ray task: ``rag.ingest.parse`` over a batch of file rows."""
    rows = batch.to_pylist()
    files = [FileBytes(r["path"], r["resolved"], r["data"], r["sidecar"]) for r in rows]
    out = [
        {
            "index": r["index"],
            "articles": json.dumps([_article_json(a) for a in result.articles]),
            "failures": json.dumps([[f.path, f.reason] for f in result.failures]),
            "warnings": json.dumps([[w.path, w.reason] for w in result.warnings]),
        }
        for r, result in zip(rows, parse(files), strict=True)
    ]
    return _table(out, _parsed_schema())


class ChunkAndEmbed:
    """Ray actor: ``rag.ingest.chunk`` then ``rag.ingest.embed``. It holds the embedder, so the
    model loads once per worker; chunking runs here too because it counts the model's tokens."""

    def __init__(self, make_embedder: EmbedderFactory, chunker: ChunkerSettings) -> None:
        self.embedder = make_embedder()
        self.chunker = chunker

    def __call__(self, batch: pa.Table) -> pa.Table:
        texts = batch.column("item").to_pylist()
        chunked = chunk([_article_from_json(t) for t in texts], self.chunker, self.embedder.count_tokens)
        updates = iter(embed([(a, c) for a, c in chunked if c], self.embedder))
        rows = []
        for text, (_, chunks) in zip(texts, chunked, strict=True):
            u = next(updates) if chunks else None
            rows.append({
                "article": text,
                "chunks": json.dumps([[c.ordinal, c.start, c.end] for c in chunks]),
                "vectors": np.ascontiguousarray(u.vectors, dtype=np.float32).tobytes() if u else b"",
                "minhash": u.minhash.tobytes() if u is not None and u.minhash is not None else b"",
            })
        return _table(rows, _embedded_schema())


def _updates_from(batch: pa.Table, dim: int) -> Iterator[ArticleUpdate]:
    for r in batch.to_pylist():
        a = _article_from_json(r["article"])
        chunks = [Chunk(a.id, o, s, e, a.text[s:e]) for o, s, e in json.loads(r["chunks"])]
        vectors = np.frombuffer(r["vectors"], dtype=np.float32).reshape(len(chunks), dim)
        minhash = np.frombuffer(r["minhash"], dtype=np.uint64) if r["minhash"] else None
        yield ArticleUpdate(a, chunks, vectors, minhash=minhash)


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
        kwargs["runtime_env"] = {"py_modules": [str(Path(__file__).resolve().parent)]}
    try:
        ray.init(address=address or None, **kwargs)
    except ConnectionError as e:
        raise RagError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
    return True


def _blocks(rows: int, batch: int, workers: int) -> int:
    """Enough blocks to give every worker some, and none much bigger than one batch."""
    return max(1, min(rows, max(workers, math.ceil(rows / batch))))


def _load_on_ray(files: Sequence[Path], max_bytes: int, workers: int) -> LoadResult:
    """Read on the driver, parse on Ray; failures and articles in file order, like ``load_paths``."""
    import ray.data

    read_out = read(files, max_bytes)
    rows = [
        {"index": i, "path": f.path, "resolved": f.resolved, "data": f.data, "sidecar": f.sidecar}
        for i, f in enumerate(read_out) if isinstance(f, FileBytes)
    ]
    parsed: dict[int, LoadResult] = {}
    if rows:
        ds = ray.data.from_items(rows, override_num_blocks=_blocks(len(rows), PARSE_BATCH, workers)).map_batches(
            parse_batch, batch_size=PARSE_BATCH, batch_format="pyarrow",
            compute=ray.data.TaskPoolStrategy(size=workers),
        )
        for r in ds.take_all():
            parsed[r["index"]] = LoadResult(
                [_article_from_json(t) for t in json.loads(r["articles"])],
                [LoadFailure(p, reason) for p, reason in json.loads(r["failures"])],
                [LoadWarning(p, reason) for p, reason in json.loads(r["warnings"])],
            )
    loaded = LoadResult()
    for i, f in enumerate(read_out):
        one = parsed[i] if isinstance(f, FileBytes) else LoadResult(failures=[f])
        loaded.articles.extend(one.articles)
        loaded.failures.extend(one.failures)
        loaded.warnings.extend(one.warnings)
    return loaded


def _embed_on_ray(
    todo: Sequence[Article], make_embedder: EmbedderFactory, chunker: ChunkerSettings, dim: int, workers: int,
    progress: Progress | None,
) -> Iterator[ArticleUpdate]:
    """Chunk and embed ``todo`` on ``workers`` actors; yields the updates in order as they arrive."""
    import ray.data

    if progress:
        progress(0, len(todo))
    if not todo:
        return
    ds = ray.data.from_items(
        [_article_json(a) for a in todo], override_num_blocks=_blocks(len(todo), EMBED_BATCH, workers)
    ).map_batches(
        ChunkAndEmbed, fn_constructor_args=(make_embedder, chunker), batch_size=EMBED_BATCH,
        batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=workers),
    )
    done = 0
    for batch in ds.iter_batches(batch_size=RESULT_BATCH, batch_format="pyarrow"):
        for u in _updates_from(batch, dim):
            done += 1
            yield u
        if progress:
            progress(done, len(todo))


def ingest_on_ray(
    paths: Iterable[str | Path],
    store: Store,
    make_embedder: EmbedderFactory,
    max_file_bytes: int,
    *,
    address: str | None = None,
    workers: int = 2,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest ``paths`` with the stages running on Ray (a local cluster when ``address`` is None,
    or the cluster already initialised in this process). Same report and index as
    :func:`rag.ingest.ingest`, except that ``progress`` counts articles, not chunks (chunks are
    only known once workers have made them). Each commit is one transaction, as locally."""
    if workers < 1:
        raise RagError(f"workers must be at least 1, not {workers}")
    if not ray_available():
        raise RayUnavailableError(unavailable_message())
    from ray.data import DataContext

    started = time.perf_counter()
    started_ray = _connect(address)
    ctx = DataContext.get_current()
    saved = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    # Results in input order: which copy of a duplicate is kept must not depend on scheduling.
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    try:
        loaded = _load_on_ray(list(iter_files(paths)), max_file_bytes, workers)
        report, todo, changed_ids = start_report(loaded, store)
        updates = _embed_on_ray(todo, make_embedder, store.manifest.chunker, store.manifest.dim, workers, progress)
        commit_all(updates, store, report, changed_ids)
    except RagError:
        raise
    except Exception as e:  # a worker's error arrives wrapped; say where it came from
        raise RagError(f"ingestion on Ray failed: {type(e).__name__}: {e}") from e
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
        if started_ray:
            import ray

            ray.shutdown()
    report.engine = "ray"
    report.seconds = time.perf_counter() - started
    return report
