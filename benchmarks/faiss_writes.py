"""Bytes written to FAISS files over an ingest in many commits: this tree against the ``rag``
package at ``--before`` (default 4a5fa6e, which rewrote the whole file after every commit).

Each run is a fresh process with its version's tree first on its path: a fresh index, one JSONL
file of distinct synthetic articles of one chunk each, ingested through ``RAG.add`` (local
engine) in commits of ``--batch`` articles, then closed. ``faiss.write_index`` is wrapped to
add up the size of every file it writes, and ``Store.commit`` (and ``Store.close``, which writes
what the last commits changed) to time them. The embedder is the fast
``rag.testing.HashingEmbedder`` at 384 dimensions (MiniLM's, so the files have their real size):
the point is the index's writes, not embedding speed. "reopen" is opening the closed index again.

    nice -n 19 .venv/bin/python benchmarks/faiss_writes.py --chunks 5000,30000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = os.environ.get("RAG_BENCH_TREE", str(ROOT))  # where this run's ``rag`` comes from (set per version)
sys.path.insert(0, TREE)

from ray_memory import WORDS, compare  # noqa: E402 (after the path: the same words, the same exported trees)

BEFORE = "4a5fa6e"  # the last commit that rewrote the FAISS file at every commit


def make_corpus(path: Path, n: int) -> None:
    """``n`` distinct short articles (one chunk each) of random words, so none is a near-duplicate."""
    rng = random.Random(7)
    with path.open("w") as f:
        for i in range(n):
            body = " ".join(" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(4))
            f.write(json.dumps({"id": f"a{i}", "title": f"Report {i}", "body": body, "source": "Synthetic Wire",
                                "published": "2024-05-01"}) + "\n")


def one_run(corpus: Path, version: str, batch: int) -> dict:
    """In this process (whose ``rag`` is the version's tree): ingest ``corpus`` and count the writes."""
    import faiss

    import rag
    from rag import RAG, Settings
    from rag.index.store import Store
    from rag.ingest import driver
    from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

    assert Path(rag.__file__).is_relative_to(TREE), (rag.__file__, TREE)
    written: list[int] = []
    spent = {"commit": 0.0, "close": 0.0}
    real_write, real_commit, real_close = faiss.write_index, Store.commit, Store.close

    def write(index, path):  # type: ignore[no-untyped-def]
        real_write(index, path)
        written.append(os.path.getsize(path))

    def timed(name, fn):  # type: ignore[no-untyped-def]
        def run(self, *a, **k):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return fn(self, *a, **k)
            finally:
                spent[name] += time.perf_counter() - started
        return run

    faiss.write_index = write
    Store.commit, Store.close = timed("commit", real_commit), timed("close", real_close)  # type: ignore[method-assign]
    driver.COMMIT_BATCH = batch
    index = Path(tempfile.mkdtemp(prefix="rag-faiss-writes-"))
    settings = Settings(index_dir=index, seeds_dir=None)
    embedder = HashingEmbedder(dim=384)
    try:
        rag = RAG.open(settings=settings, embedder=embedder, llm=ExtractiveFakeGenerator(), seed=False)
        started = time.perf_counter()
        report = rag.add([corpus])
        info = rag.info()
        rag.close()
        seconds = time.perf_counter() - started
        final = sum(p.stat().st_size for p in index.glob("vectors.*.faiss"))
        started = time.perf_counter()
        RAG.open(settings=settings, embedder=embedder, llm=ExtractiveFakeGenerator(), seed=False).close()
        reopen = time.perf_counter() - started
    finally:
        shutil.rmtree(index, ignore_errors=True)
    counts = report.counts
    return {"version": version, "articles": counts.added, "chunks": info.chunks, "commits": -(-counts.added // batch),
            "writes": len(written), "written_mb": sum(written) / 1e6, "final_mb": final / 1e6,
            "commit_s": spent["commit"], "close_s": spent["close"], "ingest_s": seconds, "reopen_s": reopen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", default="5000,30000", help="Article (= chunk) counts, comma-separated.")
    parser.add_argument("--batch", type=int, default=256, help="Articles per commit (the ingest's default).")
    parser.add_argument("--versions", default="before,after")
    parser.add_argument("--before", default=BEFORE, help="Git revision to compare with.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--one", nargs=2, metavar=("CORPUS", "VERSION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(Path(args.one[0]), args.one[1], args.batch)))
        return

    def progress(r: dict) -> None:
        print(f"{r['version']:6} {r['chunks']:>7} chunks: {r['writes']} writes, {r['written_mb']:.0f} MB "
              f"({r['written_mb'] / r['final_mb']:.1f}x the final file) in {r['commit_s']:.1f} s of commits", file=sys.stderr)

    results = compare(Path(__file__), args.chunks, args.versions, args.before, make_corpus, "corpus-{n}.jsonl",
                      ("--batch", str(args.batch)), progress)
    print(f"\nFAISS writes, HashingEmbedder (384 dims), {args.batch} articles per commit, {os.cpu_count()} CPU cores; "
          f"before = the rag package at {args.before}; load average {os.getloadavg()[0]:.1f}\n")
    print("| chunks | commits | version | FAISS writes | written (MB) | x final file | commits (s) | close (s) | ingest (s) | reopen (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['chunks']:,} | {r['commits']} | {r['version']} | {r['writes']} | {r['written_mb']:.1f} | "
              f"{r['written_mb'] / r['final_mb']:.1f} | {r['commit_s']:.1f} | {r['close_s']:.2f} | {r['ingest_s']:.1f} | "
              f"{r['reopen_s']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
