"""The evaluator: a question set against a RAG through its public API, every retrieval mode,
then answers per model and evidence setting."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from typing import Any

from rag.answer.citations import CITATION
from rag.answer.retrieval import MODES, Mode
from rag.api import RAG
from rag.documents.articles import article_id
from rag.evaluation import metrics
from rag.evaluation.questions import EvalQuestion
from rag.evaluation.report import KS, EvalReport, summarize
from rag.options import AskOptions


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
        evidence_check: bool = False,
    ) -> None:
        self.rag = rag
        self.questions = list(questions)
        self.modes = list(modes)
        self.llms = list(llms) or [rag.settings.llm]
        self.evidence = list(evidence)
        self.answer = answer
        self.k = k
        self.choices = choices  # also ask multiple-choice questions with their options
        self.evidence_check = evidence_check  # does what the model would read hold the right answer?
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

    def _evidence(self, q: EvalQuestion) -> dict[str, float]:
        """Without a model: do the passages retrieved for answering, and the evidence cut from
        them, hold every content word of the right answer? Tells a retrieval or selection miss
        from an answering one, cheaply enough to sweep the evidence budget."""
        found = self.rag.evidence(q.question, AskOptions(today=q.question_date))
        right = q.answers[0]
        return {
            "in_retrieved": metrics.option_right(" ".join(h.text for h in found.retrieved), right),
            "in_evidence": metrics.option_right(" ".join(h.text for h in found.passages), right),
            "evidence_tokens": float(sum(self.rag.embedder.count_tokens(h.text) for h in found.passages)),
        }

    def _answer(self, q: EvalQuestion, llm: str, rag: RAG) -> dict[str, Any]:
        relevant = self._relevant(q)
        options = AskOptions(llm=llm, today=q.question_date)
        answer = rag.ask(q.question, list(q.history), options)
        record: dict[str, Any] = {
            "text": answer.text, "refused": answer.refused, "citations": [c.article.id for c in answer.citations],
            "total_s": answer.timings.get("total_s", float("nan")),
            "ttft_s": answer.timings.get("first_token_s", float("nan")),
            "retrieval_s": answer.timings.get("retrieval_s", float("nan")),
            "prompt_tokens": sum(self.rag.embedder.count_tokens(s.text) for s in answer.sources),
            "llm_prompt_tokens": _llm_prompt_tokens(rag, llm, answer),
            "notes": list(answer.notes),
            "refused_by": answer.refused_by,
            "raw_text": answer.raw_text,
        }
        if not answer.refused:
            supported = _citation_support(answer)
            record["citation_support"] = metrics.mean([float(v) for v in supported]) if supported else None
            record["cites_nothing"] = float(not answer.citations)
        if q.answers:
            text = "" if answer.refused else answer.text
            record.update(em=metrics.exact_match(text, q.answers), contains=metrics.contains_answer(text, q.answers),
                          f1=metrics.token_f1(text, q.answers), right=metrics.option_right(text, q.answers[0]))
            # The model's own reply, before any check: what a refusing check cost or caught.
            record["raw_right"] = metrics.option_right(CITATION.sub("", answer.raw_text), q.answers[0]) if answer.raw_text else None
            if q.choices:
                record["best_option"] = metrics.best_option(text, q.choices, q.answers[0])
        if answer.citations:
            good = [c.article.id in relevant or metrics.contains_answer(c.quote, q.answers) for c in answer.citations]
            record["citation_precision"] = sum(good) / len(good)
        if relevant and not q.unanswerable:
            record["citation_recall"] = len({c.article.id for c in answer.citations} & relevant) / len(relevant)
        if q.choices and self.choices:
            # The same question with its options (RAG.ask(choices=)): the model picks one, cited.
            picked = rag.ask(q.question, list(q.history), options.with_changes(choices=q.choices))
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
            if self.evidence_check and q.answers and not q.unanswerable:
                record["evidence_check"] = self._evidence(q)
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
    from rag.text import split_sentences

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
