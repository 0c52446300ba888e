"""The news views (rag.stories), measured: grouping, timelines and citation support on the labelled
fixture (eval/stories, rag.evaluation.stories), the extractive briefing's time over about 1,000 real
articles, and one real week's briefing and one timeline as markdown (for benchmarks/README.md).

    .venv/bin/python benchmarks/stories.py                                   # the fixture only
    .venv/bin/python benchmarks/stories.py --real ~/.cache/rag/eval-indexes/e533497b1c8e3451 \\
        --timeline "Boeing machinists strike" --out /tmp/stories.md

``--real`` is an index built from real news (the news-qa-2024 articles); it is copied to a temporary
folder first and only the copy is opened, so the original is never written to.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from common import ROOT

FIXTURE = ROOT / "eval" / "stories"


def fixture_scores() -> dict:
    from rag import RAG, Settings
    from rag.evaluation.stories import evaluate_stories

    with tempfile.TemporaryDirectory() as tmp:
        rag = RAG.open(settings=Settings(index_dir=Path(tmp) / "index", seeds_dir=None), seed=False)
        rag.add([FIXTURE / "articles.jsonl"])
        report = evaluate_stories(rag, FIXTURE).to_dict()
        rag.close()
    return report


def _period_holding(rag, n: int) -> tuple[date, date, int]:  # type: ignore[no-untyped-def]
    """The latest period holding at least ``n`` dated articles."""
    dated = sorted((a.published for a in rag.articles() if a.published), reverse=True)
    until = dated[0]
    since = dated[min(n, len(dated)) - 1]
    return since, until, sum(1 for d in dated if since <= d <= until)


def _busiest_week(rag) -> tuple[date, date]:  # type: ignore[no-untyped-def]
    days = sorted(a.published for a in rag.articles() if a.published)
    best = max(days, key=lambda d: sum(1 for x in days if d <= x <= d + timedelta(days=6)))
    return best, best + timedelta(days=6)


def briefing_markdown(briefing) -> str:  # type: ignore[no-untyped-def]
    lines = [f"**Briefing {briefing.since} to {briefing.until}** ({briefing.articles} articles, "
             f"{len(briefing.stories)} stories shown, {briefing.seconds:.1f} s)", ""]
    for i, story in enumerate(briefing.stories, start=1):
        span = f"{story.dates[0]} to {story.dates[-1]}" if story.dates and story.dates[0] != story.dates[-1] else str(story.dates[0]) if story.dates else "undated"
        lines += [f"{i}. **{story.headline}** — {', '.join(story.sources)}; {span}; {len(story.articles)} article{'s' * (len(story.articles) != 1)}",
                  f"   {story.summary()}"]
        lines += [f"   - [{q.n}] {q.article.title} ({q.article.source}, {q.article.published})" for q in story.quotes]
    return "\n".join(lines)


def timeline_markdown(timeline) -> str:  # type: ignore[no-untyped-def]
    lines = [f"**Timeline: {timeline.query}** ({len(timeline.events)} events, {timeline.seconds:.1f} s)", "",
             "| date | from | event | sources |", "|---|---|---|---|"]
    for e in timeline.events:
        when = f"“{e.phrase}”" if e.date_from == "sentence" else "article date"
        text = e.text.replace("|", "\\|") + " " + "".join(f"[{q.n}]" for q in e.quotes)
        lines.append(f"| {e.date} | {when} | {text} | {', '.join(e.sources)} |")
    return "\n".join(lines)


def real(index: Path, articles: int, query: str, repeats: int) -> tuple[dict, str]:
    from rag import RAG, Settings

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "index"
        shutil.copytree(index.expanduser(), copy)
        for stale in copy.glob("*.lock"):
            stale.unlink()
        rag = RAG.open(settings=Settings(index_dir=copy, seeds_dir=None), seed=False)
        since, until, held = _period_holding(rag, articles)
        rag.brief(since, until, max_stories=1)  # load the sentence splitter and the embedder once
        times = []
        for _ in range(repeats):
            rag.clear_caches()
            started = time.perf_counter()
            timed = rag.brief(since, until)
            times.append(time.perf_counter() - started)
        week = rag.brief(*_busiest_week(rag))
        timeline = rag.timeline(query)
        figures = {
            "period": f"{since} to {until}", "articles": held, "stories": len(timed.stories),
            "brief_seconds": [round(t, 1) for t in times], "cpus": os.cpu_count(), "load_average": os.getloadavg()[0],
        }
        rag.close()
    return figures, briefing_markdown(week) + "\n\n" + timeline_markdown(timeline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, help="a built index of real news (copied, never written)")
    parser.add_argument("--articles", type=int, default=1000, help="the timed briefing's period holds this many articles")
    parser.add_argument("--timeline", default="Boeing machinists strike", help="the real timeline's subject")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the real week's briefing and the timeline (markdown) here")
    args = parser.parse_args()
    print(json.dumps({"fixture": fixture_scores()}, indent=1))
    if args.real:
        figures, markdown = real(args.real, args.articles, args.timeline, args.repeats)
        print(json.dumps({"real": figures}, indent=1))
        if args.out:
            args.out.write_text(markdown + "\n", encoding="utf-8")
        print(markdown)


if __name__ == "__main__":
    main()
