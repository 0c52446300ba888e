"""Where the ingest stages run: ``local`` (this process) or ``ray`` (actors on a Ray cluster),
behind one :class:`Engine` protocol. The driver (:func:`rag.ingest.driver.ingest`) does the rest
once for both: duplicate planning, failure mapping, per-file results, near-duplicates, commits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from rag.documents.articles import Article
from rag.documents.chunking import ChunkerSettings
from rag.index.store import ArticleUpdate
from rag.ingest.formats import LoadResult

Progress = Callable[[int, int], None]  # (done, total): chunks embedded locally, articles on Ray


class Engine(Protocol):
    """Runs read+parse and chunk+embed; never writes the index (only the driver does)."""

    name: str  # reported as IngestReport.engine

    def running(self, chunker: ChunkerSettings) -> AbstractContextManager[None]:
        """Start the engine's workers for one ingest and stop them after it (errors inside
        become :class:`rag.errors.RagError` that say where they came from)."""
        ...

    def load(self, paths: Iterable[str | Path], max_bytes: int, follow_symlinks: bool) -> Iterator[LoadResult]:
        """The files under ``paths``, loaded, in windows of whole files in file order (each
        window's articles, then its failures and warnings, as ``load_paths`` orders them).
        The next window is read only when this one has been taken."""
        ...

    def embed(
        self, planned: Iterable[list[Article]], commit_batch: int, progress: Progress | None
    ) -> Iterator[ArticleUpdate]:
        """Chunk and embed each window of ``planned`` articles; one update per article, in
        order (an article without chunks comes back with none). ``planned`` is pulled lazily;
        enough work is kept in flight that ``commit_batch`` updates are ready when needed."""
        ...
