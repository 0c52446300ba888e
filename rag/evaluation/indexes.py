"""Evaluation indexes: built once per corpus, embedder, chunker and index-shaping code, cached."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from rag.api import RAG
from rag.errors import RagError
from rag.models.embedding import Embedder
from rag.models.llama import Generator
from rag.settings import Settings

_INDEX_SHAPING_MODULES = ("documents.chunking", "documents.dedup")


def eval_index_key(articles: Path, settings: Settings, embedder: Embedder | None = None) -> str:
    """The cache key of an evaluation index: the articles, the embedder, the chunker settings and
    the source of the code that shapes the stored index."""
    import importlib

    key = hashlib.sha256(articles.read_bytes())
    key.update(f"{settings.embedder}|{settings.chunk_tokens}|{settings.chunk_overlap_tokens}".encode())
    if embedder is not None:
        key.update(embedder.name.encode())
    for name in _INDEX_SHAPING_MODULES:
        module = importlib.import_module(f"rag.{name}")
        key.update(Path(module.__file__ or "").read_bytes())
    return key.hexdigest()[:16]


def open_eval_index(
    articles: str | Path,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    llm: Generator | str | None = None,
) -> RAG:
    """A RAG over ``articles`` (JSONL), built once into the cache and reused by later runs with the
    same articles, embedder and chunking."""
    settings = settings or Settings()
    articles = Path(articles)
    index_dir = settings.cache_dir / "eval-indexes" / eval_index_key(articles, settings, embedder)
    # An evaluation corpus is one big JSONL file the user named on purpose: the per-file size
    # limit (meant for uploads) does not apply to it.
    max_bytes = max(settings.max_file_bytes, articles.stat().st_size)
    settings = settings.model_copy(update={"index_dir": index_dir, "seeds_dir": None, "max_file_bytes": max_bytes})
    # A build that was interrupted (it takes many minutes on big corpora) leaves this mark, and
    # its index is built again rather than measured half-full.
    building = index_dir.with_name(index_dir.name + ".building")
    if building.exists():
        shutil.rmtree(index_dir, ignore_errors=True)
    rag = RAG.open(settings=settings, embedder=embedder, llm=llm, seed=False)
    if rag.info().articles == 0:
        building.touch()
        report = rag.add([articles])
        if report.failed:
            raise RagError(f"{len(report.failed)} articles could not be loaded, e.g. {report.failed[0].path}: {report.failed[0].reason}")
        building.unlink()
    return rag
