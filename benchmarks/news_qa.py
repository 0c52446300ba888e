"""Right answers from real news: retrieval, answers, citations and cost on news-qa-2024.

The data (real 2024 news-quiz questions over 2,278 real articles) is the team's, outside this
repository, and is never copied into it: point ``--data`` at the folder (default
``../shared/data/news-qa-2024`` beside the checkout). Without it the benchmark says so and exits 0.

    .venv/bin/python benchmarks/news_qa.py                       # retrieval + answers, default vs baseline
    .venv/bin/python benchmarks/news_qa.py --no-answers --variants all   # every retrieval variant
    .venv/bin/python benchmarks/news_qa.py --variants default --answers-limit 40

Questions are asked as of their quiz date (``today=``). They are split by week: the first six
quiz weeks are the half the defaults were tuned on, the last six are held out; every figure is
reported for both. Indexes are built through the public API and cached (keyed by the articles,
the embedder, the chunker settings and the code that shapes an index: see
``rag.evaluation.eval_index_key``). Results go to ``--out`` (default ``eval-out/news-qa/``):
``news_qa.json`` (every record) and ``news_qa.md`` (the tables).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "news-qa-2024"
TUNED, HELD_OUT = "tuned (weeks 1-6)", "held out (weeks 7-12)"
INDEX_FIELDS = ("embedder", "chunk_tokens", "chunk_overlap_tokens")

# Each variant is a set of Settings changes against today's defaults. "baseline" is the
# configuration before this benchmark existed (last round's defaults), kept so every run shows
# the before/after in the same run on the same machine.
BASELINE: dict[str, Any] = {
    "chunk_tokens": 128, "chunk_overlap_tokens": 24, "retrieval": "hybrid", "retrieval_pool": 0,
    "dense_weight": 1.0, "bm25_weight": 1.0, "title_weight": 0.5, "recency_half_life_days": 0.0,
    "recency_weight": 0.0, "passages_per_article": 0, "lede_boost": 0.0,
}
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": BASELINE,
    "default": {},
    # One lever each, against the defaults (see benchmarks/README.md for what each was worth).
    "no-coverage-guard": {"guard_coverage": False},
    "no-number-guard": {"guard_numbers": False},
    "no-refusal-guards": {"guard_coverage": False, "guard_numbers": False},
    "evidence-480": {"context_tokens": 480},
    "evidence-640": {"context_tokens": 640},
    "top-k-8": {"top_k": 8},
    "top-k-8-evidence-480": {"top_k": 8, "context_tokens": 480},
    "evidence-1-per-article": {"evidence_passages_per_article": 1},
    "evidence-10-runs": {"evidence_passages": 10, "context_tokens": 480},
    "evidence-10-runs-640": {"evidence_passages": 10, "context_tokens": 640},
    "evidence-10-runs-6-per-article": {"evidence_passages": 10, "evidence_sentences_per_article": 6, "context_tokens": 640},
    "chunks": {"evidence": "chunks"},
    "mpnet": {"embedder": "all-mpnet-base-v2"},
    "short-first": {"prompts_dir": ROOT / "benchmarks" / "prompt_variants" / "short-first"},
}


def load(data_dir: Path) -> tuple[Path, list[Any]]:
    """The articles file and the questions, each labelled with its half, its evidence (the 97),
    or as not answerable from the corpus (the 141 whose right option no article holds)."""
    from rag.evaluation import load_questions

    articles = data_dir / "articles.jsonl"
    questions, problems = load_questions(data_dir / "questions.jsonl")
    if problems:
        raise SystemExit(f"{len(problems)} bad question lines, e.g. {problems[0]}")
    corpus = "\n".join(
        f"{row.get('title', '')}\n{row.get('body', '')}".lower()
        for row in map(json.loads, articles.read_text(encoding="utf-8").splitlines())
    )
    weeks = quiz_weeks([q.question_date for q in questions if q.question_date])
    out = []
    for q in questions:
        group = TUNED if weeks[q.question_date] < 6 else HELD_OUT
        missing = not q.evidence and q.answers[0].lower() not in corpus
        out.append(replace(q, group=group, unanswerable=missing))
    return articles, out


def article_slice(articles: Path, questions: list[Any], others: int, out_dir: Path) -> Path:
    """A smaller corpus for expensive variants (a slower embedder): every evidence article plus
    ``others`` of the rest, picked by a hash of their ids (the same slice on every run). Written
    outside the repository (the data never enters it)."""
    import hashlib

    rows = articles.read_text(encoding="utf-8").splitlines()
    wanted = {e for q in questions for e in q.evidence}
    keyed = sorted(rows, key=lambda ln: hashlib.sha256(json.loads(ln)["id"].encode()).hexdigest())
    kept = [ln for ln in keyed if json.loads(ln)["id"] in wanted]
    kept += [ln for ln in keyed if json.loads(ln)["id"] not in wanted][:others]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"articles-slice-{others}-{hashlib.sha256(articles.read_bytes()).hexdigest()[:12]}.jsonl"
    if not path.exists():
        path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return path


def quiz_weeks(dates: list[date]) -> dict[date, int]:
    """Week number (0-based) of each quiz date: dates a few days apart are one week's quizzes."""
    weeks: dict[date, int] = {}
    previous: date | None = None
    week = -1
    for d in sorted(set(dates)):
        if previous is None or d - previous > timedelta(days=3):
            week += 1
        weeks[d] = week
        previous = d
    return weeks


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor() or "?") if Path("/proc/cpuinfo").exists() else "?"
    return f"{cpu}, {os.cpu_count()} cores"


def run(
    data_dir: Path,
    variants: dict[str, dict[str, Any]],
    *,
    modes: tuple[str, ...] = ("dense", "bm25", "hybrid"),
    answers: bool = True,
    llm: str | None = None,
    answers_limit: int | None = None,
    settings: Any = None,
    embedder: Any = None,
    generator: Any = None,
    progress: bool = True,
    choices: bool = False,
    slice_others: int | None = None,
    on_variant: Any = None,
) -> dict[str, Any]:
    """Measure every variant; returns {"config", "variants": {name: {half: summary}}, "records"}."""
    from rag import Settings
    from rag.evaluation import Evaluator, open_eval_index, summarize

    base = settings or Settings()
    articles, questions = load(data_dir)
    if slice_others is not None:
        from rag.settings import default_cache_dir

        articles = article_slice(articles, questions, slice_others, default_cache_dir() / "eval-slices")
    evidence_qs = [q for q in questions if q.evidence]
    answer_qs = [q for q in questions if q.evidence or q.unanswerable]
    if answers_limit:  # the same number from each half and kind, so halves stay comparable
        answer_qs = [q for group in (TUNED, HELD_OUT) for kind in (False, True)
                     for q in [q for q in answer_qs if q.group == group and q.unanswerable == kind][:answers_limit]]
    result: dict[str, Any] = {
        "config": {"data": str(data_dir), "machine": machine(), "date": date.today().isoformat(),
                   "load_average_at_start": os.getloadavg(), "modes": list(modes), "answers": answers,
                   "llm": llm or base.llm, "answers_limit": answers_limit, "choices": choices, "slice": slice_others,
                   "questions": {"evidence": len(evidence_qs), "not_in_corpus": sum(q.unanswerable for q in questions),
                                 "asked": len(answer_qs) if answers else 0}},
        "variants": {}, "records": {},
    }
    indexes: dict[tuple[Any, ...], Any] = {}
    for name, changes in variants.items():
        variant = base.model_copy(update=changes)
        key = tuple(getattr(variant, f) for f in INDEX_FIELDS)
        if key not in indexes:
            started = time.perf_counter()
            indexes[key] = open_eval_index(articles, variant, embedder=embedder, llm=generator)
            if progress:
                print(f"index {key}: {indexes[key].info().chunks} chunks, {time.perf_counter() - started:.0f} s", file=sys.stderr)
        rag = indexes[key].with_settings(**{k: v for k, v in changes.items() if k not in INDEX_FIELDS})
        started = time.perf_counter()
        load_before = os.getloadavg()[0]
        records = Evaluator(rag, evidence_qs, modes=modes, answer=False, evidence_check=True).run(progress=progress).records if modes else []
        if answers:
            by_id = {r["id"]: r for r in records}
            report = Evaluator(rag, answer_qs, modes=(), llms=[llm or rag.settings.llm], choices=choices).run(progress=progress)
            for r in report.records:
                by_id.setdefault(r["id"], r)["answers"] = r["answers"]
            records = list(by_id.values())
        summaries = {group: summarize([r for r in records if r["group"] == group], modes) for group in (TUNED, HELD_OUT)}
        for summary in summaries.values():
            summary["load_average_at_start"] = load_before
            summary["seconds"] = time.perf_counter() - started
        result["variants"][name] = {"settings": changes, "summary": summaries}
        result["records"][name] = records
        if on_variant is not None:  # a long run keeps what it measured so far
            on_variant(result)
    return result


def markdown(result: dict[str, Any]) -> str:
    c = result["config"]
    lines = [f"news-qa-2024 on {c['machine']}, {c['date']}; load average at start "
             f"{' / '.join(f'{x:.1f}' for x in c['load_average_at_start'])}; "
             + (f"a slice (the evidence articles and {c['slice']} others); " if c.get("slice") is not None else "")
             + f"{c['questions']['evidence']} evidence questions, {c['questions']['not_in_corpus']} not in the corpus; "
             f"answers by {c['llm']}" + (f" ({c['questions']['asked']} asked)" if c["answers"] else ""), ""]
    rows = []
    for name, v in result["variants"].items():
        for half, s in v["summary"].items():
            for mode, m in s.get("retrieval", {}).items():
                rows.append(f"{name} | {half} | {mode} | {m['n']} | {m['hits@1']:.3f} | {m['hits@4']:.3f} | "
                            f"{m['hits@10']:.3f} | {m['mrr@10']:.3f} | {m['ms_p50']:.0f}")
    if rows:
        lines += ["### Retrieval (evidence article or a near-copy of it)", "",
                  "| variant | half | mode | n | Hits@1 | Hits@4 | Hits@10 | MRR@10 | p50 ms |", "|---|---|---|---|---|---|---|---|---|",
                  *[f"| {r} |" for r in rows], ""]
    rows = [f"{name} | {half} | {e['n']} | {e['in_retrieved']:.3f} | {e['in_evidence']:.3f} | {e['evidence_tokens_p50']:.0f}"
            for name, v in result["variants"].items() for half, s in v["summary"].items()
            if (e := s.get("evidence_check"))]
    if rows:
        lines += ["### What the model would read (no model run): holds every content word of the right answer", "",
                  "| variant | half | evidence qs | in the retrieved passages | in the evidence given | evidence tokens p50 |",
                  "|---|---|---|---|---|---|", *[f"| {r} |" for r in rows], ""]
    rows = []
    for name, v in result["variants"].items():
        for half, s in v["summary"].items():
            for _, m in s.get("answers", {}).items():
                rows.append(
                    f"{name} | {half} | {m['n_answerable']} | {m['right']:.3f} | {m['best_option']:.3f} | "
                    f"{m['false_refusal_rate']:.3f} | {m['n_unanswerable']} | {m['unanswerable_right']:.3f} / "
                    f"{m['unanswerable_declined']:.3f} / {m['unanswerable_wrong']:.3f} | {m['citation_support']:.3f} | "
                    f"{m['cites_nothing']:.3f} | {m['mc_accuracy']:.3f} | {m['llm_prompt_tokens_p50']:.0f} | {m['ttft_p50']:.1f} | {m['total_p50']:.1f} | "
                    f"{s['load_average_at_start']:.1f}")
    if rows:
        lines += ["### Answers (free text, asked as of the quiz date)", "",
                  "| variant | half | evidence qs | right | best option | false refusals | not-in-corpus qs | "
                  "right / declined / wrong | citation support | cite nothing | MC acc (--choices) | prompt tokens p50 | "
                  "TTFT p50 s | total p50 s | load |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
                  *[f"| {r} |" for r in rows], ""]
    rows = [f"{name} | {half} | {by} | {c['evidence']} | {c['evidence_raw_right']} | {c['not_in_corpus']}"
            for name, v in result["variants"].items() for half, s in v["summary"].items()
            for m in s.get("answers", {}).values() for by, c in sorted(m.get("refused_by", {}).items())]
    if rows:
        lines += ["### Refusals by the check that refused", "",
                  "\"model's reply was right\": the reply before the checks had the right answer (what the refusal cost; "
                  "a check that refuses before generating has no reply). Refused not-in-corpus questions are what it caught.", "",
                  "| variant | half | refused by | evidence qs refused | of which the model's reply was right | not-in-corpus qs refused |",
                  "|---|---|---|---|---|---|", *[f"| {r} |" for r in rows], ""]
    lines += ["Variants: " + "; ".join(f"**{n}** {v['settings'] or '(the defaults)'}" for n, v in result["variants"].items()), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the news-qa-2024 folder")
    parser.add_argument("--variants", default="baseline,default", help=f"comma-separated, or 'all': {', '.join(VARIANTS)}")
    parser.add_argument("--modes", default="dense,bm25,hybrid", help="retrieval modes to measure ('' for none)")
    parser.add_argument("--no-answers", action="store_true", help="retrieval only")
    parser.add_argument("--answers-limit", type=int, help="ask only the first N evidence and N not-in-corpus questions per half")
    parser.add_argument("--llm", help="answering model (default: RAG_LLM)")
    parser.add_argument("--choices", action="store_true", help="also ask each question with its options (multiple-choice accuracy)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="an extra variant 'custom' with these settings")
    parser.add_argument("--slice", type=int, metavar="N", help="index only the evidence articles and N others (for slow variants)")
    parser.add_argument("--out", type=Path, default=ROOT / "eval-out" / "news-qa")
    args = parser.parse_args(argv)
    if not (args.data / "questions.jsonl").is_file() or not (args.data / "articles.jsonl").is_file():
        print(f"news-qa-2024 not found at {args.data} (give --data): skipping the real-news benchmark")
        return 0
    names = list(VARIANTS) if args.variants == "all" else [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    variants = {n: VARIANTS[n] for n in names}
    if args.set:
        variants["custom"] = {k: json.loads(v) if v[:1] in "0123456789-[{tfn" else v for k, v in (s.split("=", 1) for s in args.set)}
    args.out.mkdir(parents=True, exist_ok=True)

    def save(result: dict[str, Any]) -> None:
        (args.out / "news_qa.json").write_text(json.dumps(result, indent=1, default=str, ensure_ascii=False))
        (args.out / "news_qa.md").write_text(markdown(result))

    result = run(args.data, variants, modes=tuple(m for m in args.modes.split(",") if m), answers=not args.no_answers,
                 llm=args.llm, answers_limit=args.answers_limit, choices=args.choices, slice_others=args.slice,
                 on_variant=save)
    print(markdown(result))
    print(f"wrote {args.out / 'news_qa.md'} and news_qa.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
