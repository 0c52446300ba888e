"""The ingest pipeline as plain stage functions (batch in, batch out, no hidden state), so a
distributed engine can map them over batches later: load -> dedup -> chunk -> embed -> commit."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .articles import Article
from .chunking import Chunk, ChunkerSettings, chunk_article, embedding_text
from .dedup import NearDuplicates, signature
from .embedding import Embedder
from .loaders import load_paths
from .results import FileFailure, IngestReport
from .store import ArticleUpdate, Store

Progress = Callable[[int, int], None]  # (chunks embedded so far, total chunks)
COMMIT_BATCH = 256  # articles per transaction: bounds memory and the work a crash can lose


@dataclass
class Planned:
    """Articles that need writing, split by what they are to the index."""

    new: list[Article]
    changed: list[Article]
    duplicates: list[str]


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


def ingest(
    paths: Iterable[str | Path],
    store: Store,
    embedder: Embedder,
    max_file_bytes: int,
    progress: Progress | None = None,
) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport()
    loaded = load_paths(paths, max_bytes=max_file_bytes)
    for f in loaded.failures:
        report.failed.append(FileFailure(f.path, f.reason))
        path = _file_of(f.path)
        where = f.path[len(path) :]
        label = f"line {where[1:]}: " if where.startswith(":") else f"record {where[1:-1]}: " if where else ""
        report.file(path).failures.append(label + f.reason)
    planned = plan(loaded.articles, store)
    report.duplicates = planned.duplicates
    for origin in planned.duplicates:
        report.file(origin).duplicates += 1
    todo = planned.new + planned.changed
    changed_ids = {a.id for a in planned.changed}
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
    near: NearDuplicates | None = None
    for start in range(0, len(chunked), COMMIT_BATCH):
        batch = [(a, c) for a, c in chunked[start : start + COMMIT_BATCH] if c]
        for a, c in chunked[start : start + COMMIT_BATCH]:
            if not c:
                report.failed.append(FileFailure(a.origin, "article has no text to index"))
                report.file(a.origin).failures.append("article has no text to index")
        if near is None and batch:
            near = NearDuplicates()
            near.add_all(store.signatures())
        updates = mark_near_duplicates(embed(batch, embedder, tick), store, near) if batch else []
        store.commit(updates)
        report.near_duplicates.update({u.article.id: u.duplicate_of for u in updates if u.duplicate_of})
        for a, c in batch:
            if a.id in changed_ids:
                report.updated.append(a.id)
                report.file(a.origin).updated += 1
            else:
                report.added.append(a.id)
                report.file(a.origin).added += 1
            report.chunks += len(c)
    report.seconds = time.perf_counter() - started
    return report
