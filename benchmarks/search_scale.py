"""Search at scale with rag.index.vectors: build time, file size, memory after a memory-mapped
load, recall@10 against exact search, and p50/p95 latency of one query, at 100k and 1M
synthetic vectors (clustered unit vectors, 384 dims like MiniLM; queries are held-out points).

    .venv/bin/python benchmarks/search_scale.py --sizes 100000,1000000
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import Results, median, pct, rss_mb, timed

DIM = 384


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around n/100 topic centres (neighbours at cosine ~0.5, strangers ~0), made
    in blocks so 1M vectors need no more than their own 1.5 GB."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(8, n // 100), DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = centres[rng.integers(0, len(centres), m)] + rng.standard_normal((m, DIM), dtype=np.float32) / np.sqrt(DIM)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def exact_top(x: np.ndarray, queries: np.ndarray, k: int, allowed_mask: np.ndarray | None = None) -> np.ndarray:
    scores = queries @ x.T
    if allowed_mask is not None:
        scores[:, ~allowed_mask] = -np.inf
    return np.argsort(-scores, axis=1)[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def latencies(index: Any, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[float]:
    from rag.index import vectors as vi

    out = []
    for q in queries:
        start = time.perf_counter()
        vi.search(index, q, k, allowed)
        out.append((time.perf_counter() - start) * 1000)
    return out


def run_size(results: Results, n: int, n_queries: int = 100) -> dict[str, Any]:
    import faiss

    from rag.index import vectors as vi

    faiss.omp_set_num_threads(2)
    x = clustered(n + n_queries)
    queries, x = x[n:].copy(), x[:n]
    ids = np.arange(n, dtype=np.int64)
    build_s, index = timed(lambda x=x: vi.build(x, ids))
    kind = vi.kind_of(index)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.faiss"
        vi.save(index, path)
        size_mb = path.stat().st_size / 1e6
        del index
        gc.collect()
        before = rss_mb()
        load_s, mapped = timed(lambda: vi.load(path))
        after_load = rss_mb()
        truth = exact_top(x, queries, 10)
        found = vi.search(mapped, queries, 10)[1]
        rec = recall(found, truth)
        mask = np.random.default_rng(1).random(n) < 0.05  # a date filter keeping 5%
        allowed = ids[mask]
        rec_f = recall(vi.search(mapped, queries, 10, allowed)[1], exact_top(x, queries, 10, mask))
        del x
        gc.collect()
        lat = latencies(mapped, queries, 10)
        lat_f = latencies(mapped, queries[:30], 10, allowed)
        after_search = rss_mb()
        del mapped
    p50, p95 = median(lat), pct(lat, 0.95)
    label = f"{n:,} vectors ({kind})"
    results.add("search", f"{label}: build / mmap load", f"{build_s:.1f} s / {load_s * 1000:.0f} ms")
    results.add("search", f"{label}: file / RSS after load / after 100 queries",
                f"{size_mb:.0f} MB / +{after_load - before:.0f} MB / +{after_search - before:.0f} MB")
    results.add("search", f"{label}: recall@10 vs exact (no filter / 5% id filter)", f"{rec:.3f} / {rec_f:.3f}", "",
                ">= 0.95" if kind == "ivf" else "", (min(rec, rec_f) >= 0.95) if kind == "ivf" else None)
    results.add("search", f"{label}: query p50 / p95 (filtered p50)", f"{p50:.1f} / {p95:.1f} ms ({median(lat_f):.1f} ms)", "",
                "p50 < 50 ms" if n == 100_000 else "", (p50 < 50) if n == 100_000 else None)
    return {"n": n, "kind": kind, "build_s": build_s, "p50_ms": p50, "p95_ms": p95, "recall": rec, "recall_filtered": rec_f}


def run(results: Results, sizes: list[int]) -> list[dict[str, Any]]:
    return [run_size(results, n) for n in sizes]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", default="100000,1000000")
    args = p.parse_args()
    r = Results()
    run(r, [int(s) for s in args.sizes.split(",")])
    print(r.markdown())
