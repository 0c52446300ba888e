"""Retrieval over real text: an index of ~N chunks of news sentences (see common.make_articles)
built by our ingest, searched with the dev-set questions, against LangChain's FAISS vector store
holding the very same passages and vectors (so only the search path differs). Alternating,
p50/p95 per query, each side embedding the question itself.

    .venv/bin/python benchmarks/real_search.py --chunks 10000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import Results, dev_questions, make_articles, median, pct, rss_mb, timed, write_jsonl

CHUNKS_PER_ARTICLE = 3.9  # measured for make_articles with the default chunker


def run(results: Results, chunks: int, peer: bool = True) -> dict[str, Any]:
    from rag import RAG, Settings
    from rag.models.embedding import load_embedder
    from rag.testing import ExtractiveFakeGenerator

    tmp = tempfile.TemporaryDirectory()
    src = write_jsonl(make_articles(int(chunks / CHUNKS_PER_ARTICLE), seed=1), Path(tmp.name) / "a.jsonl")
    embedder = load_embedder("all-MiniLM-L6-v2")
    settings = Settings(index_dir=Path(tmp.name) / "index", seeds_dir=None)
    rag = RAG.open(settings=settings, embedder=embedder, llm=ExtractiveFakeGenerator(), seed=False)
    before = rss_mb()
    ingest_s, report = timed(lambda: rag.add([src]))
    n = report.chunks
    results.add("ingest", f"ours: full ingest of {n:,} real-text chunks", f"{ingest_s:.0f} s ({n / ingest_s:.1f} chunks/s)")
    rag.close()
    rag = RAG.open(settings=settings, embedder=embedder, llm=ExtractiveFakeGenerator(), seed=False)  # mapped index
    questions = dev_questions()
    lat: dict[str, list[float]] = {"dense": [], "hybrid": [], "lc": []}
    lc = None
    if peer:
        from langchain_community.vectorstores import FAISS
        from langchain_peer import hf_embeddings

        rows = rag.store._db.execute("SELECT text, vector FROM chunks").fetchall()
        lc = FAISS.from_embeddings([(r[0], list(np.frombuffer(r[1], dtype=np.float32))) for r in rows], hf_embeddings())
        lc.similarity_search(questions[0], k=5)
    rag.search(questions[0], k=5, mode="dense")
    for i, q in enumerate(questions * 2):
        for who in (("dense", "hybrid", "lc") if i % 2 == 0 else ("lc", "hybrid", "dense")):
            if who == "lc" and lc is None:
                continue
            rag.clear_caches()  # each side embeds every question: no cache hits for us
            t0 = time.perf_counter()
            if who == "lc":
                lc.similarity_search(q, k=5)  # type: ignore[union-attr]
            else:
                rag.search(q, k=5, mode=who)  # type: ignore[arg-type]
            lat[who].append((time.perf_counter() - t0) * 1000)
    after = rss_mb()
    rag.close()
    tmp.cleanup()
    label = f"{n:,} real-text chunks (exact)"
    for who, name in (("dense", "ours dense"), ("hybrid", "ours hybrid (dense+BM25, the default)"), ("lc", "LangChain FAISS")):
        if lat[who]:
            results.add("search", f"{label}: {name} p50 / p95 incl. query embedding",
                        f"{median(lat[who]):.1f} / {pct(lat[who], 0.95):.1f} ms")
    results.add("search", f"{label}: process RSS growth (index, SQLite, peer store)", f"+{after - before:.0f} MB")
    out: dict[str, Any] = {"chunks": n, "ingest_s": ingest_s, "dense_p50": median(lat["dense"])}
    if lat["lc"]:
        ratio = median(lat["dense"]) / median(lat["lc"])
        results.add("peer", f"retrieval p50 at {n:,} chunks: ours dense / LangChain", f"{median(lat['dense']):.1f} / {median(lat['lc']):.1f} ms",
                    f"{ratio:.2f}", "< 1", ratio < 1)
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--chunks", type=int, default=10_000)
    args = p.parse_args()
    r = Results()
    run(r, args.chunks)
    print(r.markdown())
