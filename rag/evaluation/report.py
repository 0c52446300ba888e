"""An evaluation's results: per-question records, their summary, and the JSON, Markdown and
PNG files written from them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.evaluation import metrics

KS = (1, 4, 10)


def _table(title: str, header: str, rows: list[str]) -> list[str]:
    """A Markdown section with one table, or nothing when there are no rows."""
    if not rows:
        return []
    return [f"## {title}", "", f"| {header} |", "|" + "---|" * (header.count("|") + 1), *[f"| {r} |" for r in rows], ""]


@dataclass
class EvalReport:
    config: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write report.json, report.md and the plots; returns the paths written."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "report.json", out / "report.md"]
        paths[0].write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False, default=str))
        paths[1].write_text(self.markdown())
        paths.extend(self._plots(out))
        return paths

    def markdown(self) -> str:
        s = self.summary
        lines = [f"# Evaluation: {self.config.get('questions_path', '')}", "",
                 f"{s.get('questions', 0)} questions; embedder {self.config.get('embedder')}; "
                 f"models {', '.join(self.config.get('llms', [])) or '(retrieval only)'}", ""]
        retrieval = s.get("retrieval", {})
        lines += _table("Retrieval (evidence articles)",
                        "mode | n | Hits@1 | Hits@4 | Hits@10 | Recall@10 | MRR@10 | nDCG@10 | p50 ms | p95 ms", [
            f"{mode} | {m['n']} | {m['hits@1']:.3f} | {m['hits@4']:.3f} | {m['hits@10']:.3f} | {m['recall@10']:.3f} "
            f"| {m['mrr@10']:.3f} | {m['ndcg@10']:.3f} | {m['ms_p50']:.1f} | {m['ms_p95']:.1f}"
            for mode, m in retrieval.items()])
        answers = s.get("answers", {})
        lines += _table("Answers",
                        "model / evidence | n | EM | contains | F1 | MC acc | cit. precision | cit. recall | refused unanswerable "
                        "| false refusals | source tokens p50 | TTFT p50 / p95 s | total p50 / p95 s", [
            f"{name} | {m['n']} | {m['em']:.3f} | {m['contains']:.3f} | {m['f1']:.3f} | {m['mc_accuracy']:.3f} "
            f"| {m['citation_precision']:.3f} | {m['citation_recall']:.3f} | {m['refusal_rate_unanswerable']:.3f} "
            f"| {m['false_refusal_rate']:.3f} | {m['prompt_tokens_p50']:.0f} | {m['ttft_p50']:.2f} / {m['ttft_p95']:.2f} "
            f"| {m['total_p50']:.2f} / {m['total_p95']:.2f}"
            for name, m in answers.items()])
        return "\n".join(lines)

    def _plots(self, out: Path) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        paths = []
        curves = self.summary.get("hits_curve", {})
        if curves:
            fig, ax = plt.subplots(figsize=(6, 4))
            for mode, values in curves.items():
                ax.plot(range(1, len(values) + 1), values, marker="o", label=mode)
            ax.set(xlabel="k", ylabel="Hits@k", title="Evidence article in the top k", ylim=(0, 1.02))
            ax.grid(alpha=0.3)
            ax.legend()
            paths.append(out / "hits_at_k.png")
            fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
            plt.close(fig)
        totals = {name: [r["answers"][name]["total_s"] for r in self.records if name in r.get("answers", {})]
                  for name in self.summary.get("answers", {})}
        if any(totals.values()):
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.hist([v for v in totals.values()], bins=20, label=list(totals), alpha=0.8)
            ax.set(xlabel="seconds per answer", ylabel="questions", title="Answer latency")
            ax.legend()
            paths.append(out / "latency.png")
            fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
            plt.close(fig)
        return paths


def summarize(records: Sequence[dict[str, Any]], modes: Sequence[str]) -> dict[str, Any]:
    """Totals over per-question records (means, rates, p50/p95)."""
    summary: dict[str, Any] = {"questions": len(records), "retrieval": {}, "answers": {}, "hits_curve": {}}
    for mode in modes:
        rows = [r["retrieval"][mode] for r in records if mode in r.get("retrieval", {})]
        if not rows:
            continue
        m = {key: metrics.mean([row[key] for row in rows]) for key in ("hits@1", "hits@4", "hits@10", "recall@10", "mrr@10", "ndcg@10")}
        m.update(n=len(rows), ms_p50=metrics.percentile([r["ms"] for r in rows], 50), ms_p95=metrics.percentile([r["ms"] for r in rows], 95))
        summary["retrieval"][mode] = m
        summary["hits_curve"][mode] = [metrics.mean([row["curve"][i] for row in rows]) for i in range(10)]
    checked = [r["evidence_check"] for r in records if "evidence_check" in r]
    if checked:
        summary["evidence_check"] = {
            "n": len(checked), **{key: metrics.mean([c[key] for c in checked]) for key in ("in_retrieved", "in_evidence")},
            "evidence_tokens_p50": metrics.percentile([c["evidence_tokens"] for c in checked], 50),
        }
    names = list(dict.fromkeys(name for r in records for name in r.get("answers", {})))
    for name in names:
        pairs = [(r, r["answers"][name]) for r in records if name in r["answers"]]
        answerable = [a for r, a in pairs if r["answers"] and not r["unanswerable"]]
        unanswerable = [a for r, a in pairs if r["unanswerable"]]
        summary["answers"][name] = {
            "n": len(pairs),
            "em": metrics.mean([a.get("em") for a in answerable]),
            "contains": metrics.mean([a.get("contains") for a in answerable]),
            "f1": metrics.mean([a.get("f1") for a in answerable]),
            "mc_accuracy": metrics.mean([a.get("mc_correct") for _, a in pairs]),
            "citation_precision": metrics.mean([a.get("citation_precision") for _, a in pairs]),
            "citation_recall": metrics.mean([a.get("citation_recall") for _, a in pairs]),
            "refusal_rate_unanswerable": metrics.mean([float(a["refused"]) for a in unanswerable]),
            "false_refusal_rate": metrics.mean([float(a["refused"]) for a in answerable]),
            "right": metrics.mean([a.get("right") for a in answerable]),
            "best_option": metrics.mean([a.get("best_option") for a in answerable]),
            "unanswerable_declined": metrics.mean([float(a["refused"]) for a in unanswerable]),
            "unanswerable_right": metrics.mean([a.get("right") for a in unanswerable]),
            "unanswerable_wrong": metrics.mean([float(not a["refused"] and not a.get("right")) for a in unanswerable]),
            "citation_support": metrics.mean([a.get("citation_support") for _, a in pairs]),
            "cites_nothing": metrics.mean([a.get("cites_nothing") for _, a in pairs]),
            "llm_prompt_tokens_p50": metrics.percentile([a.get("llm_prompt_tokens", float("nan")) for _, a in pairs], 50),
            "refused_by": _refusals_by(answerable, unanswerable),
            "n_answerable": len(answerable), "n_unanswerable": len(unanswerable),
            "prompt_tokens_p50": metrics.percentile([a["prompt_tokens"] for _, a in pairs], 50),
            **{f"{key}_{p}": metrics.percentile([a[f"{key}_s"] for _, a in pairs], int(p[1:]))
               for key in ("ttft", "total", "retrieval") for p in ("p50", "p95")},
        }
    return summary


def _refusals_by(answerable: Sequence[dict[str, Any]], unanswerable: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per refusing check: how many answerable questions it refused, how many of those the model's
    own reply had right (what the check cost), and how many unanswerable ones it refused (what it
    caught; ``raw_right`` is None where it refused before the model ran)."""
    out: dict[str, dict[str, int]] = {}
    for records, kind in ((answerable, "evidence"), (unanswerable, "not_in_corpus")):
        for a in records:
            by = a.get("refused_by")
            if not a.get("refused") or not by:
                continue
            row = out.setdefault(by, {"evidence": 0, "evidence_raw_right": 0, "not_in_corpus": 0})
            row[kind] += 1
            row["evidence_raw_right"] += kind == "evidence" and bool(a.get("raw_right"))
    return out
