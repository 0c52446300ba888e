"""Shared fixtures: fast fakes for logic tests, and the real models (loaded once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag import RAG, Settings
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SEEDS = ROOT / "seeds"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings pointing at a temporary index; no automatic seeding."""
    return Settings(index_dir=tmp_path / "index", seeds_dir=None)


@pytest.fixture
def fake_rag(settings: Settings) -> RAG:
    """A RAG with the deterministic hashing embedder and extractive fake LLM: instant."""
    rag = RAG.open(settings=settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())
    yield rag
    rag.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A writable copy of tests/data."""
    target = tmp_path / "data"
    shutil.copytree(DATA, target)
    return target


@pytest.fixture(scope="session")
def minilm():
    from rag.models.embedding import load_embedder

    return load_embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def smollm():
    from rag.models.llama import LlamaCppGenerator
    from rag.models.registry import resolve_llm

    settings = Settings()
    return LlamaCppGenerator("smollm2-135m-instruct", resolve_llm("smollm2-135m-instruct", settings.cache_dir), n_ctx=4096)


@pytest.fixture(scope="session")
def qwen():
    from rag.models.llama import LlamaCppGenerator
    from rag.models.registry import resolve_llm

    settings = Settings()
    return LlamaCppGenerator("qwen2.5-coder-1.5b-instruct", resolve_llm("qwen2.5-coder-1.5b-instruct", settings.cache_dir))


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, minilm) -> Path:
    """The seed article indexed once with the real embedder."""
    index = tmp_path_factory.mktemp("seed-index")
    rag = RAG.open(settings=Settings(index_dir=index, seeds_dir=SEEDS), embedder=minilm, llm=ExtractiveFakeGenerator())
    rag.close()
    return index
