"""The ingest stages as plain functions (a batch in, a batch out, no hidden state), so any engine
can map them over batches wherever it runs them:

    read -> parse -> (plan: the driver) -> chunk -> embed -> (near-duplicates, commit: the driver)

``read`` and ``parse`` are split so bytes read on one machine can be parsed on another."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rag.documents.articles import Article
from rag.documents.chunking import Chunk, ChunkerSettings, chunk_article, embedding_text
from rag.documents.dedup import signature
from rag.errors import LoadError
from rag.index.near_duplicates import NearDuplicates
from rag.index.store import ArticleUpdate, Store
from rag.ingest.formats import LoadFailure, LoadResult, LoadWarning, load_bytes, name_problem, read_file, shown_path
from rag.models.embedding import Embedder


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
            out.append(LoadFailure.of(shown_path(path), problem))
            continue
        try:
            data, sidecar = read_file(path, max_bytes)
            out.append(FileBytes(str(path), str(path.resolve()), data, sidecar))
        except LoadError as e:
            out.append(LoadFailure.of(e.path, e.reason))
        except OSError as e:
            out.append(LoadFailure.of(path, f"cannot read ({e.strerror or e})"))
    return out


def parse(files: Sequence[FileBytes]) -> list[LoadResult]:
    """Articles and failures of each file, from its bytes alone."""
    results = []
    for f in files:
        # Parsed under the resolved path so file-based ids match the local engine's on any
        # machine, then shown under the name the user gave, as the local engine does.
        one = load_bytes(Path(f.resolved), f.data, f.sidecar)
        results.append(LoadResult(
            [a.with_metadata(origin=f.path) if a.origin == f.resolved else a for a in one.articles],
            [LoadFailure(x.location.moved(f.path) if x.location.file == f.resolved else x.location, x.reason)
             for x in one.failures],
            [LoadWarning(x.location.moved(f.path) if x.location.file == f.resolved else x.location, x.reason)
             for x in one.warnings],
        ))
    return results


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
