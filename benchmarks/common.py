"""What the benchmarks share: a real-text corpus, the dev-set questions, timing and memory helpers.

The corpus is made from the dev set's news articles: each generated article takes one dev
article's headline and date and a shuffled selection of its real sentences, so every chunk is
real news prose (on a known topic) and no two articles are exact duplicates.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEVSET = ROOT / "eval" / "devset"


def dev_articles() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DEVSET / "articles.jsonl").read_text().splitlines() if line.strip()]


def dev_questions(limit: int | None = None) -> list[str]:
    """Standalone dev-set questions that have an answer (no follow-ups, no unanswerable ones)."""
    out = []
    for line in (DEVSET / "questions.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        q = json.loads(line)
        if q.get("history") or q.get("unanswerable") or q.get("choices"):
            continue
        out.append(q["question"])
    return out[:limit] if limit else out


def make_articles(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` articles of real dev-set sentences (see the module docstring)."""
    from rag.text import split_sentences

    rng = random.Random(seed)
    base = dev_articles()
    sentences = [[a["body"][s.start : s.end] for s in split_sentences(a["body"])] for a in base]
    out = []
    for i in range(n):
        j = i % len(base)
        a, pool = base[j], sentences[j]
        picked = rng.sample(pool, k=min(len(pool), rng.randint(8, 24)))
        out.append({
            "id": f"bench-{i:06d}", "title": f"{a['title']} ({i})", "body": " ".join(picked),
            "source": a.get("source"), "url": f"https://example.org/bench/{i}", "published_at": a.get("published_at"),
        })
    return out


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


@dataclass
class Row:
    """One line of the results table."""

    section: str
    name: str
    value: str
    ratio: str = ""
    target: str = ""
    met: bool | None = None


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)

    def add(self, section: str, name: str, value: str, ratio: str = "", target: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(section, name, value, ratio, target, met))
        print(f"  [{section}] {name}: {value} {ratio} {target}".rstrip(), flush=True)

    def markdown(self) -> str:
        lines = ["| stage | measure | value | ratio | target | met |", "|---|---|---|---|---|---|"]
        for r in self.rows:
            met = "" if r.met is None else ("yes" if r.met else "NO")
            lines.append(f"| {r.section} | {r.name} | {r.value} | {r.ratio} | {r.target} | {met} |")
        return "\n".join(lines)
