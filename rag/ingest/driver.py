"""The ingest pipeline as plain stage functions (batch in, batch out, no hidden state), shared by
the local engine (``ingest`` below) and the Ray engine (``rag.ingest.ray_engine``):

    read (driver) -> parse -> plan (dedup, driver) -> chunk -> embed -> commit_all (near-dups, driver)

``read`` and ``parse`` are split so bytes read on one machine can be parsed on another."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

import numpy as np

from rag.documents.articles import Article
from rag.documents.chunking import Chunk, ChunkerSettings, chunk_article, embedding_text
from rag.documents.dedup import signature
from rag.errors import LoadError
from rag.index.near_duplicates import NearDuplicates
from rag.index.store import ArticleUpdate, Store
from rag.ingest.formats import LoadFailure, LoadResult, LoadWarning, load_bytes, load_paths, name_problem, read_file, shown_path
from rag.models.embedding import Embedder
from rag.results import FileFailure, IngestReport

Progress = Callable[[int, int], None]  # (chunks embedded so far, total chunks)
COMMIT_BATCH = 256  # articles per transaction: bounds memory and the work a crash can lose


@dataclass
class Planned:
    """Articles that need writing, split by what they are to the index."""

    new: list[Article]
    changed: list[Article]
    duplicates: list[str]


@dataclass(frozen=True)
class FileBytes:
    """A file read on the driver: all a worker needs to parse it, without sharing a filesystem."""

    path: str  # as the user named it: the articles' origin and the failures' path
    resolved: str  # absolute, symlinks resolved: file-based article ids are made from it
    data: bytes
    sidecar: bytes | None = None


def read(paths: Iterable[Path], max_bytes: int) -> list[FileBytes | LoadFailure]:
    """Each file's bytes, or why it cannot be read, in order."""
    out: list[FileBytes | LoadFailure] = []
    for path in paths:
        if problem := name_problem(path):
            out.append(LoadFailure(shown_path(path), problem))
            continue
        try:
            data, sidecar = read_file(path, max_bytes)
            out.append(FileBytes(str(path), str(path.resolve()), data, sidecar))
        except LoadError as e:
            out.append(LoadFailure(e.path, e.reason))
        except OSError as e:
            out.append(LoadFailure(str(path), f"cannot read ({e.strerror or e})"))
    return out


def parse(files: Sequence[FileBytes]) -> list[LoadResult]:
    """Articles and failures of each file, from its bytes alone."""
    results = []
    for f in files:
        # Parsed under the resolved path so file-based ids match the local engine's on any
        # machine, then shown under the name the user gave, as the local engine does.
        one = load_bytes(Path(f.resolved), f.data, f.sidecar)

        def shown(where: str, f: FileBytes = f) -> str:
            return f.path + where[len(f.resolved) :] if where.startswith(f.resolved) else where

        results.append(LoadResult(
            [a.with_metadata(origin=shown(a.origin)) for a in one.articles],
            [LoadFailure(shown(x.path), x.reason) for x in one.failures],
            [LoadWarning(shown(x.path), x.reason) for x in one.warnings],
        ))
    return results


def plan(articles: Iterable[Article], store: Store) -> Planned:
    """Skip exact duplicates (same content hash, in the index or earlier in the batch);
    an article whose id exists with other content is a change that replaces it."""
    out = Planned([], [], [])
    seen_hashes: set[str] = set()
    seen_ids: set[str] = set()
    for a in articles:
        h = a.content_hash
        if h in seen_hashes or a.id in seen_ids or store.article_by_hash(h):
            out.duplicates.append(a.origin)
            continue
        seen_hashes.add(h)
        seen_ids.add(a.id)
        (out.changed if store.article_hash(a.id) else out.new).append(a)
    return out


def chunk(articles: Sequence[Article], settings: ChunkerSettings, count: Callable[[str], int]) -> list[tuple[Article, list[Chunk]]]:
    return [(a, chunk_article(a, settings, count)) for a in articles]


def embed(items: Sequence[tuple[Article, list[Chunk]]], embedder: Embedder, progress: Callable[[int], None] | None = None) -> list[ArticleUpdate]:
    texts = [embedding_text(a, c.text) for a, chunks in items for c in chunks]
    vectors = embedder.embed(texts, progress=progress)
    updates, row = [], 0
    for a, chunks in items:
        updates.append(ArticleUpdate(a, chunks, vectors[row : row + len(chunks)], minhash=signature(a.text)))
        row += len(chunks)
    return updates


def mark_near_duplicates(updates: Sequence[ArticleUpdate], store: Store, index: NearDuplicates) -> list[ArticleUpdate]:
    """Point each article that copies an indexed (or earlier) one at the original's root."""
    out = []
    roots: dict[str, str] = {}  # for originals earlier in this batch, not yet in the store
    for u in updates:
        assert u.minhash is not None
        original = index.find(u.minhash, exclude=u.article.id)
        root = (roots.get(original) or store.duplicate_root(original)) if original else None
        roots[u.article.id] = root or u.article.id
        out.append(replace(u, duplicate_of=root))
        index.add(u.article.id, u.minhash)
    return out


def _file_of(where: str) -> str:
    """'feed.jsonl:3' and 'list.json[2]' name records; the file is the part before."""
    return re.sub(r"(:\d+|\[\d+\])$", "", where)


def start_report(loaded: LoadResult, store: Store) -> tuple[IngestReport, list[Article], set[str]]:
    """Record the load failures, plan against the store, and record the duplicates.
    Returns the report so far, the articles to write, and the ids among them that are changes."""
    report = IngestReport()
    for f in loaded.failures:
        report.failed.append(FileFailure(f.path, f.reason))
        path = _file_of(f.path)
        where = f.path[len(path) :]
        label = f"line {where[1:]}: " if where.startswith(":") else f"record {where[1:-1]}: " if where else ""
        report.file(path).failures.append(label + f.reason)
    for w in loaded.warnings:  # the articles loaded, but the user should know what was guessed or dropped
        report.warnings.append(FileFailure(w.path, w.reason))
        path = _file_of(w.path)
        where = w.path[len(path) :]
        label = f"line {where[1:]}: " if where.startswith(":") else f"record {where[1:-1]}: " if where else ""
        report.file(path).warnings.append(label + w.reason)
    planned = plan(loaded.articles, store)
    report.duplicates = planned.duplicates
    for origin in planned.duplicates:
        report.file(origin).duplicates += 1
    return report, planned.new + planned.changed, {a.id for a in planned.changed}


def commit_all(updates: Iterable[ArticleUpdate], store: Store, report: IngestReport, changed_ids: set[str]) -> None:
    """Mark near-duplicates and commit ``updates`` in order, ``COMMIT_BATCH`` articles per
    transaction (an update with no chunks is reported as a failure). Consumes ``updates``
    lazily, so they can stream in from workers while earlier batches are written."""
    near = NearDuplicates(store)  # reads the indexed articles' bands from SQLite, holds one batch
    it = iter(updates)
    while group := list(islice(it, COMMIT_BATCH)):
        batch = []
        for u in group:
            if u.chunks:
                batch.append(u)
            else:
                report.failed.append(FileFailure(u.article.origin, "article has no text to index"))
                report.file(u.article.origin).failures.append("article has no text to index")
        marked = mark_near_duplicates(batch, store, near)
        store.commit(marked)
        near.committed()
        report.near_duplicates.update({u.article.id: u.duplicate_of for u in marked if u.duplicate_of})
        for u in batch:
            a = u.article
            if a.id in changed_ids:
                report.updated.append(a.id)
                report.file(a.origin).updated += 1
            else:
                report.added.append(a.id)
                report.file(a.origin).added += 1
            report.chunks += len(u.chunks)


def _embedded(chunked: Sequence[tuple[Article, list[Chunk]]], embedder: Embedder, tick: Callable[[int], None]) -> Iterator[ArticleUpdate]:
    """Updates in order, embedded one commit batch at a time (articles without chunks pass through empty)."""
    for start in range(0, len(chunked), COMMIT_BATCH):
        part = chunked[start : start + COMMIT_BATCH]
        done = iter(embed([(a, c) for a, c in part if c], embedder, tick))
        for a, c in part:
            yield next(done) if c else ArticleUpdate(a, [], np.zeros((0, embedder.dim), dtype=np.float32))


def ingest(
    paths: Iterable[str | Path],
    store: Store,
    embedder: Embedder,
    max_file_bytes: int,
    progress: Progress | None = None,
    follow_symlinks: bool = False,
) -> IngestReport:
    """The local engine: every stage in this process."""
    started = time.perf_counter()
    loaded = load_paths(paths, max_bytes=max_file_bytes, follow_symlinks=follow_symlinks)
    report, todo, changed_ids = start_report(loaded, store)
    chunked = chunk(todo, store.manifest.chunker, embedder.count_tokens)
    total = sum(len(c) for _, c in chunked)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    if progress:
        progress(0, total)
    commit_all(_embedded(chunked, embedder, tick), store, report, changed_ids)
    report.seconds = time.perf_counter() - started
    return report
