"""The FAISS index factory, with real FAISS: kind by size, recall of the approximate index
against exact search (with and without an id filter), removal, and save + memory-mapped load."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.index import vectors as vi

DIM = 32


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around n/50 centres: like sentence embeddings, neighbours share a topic."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(4, n // 50), DIM)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, DIM)).astype(np.float32) * 0.5
    x = np.ascontiguousarray(x, dtype=np.float32)
    faiss.normalize_L2(x)
    return x


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t[t >= 0])) / max(1, (t >= 0).sum()) for f, t in zip(found, truth)]))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = clustered(20_100)
    return x[:20_000], np.arange(20_000, dtype=np.int64) * 3 + 5, x[20_000:]


def test_the_kind_follows_the_threshold(data, monkeypatch) -> None:
    x, ids, _ = data
    assert vi.kind_of(vi.build(x[:500], ids[:500], threshold=1000)) == "exact"
    assert vi.kind_of(vi.build(x[:2000], ids[:2000], threshold=1000)) == "ivf"
    monkeypatch.setenv("RAG_ANN_THRESHOLD", "100")
    assert vi.kind_for(99) == "exact" and vi.kind_for(100) == "ivf"


def test_approximate_recall_is_at_least_095_against_exact(data) -> None:
    x, ids, queries = data
    ivf = vi.build(x, ids, threshold=1)
    exact = vi.build(x, ids, threshold=10**9)
    assert vi.kind_of(ivf) == "ivf" and vi.kind_of(exact) == "exact"
    _, truth = vi.search(exact, queries, 10)
    _, found = vi.search(ivf, queries, 10)
    assert recall(found, truth) >= 0.95
    assert set(found.ravel()) <= set(ids)  # ids come back as given, not as row numbers


@pytest.mark.parametrize("share", [0.5, 0.01])
def test_recall_holds_with_an_id_filter(data, share: float) -> None:
    x, ids, queries = data
    ivf = vi.build(x, ids, threshold=1)
    exact = vi.build(x, ids, threshold=10**9)
    allowed = ids[np.random.default_rng(2).random(len(ids)) < share]
    _, truth = vi.search(exact, queries, 10, allowed)
    _, found = vi.search(ivf, queries, 10, allowed)
    assert set(found.ravel()) - {-1} <= set(allowed)
    assert recall(found, truth) >= 0.95


@pytest.mark.parametrize("threshold", [1, 10**9])
def test_removed_ids_are_never_found(data, threshold: int) -> None:
    x, ids, _ = data
    index = vi.build(x[:5000], ids[:5000], threshold=threshold)
    gone = ids[:100]
    assert index.remove_ids(gone) == 100
    _, found = vi.search(index, x[:100], 5)
    assert not set(found.ravel()) & set(gone)
    assert index.ntotal == 4900


@pytest.mark.parametrize("threshold", [1, 10**9])
def test_save_and_memory_mapped_load_give_the_same_results(tmp_path: Path, data, threshold: int) -> None:
    x, ids, queries = data
    index = vi.build(x[:5000], ids[:5000], threshold=threshold)
    path = tmp_path / "v.faiss"
    vi.save(index, path)
    mapped = vi.load(path)
    assert vi.is_mapped(mapped) and vi.kind_of(mapped) == vi.kind_of(index)
    assert np.array_equal(vi.search(mapped, queries, 10)[1], vi.search(index, queries, 10)[1])
    # A mapped index is read-only: changes go to a writable copy.
    copy = vi.writable(mapped, path)
    assert copy is not mapped and not vi.is_mapped(copy)
    copy.remove_ids(ids[:10])
    copy.add_with_ids(x[5000:5010], ids[5000:5010])
    assert copy.ntotal == 5000
    assert vi.writable(copy, path) is copy


def test_rebuild_is_asked_for_when_the_size_no_longer_fits(data) -> None:
    x, ids, _ = data
    small = vi.build(x[:900], ids[:900], threshold=1000)
    assert not vi.needs_rebuild(small, threshold=1000)
    small.add_with_ids(x[900:1100], ids[900:1100])
    assert vi.needs_rebuild(small, threshold=1000)
    big = vi.build(x[:2000], ids[:2000], threshold=1000)
    assert not vi.needs_rebuild(big, threshold=1000)
    big.remove_ids(ids[:1600])
    assert vi.needs_rebuild(big, threshold=1000)  # fell below half the threshold


def test_empty_search_and_k_larger_than_the_index() -> None:
    x = clustered(20)
    index = vi.build(x, np.arange(20, dtype=np.int64), threshold=1000)
    _scores, found = vi.search(index, x[:1], 50)
    assert found.shape == (1, 20) and found[0, 0] == 0
