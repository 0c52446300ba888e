"""Evaluation as an importable API: a question set in; retrieval, answer, citation and latency
metrics out, as JSON, a Markdown table and PNG plots.

    from rag.evaluation import load_questions, open_eval_index, Evaluator
    questions, problems = load_questions("eval/devset/questions.jsonl")
    rag = open_eval_index("eval/devset/articles.jsonl")
    report = Evaluator(rag, questions).run()
    report.save("eval-out/")
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from . import metrics
from .api import RAG
from .articles import article_id
from .config import Settings
from .embedding import Embedder
from .errors import RagError
from .generation import Generator
from .citations import CITATION
from .retrieval import MODES, Mode

KS = (1, 4, 10)



def _table(title: str, header: str, rows: list[str]) -> list[str]:
    """A Markdown section with one table, or nothing when there are no rows."""
    if not rows:
        return []
    return [f"## {title}", "", f"| {header} |", "|" + "---|" * (header.count("|") + 1), *[f"| {r} |" for r in rows], ""]

@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    answers: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # dataset article ids
    question_date: date | None = None
    choices: tuple[str, ...] = ()
    history: tuple[tuple[str, str], ...] = ()
    unanswerable: bool = False
    type: str = "factoid"
    group: str = ""  # a label to report separately (e.g. the tuned and the held-out half)


@dataclass(frozen=True)
class LineProblem:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


# ---------------------------------------------------------------- inputs


def _jsonl(path: Path, problems: list[LineProblem]) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise RagError(f"{path}: no such file")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(LineProblem(str(path), lineno, f"invalid JSON ({e.msg} at column {e.colno})"))
            continue
        if not isinstance(data, dict):
            problems.append(LineProblem(str(path), lineno, "not a JSON object"))
            continue
        rows.append((lineno, data))
    return rows


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v) for v in value if str(v).strip())
    raise ValueError("must be a string or a list of strings")


def load_questions(path: str | Path) -> tuple[list[EvalQuestion], list[LineProblem]]:
    """Questions from JSONL (``id``, ``question``, ``answer``, optional ``evidence_article_ids``,
    ``question_date``, ``choices``, ``history``, ``unanswerable``, ``type``). Malformed lines are
    returned as problems with their line numbers; the good ones load."""
    path = Path(path)
    problems: list[LineProblem] = []
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for lineno, row in _jsonl(path, problems):
        try:
            qid = str(row.get("id") or f"line-{lineno}")
            question = row.get("question")
            if not isinstance(question, str) or not question.strip():
                raise ValueError("'question' must be a non-empty string")
            if qid in seen:
                raise ValueError(f"duplicate id {qid!r}")
            answers = _strings(row.get("answer", row.get("answers")))
            choices = _strings(row.get("choices"))
            if choices and (not answers or answers[0] not in choices):
                raise ValueError("'choices' must contain the answer")
            raw_date = row.get("question_date")
            history = tuple((str(a), str(b)) for a, b in (row.get("history") or []))
            questions.append(
                EvalQuestion(
                    id=qid, question=question.strip(), answers=answers,
                    evidence=_strings(row.get("evidence_article_ids")),
                    question_date=date.fromisoformat(raw_date) if raw_date else None,
                    choices=choices, history=history,
                    unanswerable=bool(row.get("unanswerable")) or (not answers and row.get("type") == "unanswerable"),
                    type=str(row.get("type") or ("multiple-choice" if choices else "factoid")),
                )
            )
            seen.add(qid)
        except (ValueError, TypeError) as e:
            problems.append(LineProblem(str(path), lineno, str(e)))
    return questions, sorted(problems, key=lambda p: p.line)


def load_beir(directory: str | Path) -> tuple[Path, list[EvalQuestion], list[LineProblem]]:
    """A BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/*.tsv``) as an articles JSONL
    written beside it and retrieval-only questions."""
    directory = Path(directory)
    problems: list[LineProblem] = []
    articles = directory / ".rag-corpus.jsonl"
    with articles.open("w", encoding="utf-8") as out:
        for lineno, row in _jsonl(directory / "corpus.jsonl", problems):
            if "_id" not in row or not str(row.get("text", "")).strip():
                problems.append(LineProblem(str(directory / "corpus.jsonl"), lineno, "needs '_id' and 'text'"))
                continue
            out.write(json.dumps({"id": str(row["_id"]), "title": row.get("title") or "", "text": row["text"]}) + "\n")
    queries = {str(r["_id"]): str(r.get("text", "")) for _, r in _jsonl(directory / "queries.jsonl", problems) if "_id" in r}
    relevant: dict[str, list[str]] = {}
    for tsv in sorted((directory / "qrels").glob("*.tsv")):
        for lineno, line in enumerate(tsv.read_text(encoding="utf-8").splitlines(), start=1):
            parts = line.split("\t")
            if lineno == 1 and not parts[-1].strip().lstrip("-").isdigit():
                continue  # header
            if len(parts) < 3:
                problems.append(LineProblem(str(tsv), lineno, "expected query-id, corpus-id, score"))
                continue
            if int(parts[2]) > 0:
                relevant.setdefault(parts[0], []).append(parts[1])
    questions = [EvalQuestion(id=q, question=queries[q], evidence=tuple(docs), type="retrieval")
                 for q, docs in relevant.items() if queries.get(q)]
    return articles, questions, problems


# The modules whose output is stored in an index (chunk boundaries, what is embedded, near-duplicate
# marks): an edit to any of them makes a cached evaluation index stale, so their source is in its key.
_INDEX_SHAPING_MODULES = ("chunking", "dedup")


def eval_index_key(articles: Path, settings: Settings, embedder: Embedder | None = None) -> str:
    """The cache key of an evaluation index: the articles, the embedder, the chunker settings and
    the source of the code that shapes the stored index."""
    import importlib

    key = hashlib.sha256(articles.read_bytes())
    key.update(f"{settings.embedder}|{settings.chunk_tokens}|{settings.chunk_overlap_tokens}".encode())
    if embedder is not None:
        key.update(embedder.name.encode())
    for name in _INDEX_SHAPING_MODULES:
        module = importlib.import_module(f"rag.{name}")
        key.update(Path(module.__file__ or "").read_bytes())
    return key.hexdigest()[:16]


def open_eval_index(
    articles: str | Path,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    llm: Generator | str | None = None,
) -> RAG:
    """A RAG over ``articles`` (JSONL), built once into the cache and reused by later runs with the
    same articles, embedder and chunking."""
    settings = settings or Settings()
    articles = Path(articles)
    index_dir = settings.cache_dir / "eval-indexes" / eval_index_key(articles, settings, embedder)
    # An evaluation corpus is one big JSONL file the user named on purpose: the per-file size
    # limit (meant for uploads) does not apply to it.
    max_bytes = max(settings.max_file_bytes, articles.stat().st_size)
    settings = settings.model_copy(update={"index_dir": index_dir, "seeds_dir": None, "max_file_bytes": max_bytes})
    rag = RAG.open(settings=settings, embedder=embedder, llm=llm, seed=False)
    if rag.info().articles == 0:
        report = rag.add([articles])
        if report.failed:
            raise RagError(f"{len(report.failed)} articles could not be loaded, e.g. {report.failed[0].path}: {report.failed[0].reason}")
    return rag


# ---------------------------------------------------------------- running





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


class Evaluator:
    """Runs a question set against a RAG: retrieval for every mode, then answers per model and
    evidence setting. Everything goes through the public API."""

    def __init__(
        self,
        rag: RAG,
        questions: Sequence[EvalQuestion],
        *,
        modes: Sequence[Mode] = MODES,
        llms: Sequence[str] = (),
        evidence: Sequence[str] = ("sentences",),
        answer: bool = True,
        k: int = 10,
        choices: bool = True,
    ) -> None:
        self.rag = rag
        self.questions = list(questions)
        self.modes = list(modes)
        self.llms = list(llms) or [rag.settings.llm]
        self.evidence = list(evidence)
        self.answer = answer
        self.k = k
        self.choices = choices  # also ask multiple-choice questions with their options
        self._copies: dict[str, set[str]] | None = None

    def _relevant(self, q: EvalQuestion) -> set[str]:
        """The evidence articles and their near-duplicate copies (the same wire story from another
        outlet is as good an answer source as the one the dataset names)."""
        if self._copies is None:
            groups: dict[str, set[str]] = {}
            for a in self.rag.articles():
                groups.setdefault(a.duplicate_of or a.id, set()).add(a.id)
            self._copies = {i: g for g in groups.values() for i in g}
        ids = {article_id(f"id:{e}") for e in q.evidence}
        return set().union(*(self._copies.get(i, {i}) for i in ids)) if ids else set()

    def _retrieval(self, q: EvalQuestion) -> dict[str, Any]:
        relevant = self._relevant(q)
        out: dict[str, Any] = {}
        for mode in self.modes:
            self.rag.clear_caches()  # every mode pays for its own embeddings: latencies stay comparable
            started = time.perf_counter()
            hits = self.rag.search(q.question, k=self.k, mode=mode, today=q.question_date)
            ms = (time.perf_counter() - started) * 1000
            ranked = [h.article.id for h in hits]
            scores = {f"hits@{k}": metrics.hits_at(ranked, relevant, k) for k in KS}
            scores.update({"recall@10": metrics.recall_at(ranked, relevant, 10), "mrr@10": metrics.mrr_at(ranked, relevant, 10),
                           "ndcg@10": metrics.ndcg_at(ranked, relevant, 10), "ms": ms,
                           "curve": [metrics.hits_at(ranked, relevant, k) for k in range(1, 11)]})
            out[mode] = scores
        return out

    def _answer(self, q: EvalQuestion, llm: str, rag: RAG) -> dict[str, Any]:
        relevant = self._relevant(q)
        answer = rag.ask(q.question, history=list(q.history), llm=llm, today=q.question_date)
        record: dict[str, Any] = {
            "text": answer.text, "refused": answer.refused, "citations": [c.article.id for c in answer.citations],
            "total_s": answer.timings.get("total_s", float("nan")),
            "ttft_s": answer.timings.get("first_token_s", float("nan")),
            "retrieval_s": answer.timings.get("retrieval_s", float("nan")),
            "prompt_tokens": sum(self.rag.embedder.count_tokens(s.text) for s in answer.sources),
            "llm_prompt_tokens": _llm_prompt_tokens(rag, llm, answer),
            "notes": list(answer.notes),
        }
        if not answer.refused:
            supported = _citation_support(answer)
            record["citation_support"] = metrics.mean([float(v) for v in supported]) if supported else None
            record["cites_nothing"] = float(not answer.citations)
        if q.answers:
            text = "" if answer.refused else answer.text
            record.update(em=metrics.exact_match(text, q.answers), contains=metrics.contains_answer(text, q.answers),
                          f1=metrics.token_f1(text, q.answers), right=metrics.option_right(text, q.answers[0]))
            if q.choices:
                record["best_option"] = metrics.best_option(text, q.choices, q.answers[0])
        if answer.citations:
            good = [c.article.id in relevant or metrics.contains_answer(c.quote, q.answers) for c in answer.citations]
            record["citation_precision"] = sum(good) / len(good)
        if relevant and not q.unanswerable:
            record["citation_recall"] = len({c.article.id for c in answer.citations} & relevant) / len(relevant)
        if q.choices and self.choices:
            # The same question with its options (RAG.ask(choices=)): the model picks one, cited.
            picked = rag.ask(q.question, history=list(q.history), llm=llm, today=q.question_date, choices=q.choices)
            record["mc_correct"] = float(picked.choice is not None and q.choices[picked.choice] == q.answers[0])
            record["mc_text"] = picked.text
        return record

    def run(self, limit: int | None = None, seed: int | None = None, progress: bool = True) -> EvalReport:
        from tqdm import tqdm

        questions = list(self.questions)
        if seed is not None:
            random.Random(seed).shuffle(questions)
        if limit:
            questions = questions[:limit]
        configs = [(llm, ev) for llm in self.llms for ev in self.evidence] if self.answer else []
        report = EvalReport(config={
            "embedder": self.rag.info().embedder, "llms": self.llms if self.answer else [], "modes": self.modes,
            "evidence": self.evidence, "limit": limit, "seed": seed, "k": self.k,
            "context_tokens": self.rag.settings.context_tokens, "top_k": self.rag.settings.top_k,
            "answer_retrieval": self.rag.settings.retrieval,
        })
        bar = tqdm(questions, desc="evaluating", unit="q", disable=not progress)
        views = {ev: self.rag if ev == self.rag.settings.evidence else self.rag.with_settings(evidence=ev) for ev in self.evidence}
        for q in bar:
            record: dict[str, Any] = {"id": q.id, "type": q.type, "question": q.question, "answers": list(q.answers),
                                      "unanswerable": q.unanswerable, "evidence": list(q.evidence), "group": q.group}
            if q.evidence and self.modes:
                record["retrieval"] = self._retrieval(q)
            record["answers"] = {}
            for llm, ev in configs:
                record["answers"][f"{llm} / {ev}"] = self._answer(q, llm, views[ev])
            report.records.append(record)
        report.summary = summarize(report.records, self.modes)
        return report


def _llm_prompt_tokens(rag: RAG, llm: str, answer: Any) -> float:
    """Tokens of the answer prompt as the model reads it (system, sources, question); NaN for a
    generator that cannot count (a remote server) or when the model was never asked."""
    generator = rag.generator_for(llm)
    count = getattr(generator, "count_tokens", None)
    if count is None or not answer.sources or not answer.raw_text:
        return float("nan")
    messages = rag.prompts.answer_messages(answer.standalone_question or answer.question, answer.sources)
    return float(sum(count(m["content"]) + 4 for m in messages))  # + the chat template's role markers


def _cited_numbers(group: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", group)]


def _citation_support(answer: Any) -> list[bool]:
    """For each (answer sentence, citation in it): does the quoted sentence back it?"""
    from .chunking import split_sentences

    quotes = {c.n: c.quote for c in answer.citations}
    out = []
    claim = ""
    for span in split_sentences(answer.text):
        sentence = answer.text[span.start : span.end]
        if re.search(r"\w", CITATION.sub("", sentence)):
            claim = sentence  # a "[1]" left alone after the full stop belongs to the sentence before
        for m in CITATION.finditer(sentence):
            for n in _cited_numbers(m.group(1)):
                if n in quotes:
                    out.append(metrics.citation_supported(claim, quotes[n]))
    return out


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
            "n_answerable": len(answerable), "n_unanswerable": len(unanswerable),
            "prompt_tokens_p50": metrics.percentile([a["prompt_tokens"] for _, a in pairs], 50),
            **{f"{key}_{p}": metrics.percentile([a[f"{key}_s"] for _, a in pairs], int(p[1:]))
               for key in ("ttft", "total", "retrieval") for p in ("p50", "p95")},
        }
    return summary

