"""Ingest throughput: our embedder against naive SentenceTransformer.encode loops, the int8
backend, our full ingest (load, chunk, embed, SQLite + FAISS) and the LangChain peer's
FAISS.from_texts over the same chunk texts. Embedding variants alternate, medians reported.

    .venv/bin/python benchmarks/ingest_speed.py --articles 60 --repeats 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from common import Results, make_articles, median, timed, write_jsonl


def chunk_texts(src: Path, embedder: Any) -> list[str]:
    """Exactly the texts our ingest embeds (headline + date + passage), loaded and chunked as it does."""
    from rag.documents.chunking import ChunkerSettings, embedding_text
    from rag.ingest.formats import load_paths
    from rag.ingest.stages import chunk

    articles = load_paths([src], max_bytes=1 << 30).articles
    return [embedding_text(a, c.text) for a, chunks in chunk(articles, ChunkerSettings(), embedder.count_tokens) for c in chunks]


def run(results: Results, articles: int, repeats: int, peer: bool = True) -> dict[str, Any]:
    from rag import RAG, Settings
    from rag.models.embedding import load_embedder
    from rag.testing import ExtractiveFakeGenerator

    rows = make_articles(articles)
    ours = load_embedder("all-MiniLM-L6-v2")
    int8 = load_embedder("all-MiniLM-L6-v2", backend="int8")
    from sentence_transformers import SentenceTransformer

    from rag.models.registry import resolve_embedder

    # The naive baseline: the same MiniLM folder loaded plainly, as a user would (float32).
    model = SentenceTransformer(str(resolve_embedder("all-MiniLM-L6-v2")[1]), device="cpu", local_files_only=True)
    tmpdir = tempfile.TemporaryDirectory()
    texts = chunk_texts(write_jsonl(rows, Path(tmpdir.name) / "articles.jsonl"), ours)
    n = len(texts)

    def naive_batches() -> Any:  # batches of 32 in document order
        return np.concatenate([model.encode(texts[i : i + 32], batch_size=32, normalize_embeddings=True)
                               for i in range(0, n, 32)])

    variants = {"naive encode loop (batches of 32, in order)": naive_batches,
                f"ours (torch, {ours.dtype})": lambda: ours.embed(texts),  # type: ignore[attr-defined]
                "ours (int8 backend)": lambda: int8.embed(texts)}
    default = f"ours (torch, {ours.dtype})"  # type: ignore[attr-defined]
    times: dict[str, list[float]] = {k: [] for k in variants}
    vecs: dict[str, Any] = {}
    ours.embed(texts[:8]), int8.embed(texts[:8]), model.encode(texts[:8])  # warm up every path
    for r in range(repeats):
        for name, fn in list(variants.items())[:: 1 if r % 2 == 0 else -1]:  # alternate the order
            seconds, vecs[name] = timed(fn)
            times[name].append(seconds)
    base = median(times["naive encode loop (batches of 32, in order)"])
    for name in variants:
        t = median(times[name])
        results.add("ingest", f"embed {n} chunks: {name}", f"{n / t:.1f} chunks/s",
                    f"{base / t:.2f}x naive" if name.startswith("ours") else "",
                    ">= 1.5x naive" if name == default else "",
                    (base / t >= 1.5) if name == default else None)
    naive = vecs["naive encode loop (batches of 32, in order)"]
    for name in variants:
        if name.startswith("ours"):
            cos = np.sum(vecs[name] * naive, axis=1)
            results.add("ingest", f"{name} vs naive float32 vectors: cosine mean / min", f"{cos.mean():.5f} / {cos.min():.5f}")

    # Our whole ingest (load, chunk, embed, SQLite + FAISS, each into a fresh index) against the
    # peer's FAISS.from_texts over the same chunk texts (no loading or chunking on its side),
    # alternating.
    src = Path(tmpdir.name) / "articles.jsonl"
    hf = None
    if peer:
        from langchain_community.vectorstores import FAISS
        from langchain_peer import hf_embeddings

        hf = hf_embeddings()
        hf.embed_documents(texts[:8])
    ours_s: list[float] = []
    theirs_s: list[float] = []
    chunks = 0
    for r in range(repeats):
        for who in (("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")):
            if who == "theirs":
                if hf is not None:
                    theirs_s.append(timed(lambda: FAISS.from_texts(texts, hf))[0])
                continue
            settings = Settings(index_dir=Path(tmpdir.name) / f"index{r}", seeds_dir=None)
            rag = RAG.open(settings=settings, embedder=ours, llm=ExtractiveFakeGenerator(), seed=False)
            seconds, report = timed(lambda rag=rag: rag.add([src]))
            rag.close()
            ours_s.append(seconds)
            chunks = report.chunks
    tmpdir.cleanup()
    our_ingest = median(ours_s)
    results.add("ingest", f"ours: full ingest of {articles} articles ({chunks} chunks)",
                f"{our_ingest:.1f} s ({chunks / our_ingest:.1f} chunks/s)")
    out: dict[str, Any] = {"our_ingest_s": our_ingest, "chunks": n}
    if theirs_s:
        their_ingest = median(theirs_s)
        ratio = our_ingest / their_ingest
        results.add("peer", f"ingest time: ours (full) / LangChain FAISS.from_texts (same {n} chunk texts)",
                    f"{our_ingest:.1f} s / {their_ingest:.1f} s", f"{ratio:.2f}", "< 1", ratio < 1)
        out["their_ingest_s"] = their_ingest
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--articles", type=int, default=60)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    r = Results()
    run(r, args.articles, args.repeats)
    print(r.markdown())
