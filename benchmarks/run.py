"""The benchmark suite in one command: ingest, retrieval quality per backend, search at scale,
retrieval over real text, answer latency, each against its baseline or the LangChain peer
measured in the same run. Prints a table of figures and ratios (and writes it with --out).

    .venv/bin/python benchmarks/run.py                 # the default sizes, about 10-15 min on 2 cores
    .venv/bin/python benchmarks/run.py --quick         # small sizes, a few minutes
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, Results


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    except OSError:
        model = platform.processor() or "?"
    import psutil

    return f"{model}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, load average {os.getloadavg()[0]:.1f} at start"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--ingest-articles", type=int, default=60)
    p.add_argument("--real-chunks", type=int, default=10_000, help="real-text chunks for the retrieval comparison")
    p.add_argument("--sizes", default="100000,1000000", help="synthetic index sizes")
    p.add_argument("--questions", type=int, default=5)
    p.add_argument("--qwen-questions", type=int, default=2, help="0 skips the Qwen end-to-end run")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = p.parse_args()
    if args.quick:
        args.ingest_articles, args.real_chunks, args.sizes, args.questions, args.qwen_questions = 15, 500, "100000", 2, 0
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.chdir(ROOT)

    import answer_latency
    import ingest_speed
    import quality
    import real_search
    import search_scale

    results = Results()
    info = machine()
    print(f"machine: {info}", flush=True)
    started = time.perf_counter()
    stages = [
        ("ingest", lambda: ingest_speed.run(results, args.ingest_articles, repeats=2)),
        ("quality", lambda: quality.run(results)),
        ("search (synthetic)", lambda: search_scale.run(results, [int(s) for s in args.sizes.split(",")])),
        ("search (real text)", lambda: real_search.run(results, args.real_chunks)),
        ("answer (SmolLM2)", lambda: answer_latency.run(results, "smollm2-135m-instruct", args.questions, 2, args.max_tokens)),
    ]
    if args.qwen_questions:
        stages.append(("answer (Qwen)", lambda: answer_latency.run(results, "qwen2.5-coder-1.5b-instruct",
                                                                   args.qwen_questions, 1, args.max_tokens)))
    for name, stage in stages:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        stage()
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    total = time.perf_counter() - started
    table = results.markdown()
    footer = f"\nmachine: {info}\nsuite time: {total / 60:.1f} min\n"
    print("\n" + table + footer)
    if args.out:
        args.out.write_text(table + "\n" + footer)


if __name__ == "__main__":
    main()
