"""Peak driver memory of `--engine ray` against article count: this tree against the ``rag``
package at ``--before`` (default: the last driver that listed every path of the archive before
reading any file; 6ee2b4d had a per-article report and the run's duplicate sets in memory,
6c921d5 read every file and parsed every article before embedding any). Both run through ``RAG.add(..., engine="ray")``, each from its own tree.

Each run is a fresh process: a local Ray cluster (2 CPUs), a fresh index, one JSON file per
article (distinct synthetic articles of ~150 words, no near-duplicates), ingested with 2 workers.
A thread samples the driver's RSS (psutil) every 20 ms; the table gives the peak, and the growth
over the RSS just before the ingest (Ray connected, code imported, index open). The embedder is
the fast ``rag.testing.HashingEmbedder`` (64 dims): the point is the driver's memory, not
embedding speed, and MiniLM would make the large runs take hours on 2 cores. The index itself
also grows with the archive on the driver (the FAISS vectors are held in memory by design; the
near-duplicate bands and signatures stay in SQLite, rag.index.near_duplicates); the "index" column
estimates that part, and "report" is the deep size of the ``IngestReport`` the ingest returns.

    .venv/bin/python benchmarks/ray_memory.py                       # 1k, 10k, 30k articles
    .venv/bin/python benchmarks/ray_memory.py --articles 1000,10000,30000,100000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = os.environ.get("RAG_BENCH_TREE", str(ROOT))  # where this run's ``rag`` comes from (set per version)
sys.path.insert(0, TREE)

BEFORE = "f44d0ae"  # the last commit whose folder walk listed (and sorted) every path before the first file
WORDS = [f"{a}{b}" for a in ("har", "vel", "tor", "mik", "sun", "dra", "pol", "ken", "lu", "ost", "bre", "qua")
         for b in ("bor", "dan", "ett", "ix", "om", "ul", "ar", "en", "is", "ok", "ash", "ine", "und", "ep")]


def make_corpus(target: Path, n: int) -> None:
    """``n`` distinct articles, one JSON file each; random words, so no two are near-duplicates."""
    rng = random.Random(7)
    target.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = " ".join(
            " ".join(rng.choice(WORDS) for _ in range(15)).capitalize() + "." for _ in range(10)
        )
        record = {"id": f"a{i}", "title": f"Report {i}: {rng.choice(WORDS)} {rng.choice(WORDS)}", "body": body,
                  "source": "Synthetic Wire", "published": "2024-05-01"}
        (target / f"{i // 1000:03d}" / f"{i:06d}.json").parent.mkdir(exist_ok=True)
        (target / f"{i // 1000:03d}" / f"{i:06d}.json").write_text(json.dumps(record))


def heap_size(obj: object, seen: set[int] | None = None) -> int:
    """Bytes of ``obj`` and of the lists, dicts, dataclasses and strings it holds."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(heap_size(k, seen) + heap_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set)):
        size += sum(heap_size(x, seen) for x in obj)
    elif hasattr(obj, "__dict__"):
        size += heap_size(vars(obj), seen)
    return size


def export_tree(rev: str) -> Path:
    """The ``rag`` package (and its prompts) as it was at ``rev``, exported (not checked out) into a temporary folder."""
    target = Path(tempfile.mkdtemp(prefix="rag-ray-before-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "rag", "prompts"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run_in_tree(script: Path, tree: Path, *args: str) -> dict:
    """``script --one ARGS`` in a fresh process whose ``rag`` is ``tree``'s; its last line, read as JSON.
    Ray's workers put the driver's working directory first on their path (and inherit
    PYTHONPATH), so they run the same tree as the driver."""
    env = {**os.environ, "RAG_BENCH_TREE": str(tree), "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, str(script.resolve()), "--one", *args], capture_output=True, text=True,
                         env=env, cwd=tree)
    if out.returncode:
        print(out.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{script.name} --one {' '.join(args)} failed (tree {tree})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(
    script: Path, sizes: str, versions: str, before: str, make: Callable[[Path, int], None], corpus_name: str,
    extra: tuple[str, ...], progress: Callable[[dict], None],
) -> list[dict]:
    """Each of ``versions`` ("before", "after": the tree at ``before``, this one) on a corpus of
    each of ``sizes`` (comma-separated), made once per size by ``make`` and named ``corpus_name``."""
    names = versions.split(",")
    trees = {"after": ROOT, **({"before": export_tree(before)} if "before" in names else {})}
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
            for n in [int(x) for x in sizes.split(",") if x.strip()]:
                corpus = Path(tmp) / corpus_name.format(n=n)
                make(corpus, n)
                for version in names:
                    results.append(run_in_tree(script, trees[version], str(corpus), version, *extra))
                    progress(results[-1])
    finally:
        if "before" in trees:
            shutil.rmtree(trees["before"])
    return results


def one_run(corpus: Path, version: str, workers: int) -> dict:
    """In this process (whose ``rag`` is the version's tree): ingest ``corpus``, sampling RSS."""
    import psutil
    import ray

    import rag
    from rag import RAG, Settings
    from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

    assert Path(rag.__file__).is_relative_to(TREE), (rag.__file__, TREE)
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    # Ray Data's driver-side machinery is imported by the old code on first use; import it
    # (and the commit path's datasketch/scipy) before the baseline so both start alike.
    import datasketch  # noqa: F401
    import ray.data  # noqa: F401

    index = Path(tempfile.mkdtemp(prefix="rag-ray-mem-"))
    rag = RAG.open(settings=Settings(index_dir=index, seeds_dir=None), embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())
    proc = psutil.Process()
    baseline = proc.memory_info().rss
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        report = rag.add([corpus], engine="ray", workers=workers)
    finally:
        stop.set()
        sampler.join()
    seconds = time.perf_counter() - started
    info = rag.info()
    rag.close()
    ray.shutdown()
    assert not report.failed, report.failed[:3]
    counts = getattr(report, "counts", None)  # exact counts; older reports listed every id
    return {"version": version, "articles": counts.added if counts else len(report.added), "chunks": info.chunks, "seconds": seconds,
            "baseline_mb": baseline / 1e6, "peak_mb": peak / 1e6, "growth_mb": (peak - baseline) / 1e6,
            # FAISS vectors (64 float32 per chunk) and their ids (int64, and IndexIDMap2's reverse map)
            "index_mb": info.chunks * (64 * 4 + 8 + 40) / 1e6,
            "report_mb": heap_size(report) / 1e6}  # the IngestReport returned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", default="1000,10000,30000", help="Article counts, comma-separated.")
    parser.add_argument("--versions", default="before,after")
    parser.add_argument("--before", default=BEFORE, help="Git revision of the old driver.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--one", nargs=2, metavar=("CORPUS", "VERSION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(Path(args.one[0]), args.one[1], args.workers)))
        return

    def progress(r: dict) -> None:
        print(f"{r['version']:6} {r['articles']:>7} articles: peak {r['peak_mb']:.0f} MB (+{r['growth_mb']:.0f} MB) "
              f"in {r['seconds']:.0f} s", file=sys.stderr)

    results = compare(Path(__file__), args.articles, args.versions, args.before, make_corpus, "corpus-{n}",
                      ("--workers", str(args.workers)), progress)
    print(f"\nDriver RSS, `--engine ray`, {args.workers} workers, HashingEmbedder, {os.cpu_count()} CPU cores; "
          f"before = the rag package at {args.before}\n")
    print("| articles | chunks | driver | peak RSS (MB) | growth during ingest (MB) | of which index, est. (MB) "
          "| of which the report (MB) | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['articles']:,} | {r['chunks']:,} | {r['version']} | {r['peak_mb']:.0f} | {r['growth_mb']:.0f} "
              f"| {r['index_mb']:.0f} | {r['report_mb']:.0f} | {r['seconds']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
