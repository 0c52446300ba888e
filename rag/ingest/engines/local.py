"""The local engine: every stage in this process, with the embedder already loaded here.

It loads all files first and chunks every planned article before embedding any, so progress
counts chunks against a total known from the start (the archive is held whole: for archives
beyond memory, use the Ray engine, which streams)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np

from rag.documents.articles import Article
from rag.documents.chunking import ChunkerSettings
from rag.index.store import ArticleUpdate
from rag.ingest.engines import Progress
from rag.ingest.formats import LoadResult, load_paths
from rag.ingest.stages import chunk, embed
from rag.models.embedding import Embedder


class LocalEngine:
    """Loads, chunks and embeds in this process."""

    name = "local"

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._chunker: ChunkerSettings | None = None

    def running(self, chunker: ChunkerSettings) -> AbstractContextManager[None]:
        self._chunker = chunker
        return nullcontext()

    def load(self, paths: Iterable[str | Path], max_bytes: int, follow_symlinks: bool) -> Iterator[LoadResult]:
        yield load_paths(paths, max_bytes=max_bytes, follow_symlinks=follow_symlinks)

    def embed(self, planned: Iterable[list[Article]], commit_batch: int, progress: Progress | None) -> Iterator[ArticleUpdate]:
        assert self._chunker is not None, "embed() runs inside running()"
        chunked = chunk([a for window in planned for a in window], self._chunker, self.embedder.count_tokens)
        total = sum(len(c) for _, c in chunked)
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        if progress:
            progress(0, total)
        empty = np.zeros((0, self.embedder.dim), dtype=np.float32)
        for start in range(0, len(chunked), commit_batch):  # one commit batch embedded at a time
            part = chunked[start : start + commit_batch]
            embedded = iter(embed([(a, c) for a, c in part if c], self.embedder, tick))
            for a, c in part:
                yield next(embedded) if c else ArticleUpdate(a, [], empty)
