"""The performance features at work: the store switching to the approximate index past
RAG_ANN_THRESHOLD (search, date filters, removal, memory-mapped reopen, writes after it),
the embedder's batching and int8 backend, and the llama.cpp prefix cache. No timings."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from rag import RAG, Settings
from rag.index import vectors as vector_index
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder


def _articles(path: Path, n: int, start: int = 0) -> Path:
    rows = []
    for i in range(start, start + n):
        topic = ["harbour", "election", "vaccine", "drought", "railway"][i % 5]
        rows.append({"id": f"a{i}", "title": f"{topic} report {i}", "published_at": (date(2024, 1, 1) + timedelta(days=i)).isoformat(),
                     "body": f"The {topic} story number {i} mentions token{i} and the {topic} committee. " * 3})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def ivf_rag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RAG:
    monkeypatch.setenv("RAG_ANN_THRESHOLD", "40")
    settings = Settings(index_dir=tmp_path / "index", seeds_dir=None)
    rag = RAG.open(settings=settings, embedder=HashingEmbedder(dim=1024), llm=ExtractiveFakeGenerator())
    yield rag
    rag.close()


def test_store_moves_to_the_approximate_index_past_the_threshold(ivf_rag: RAG, tmp_path: Path) -> None:
    ivf_rag.add([_articles(tmp_path / "few.jsonl", 10)])
    assert vector_index.kind_of(ivf_rag.store._index) == "exact"
    ivf_rag.add([_articles(tmp_path / "more.jsonl", 60, start=10)])
    assert ivf_rag.store.counts()[1] >= 40
    assert vector_index.kind_of(ivf_rag.store._index) == "ivf"
    hits = ivf_rag.search("token37", k=3, mode="dense")
    assert hits and hits[0].article.title == "vaccine report 37"


def test_date_filter_and_removal_work_on_the_approximate_index(ivf_rag: RAG, tmp_path: Path) -> None:
    ivf_rag.add([_articles(tmp_path / "a.jsonl", 70)])
    assert vector_index.kind_of(ivf_rag.store._index) == "ivf"
    hits = ivf_rag.search("harbour committee", k=5, since="2024-02-01", until="2024-02-10", mode="dense")
    assert hits and all(date(2024, 2, 1) <= h.article.published <= date(2024, 2, 10) for h in hits)
    target = ivf_rag.search("token42", k=1, mode="dense")[0].article
    ivf_rag.remove(target.id)
    assert all(h.article.id != target.id for h in ivf_rag.search("token42", k=10, mode="dense"))


def test_reopened_index_is_memory_mapped_and_still_writable(ivf_rag: RAG, tmp_path: Path) -> None:
    ivf_rag.add([_articles(tmp_path / "a.jsonl", 70)])
    settings = ivf_rag.settings
    ivf_rag.close()
    again = RAG.open(settings=settings, embedder=HashingEmbedder(dim=1024), llm=ExtractiveFakeGenerator())
    try:
        assert vector_index.is_mapped(again.store._index)
        assert again.search("token12", k=1, mode="dense")[0].article.title == "vaccine report 12"
        again.add([_articles(tmp_path / "b.jsonl", 5, start=100)])  # must not write into the mapping
        assert not vector_index.is_mapped(again.store._index)
        assert again.search("token103", k=1, mode="dense")[0].article.title == "drought report 103"
    finally:
        again.close()


def test_falling_below_half_the_threshold_goes_back_to_exact(ivf_rag: RAG, tmp_path: Path) -> None:
    ivf_rag.add([_articles(tmp_path / "a.jsonl", 70)])
    assert vector_index.kind_of(ivf_rag.store._index) == "ivf"
    ivf_rag.remove([a.id for a in ivf_rag.articles()][:65])
    assert vector_index.kind_of(ivf_rag.store._index) == "exact"
    assert ivf_rag.store._index.ntotal == ivf_rag.store.counts()[1]


@pytest.mark.real_models
def test_embedder_keeps_input_order_and_int8_stays_close(minilm) -> None:
    from rag.models.embedding import load_embedder

    texts = ["short", "a much longer sentence about the harbour strike and its consequences " * 4, "mid length text here"] * 7
    batched = minilm.embed(texts)
    one_by_one = np.stack([minilm.embed([t])[0] for t in texts[:3]])  # a single query runs on one thread
    # bf16 (where the CPU has it) rounds differently with other padding: the same direction, not the same bits.
    assert np.sum(batched[:3] * one_by_one, axis=1).min() > 0.9995
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    int8 = load_embedder("all-MiniLM-L6-v2", backend="int8")
    assert int8.backend == "int8" and int8.name == f"{minilm.name}+int8"  # an index records the backend
    assert load_embedder(int8.name).backend == "int8"  # and the recorded name loads it again
    cos = np.sum(int8.embed(texts) * batched, axis=1)
    assert cos.min() > 0.85 and not np.allclose(cos, 1.0, atol=1e-6)  # really quantized, still close
    with pytest.raises(ValueError):
        load_embedder("all-MiniLM-L6-v2", backend="onnx")  # type: ignore[arg-type]


@pytest.mark.real_models
def test_warm_system_prompt_is_reused_as_a_prefix(smollm) -> None:
    system = {"role": "system", "content": "Answer only from the numbered sources, citing them."}
    smollm.warm([system, {"role": "user", "content": ""}])
    llm = smollm.load()
    cached = list(llm._input_ids)
    assert len(cached) > 5
    reply = "".join(smollm.stream([system, {"role": "user", "content": "Say hello."}], max_tokens=4, temperature=0.0))
    assert reply
    after = list(llm._input_ids)
    shared = next((i for i, (a, b) in enumerate(zip(cached, after)) if a != b), min(len(cached), len(after)))
    # The cache still starts with the whole system message (it diverges only at the user's words).
    assert shared >= len(llm.tokenize(system["content"].encode(), add_bos=False)) + 2


def test_caching_embedder_returns_the_same_vectors_and_embeds_only_new_texts():
    import numpy as np

    from rag.models.embedding import CachingEmbedder
    from rag.testing import HashingEmbedder

    class Counting(HashingEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[str] = []

        def embed(self, texts, progress=None):
            self.seen += list(texts)
            return super().embed(texts, progress)

    inner = Counting()
    cache = CachingEmbedder(inner, max_items=3)
    texts = ["the harbour reopened", "a storm hit the coast", "the harbour reopened"]
    assert np.array_equal(cache.embed(texts), HashingEmbedder().embed(texts))
    assert inner.seen == ["the harbour reopened", "a storm hit the coast"]  # each text once
    cache.embed(["a storm hit the coast", "ferries resumed"])
    assert inner.seen[2:] == ["ferries resumed"]
    cache.embed(["x", "y"])  # pushes out the least recently used
    assert len(cache._vectors) == 3 and "the harbour reopened" not in cache._vectors
    assert cache.embed([]).shape == (0, inner.dim)
    assert cache.count_tokens("a b c") == 3 and cache.count_tokens("a b c") == 3


@pytest.mark.real_models
def test_bf16_embeddings_match_float32(minilm, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.models.embedding import load_embedder

    monkeypatch.setenv("RAG_EMBED_DTYPE", "float32")
    fp32 = load_embedder("all-MiniLM-L6-v2")
    monkeypatch.setenv("RAG_EMBED_DTYPE", "bfloat16")
    bf16 = load_embedder("all-MiniLM-L6-v2")
    assert (fp32.dtype, bf16.dtype) == ("float32", "bfloat16") and fp32.name == bf16.name == minilm.name
    texts = ["Türkiye proposed a guarantor system.", "The harbour reopened after the storm, officials said."] * 20
    a, b = fp32.embed(texts), bf16.embed(texts)
    cos = np.sum(a * b, axis=1)
    assert cos.min() > 0.9995 and not np.array_equal(a, b)  # really bf16, and the same vectors for search
    monkeypatch.setenv("RAG_EMBED_DTYPE", "fp8")
    with pytest.raises(ValueError, match="embed_dtype"):  # Settings.embed_dtype, read from RAG_EMBED_DTYPE
        load_embedder("all-MiniLM-L6-v2")
