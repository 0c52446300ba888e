"""Retrieval quality per embedder backend: dev-set Hits@10 (dense and hybrid) with a fresh index
built by each backend, so a faster backend is only offered if it loses <= 1 point.

    .venv/bin/python benchmarks/quality.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from common import DEVSET, Results


def hits_at_10(backend: str) -> dict[str, float]:
    from rag import Settings
    from rag.evaluation import Evaluator, load_questions, open_eval_index
    from rag.models.embedding import load_embedder
    from rag.testing import ExtractiveFakeGenerator

    questions, _ = load_questions(DEVSET / "questions.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(cache_dir=Path(tmp), seeds_dir=None)
        rag = open_eval_index(DEVSET / "articles.jsonl", settings=settings,
                              embedder=load_embedder("all-MiniLM-L6-v2", backend=backend),  # type: ignore[arg-type]
                              llm=ExtractiveFakeGenerator())
        report = Evaluator(rag, questions, modes=("dense", "hybrid"), answer=False).run(progress=False)
        rag.close()
    return {f"{mode} {key}": 100 * m[key] for mode, m in report.summary["retrieval"].items() for key in ("hits@1", "hits@4", "hits@10")}


def run(results: Results) -> dict[str, Any]:
    scores = {backend: hits_at_10(backend) for backend in ("torch", "int8")}
    for mode in ("dense", "hybrid"):
        t, q = scores["torch"], scores["int8"]
        lost = t[f"{mode} hits@10"] - q[f"{mode} hits@10"]
        results.add("quality", f"dev-set Hits@1/4/10 ({mode}): torch vs int8",
                    " / ".join(f"{t[f'{mode} {k}']:.0f}" for k in ("hits@1", "hits@4", "hits@10")) + " vs "
                    + " / ".join(f"{q[f'{mode} {k}']:.0f}" for k in ("hits@1", "hits@4", "hits@10")),
                    f"{lost:+.1f} Hits@10 points lost", "<= 1 point lost", lost <= 1.0)
    return scores


if __name__ == "__main__":
    r = Results()
    run(r)
    print(r.markdown())
