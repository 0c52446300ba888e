"""Ingestion throughput: the local engine against the Ray engine with 1 and 2 embedding workers.

A few hundred articles are made from the dev set (each variant reorders an article's sentences
and gets its own title and id, so none is an exact duplicate), one JSON file per article, and
ingested into a fresh index by each engine with the real MiniLM embedder. Ray's start-up is
timed on its own: a long-lived cluster pays it once, not per ingest. Each Ray ingest does
include starting its actors and loading the model in each of them.

    .venv/bin/python benchmarks/ray_ingest.py                     # 300 articles, workers 1 and 2
    .venv/bin/python benchmarks/ray_ingest.py --articles 1000 --workers 1,2,4 --address ray://head:10001
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import RAG, Settings
from rag.models.embedding import load_embedder
from rag.testing import ExtractiveFakeGenerator

DEVSET = ROOT / "eval" / "devset" / "articles.jsonl"


def make_corpus(target: Path, n: int) -> None:
    """``n`` distinct articles, one JSON file each, made by reordering dev-set sentences."""
    base = [json.loads(line) for line in DEVSET.read_text().splitlines() if line.strip()]
    for i in range(n):
        a = base[i % len(base)]
        sentences = re.split(r"(?<=[.!?])\s+", a["body"])
        shift = 1 + i // len(base)
        body = " ".join(sentences[shift % len(sentences) :] + sentences[: shift % len(sentences)])
        record = {**a, "id": f"{a['id']}-v{i}", "title": f"{a['title']} (variant {i})", "body": body}
        (target / f"{i:05d}.json").write_text(json.dumps(record, ensure_ascii=False))


def run(corpus: Path, index: Path, embedder, engine: str, workers: int | None, address: str | None) -> dict:
    rag = RAG.open(settings=Settings(index_dir=index, seeds_dir=None), embedder=embedder, llm=ExtractiveFakeGenerator())
    try:
        started = time.perf_counter()
        report = rag.add([corpus], engine=engine, workers=workers, ray_address=address)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
    finally:
        rag.close()
    assert not report.failed, report.failed[:3]
    return {"engine": engine, "workers": workers, "articles": len(report.added), "chunks": report.chunks, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--workers", default="1,2", help="Ray worker counts to try, comma-separated.")
    parser.add_argument("--address", help="A running Ray cluster (default: start a local one).")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]

    import ray
    import torch

    embedder = load_embedder("all-MiniLM-L6-v2")
    with tempfile.TemporaryDirectory(prefix="rag-bench-ray-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        make_corpus(corpus, args.articles)
        results = [run(corpus, Path(tmp) / "local", embedder, "local", None, None)]
        # Ray gives each worker one CPU, so torch runs one thread there; the local engine with
        # one thread too tells how much of a difference is threading rather than Ray.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            results.append({**run(corpus, Path(tmp) / "local1", embedder, "local", None, None), "engine": "local, 1 torch thread"})
        finally:
            torch.set_num_threads(threads)

        started = time.perf_counter()
        if args.address:
            ray.init(address=args.address, logging_level=logging.WARNING,
                     runtime_env={"py_modules": [str(ROOT / "rag")]})
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
        ray_start = time.perf_counter() - started
        cluster_cpus = int(ray.cluster_resources().get("CPU", 0))
        try:
            for w in worker_counts:
                results.append(run(corpus, Path(tmp) / f"ray{w}", embedder, "ray", w, None))
        finally:
            ray.shutdown()

    local = results[0]
    print(f"\n{args.articles} articles, all-MiniLM-L6-v2, {os.cpu_count()} CPU cores here (load average "
          f"{os.getloadavg()[0]:.1f}), Ray cluster CPUs {cluster_cpus}, local torch threads {threads}; "
          f"Ray start-up {ray_start:.1f} s (not in the times below)\n")
    print("| engine | workers | articles | chunks | seconds | chunks/s | vs local |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        rate = r["chunks"] / r["seconds"]
        r["chunks_per_s"] = rate
        r["vs_local"] = rate / (local["chunks"] / local["seconds"])
        print(f"| {r['engine']} | {r['workers'] or '-'} | {r['articles']} | {r['chunks']} | {r['seconds']:.1f} "
              f"| {rate:.0f} | {r['vs_local']:.2f}x |")
    if any(r["chunks"] != local["chunks"] or r["articles"] != local["articles"] for r in results):
        print("\nWARNING: the engines indexed different numbers of articles or chunks", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"ray_start_s": ray_start, "cluster_cpus": cluster_cpus, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
