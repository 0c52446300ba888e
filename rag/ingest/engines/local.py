"""The local engine: every stage in this process, with the embedder already loaded here.

Like the Ray engine it streams: files are loaded ``WINDOW_FILES`` at a time, and the next window
is read only once this one's articles are committed, so the archive is never held whole.
Progress counts chunks; its total is every planned chunk of the windows loaded so far (for up to
``WINDOW_FILES`` files, as for an upload, the whole total from the start)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np

from rag.documents.articles import Article
from rag.documents.chunking import ChunkerSettings
from rag.index.store import ArticleUpdate
from rag.ingest.engines import Progress
from rag.ingest.formats import LoadResult, load_windows
from rag.ingest.stages import chunk, embed
from rag.models.embedding import Embedder

WINDOW_FILES = 512  # files loaded at a time: bounds the articles held, still many commit batches each


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
        return load_windows(paths, WINDOW_FILES, max_bytes, follow_symlinks)

    def embed(self, planned: Iterable[list[Article]], commit_batch: int, progress: Progress | None) -> Iterator[ArticleUpdate]:
        assert self._chunker is not None, "embed() runs inside running()"
        done = total = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        empty = np.zeros((0, self.embedder.dim), dtype=np.float32)
        for window in planned:  # the driver plans the next window only when this one is used up
            chunked = chunk(window, self._chunker, self.embedder.count_tokens)
            total += sum(len(c) for _, c in chunked)
            if progress:
                progress(done, total)
            for start in range(0, len(chunked), commit_batch):  # one commit batch embedded at a time
                part = chunked[start : start + commit_batch]
                embedded = iter(embed([(a, c) for a, c in part if c], self.embedder, tick))
                for a, c in part:
                    yield next(embedded) if c else ArticleUpdate(a, [], empty)
