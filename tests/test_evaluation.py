from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rag import Settings
from rag.evaluation import Evaluator, load_beir, load_questions, metrics, open_eval_index
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .conftest import ROOT

DEVSET = ROOT / "eval" / "devset"


# ---------------------------------------------------------------- metrics, by hand


def test_rank_metrics_hand_computed():
    ranked = ["b", "a", "a", "c", "d"]  # "a" twice: counts once, at rank 2
    assert metrics.first_occurrences(ranked) == ["b", "a", "c", "d"]
    assert metrics.hits_at(ranked, {"a"}, 1) == 0.0
    assert metrics.hits_at(ranked, {"a"}, 2) == 1.0
    assert metrics.mrr_at(ranked, {"a"}, 10) == 0.5
    assert metrics.mrr_at(ranked, {"c"}, 10) == pytest.approx(1 / 3)  # duplicates do not push c down
    assert metrics.recall_at(ranked, {"a", "d", "z"}, 4) == pytest.approx(2 / 3)
    # nDCG@4 with relevant {a, d}: DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert metrics.ndcg_at(ranked, {"a", "d"}, 4) == pytest.approx(expected)


def test_rank_metrics_edge_cases():
    assert metrics.hits_at([], {"a"}, 10) == 0.0
    assert metrics.recall_at(["a"], set(), 10) == 0.0  # no evidence: nothing to recall
    assert metrics.ndcg_at(["a"], set(), 10) == 0.0
    assert metrics.mrr_at(["x", "y"], {"a"}, 10) == 0.0
    assert metrics.ndcg_at(["a", "b"], {"a"}, 10) == 1.0


def test_answer_metrics_hand_computed():
    assert metrics.normalize("The  Guarantor-System!") == "guarantor system"
    assert metrics.exact_match("a guarantor system.", ["Guarantor system"]) == 1.0
    assert metrics.exact_match("guarantor", ["guarantor system"]) == 0.0
    assert metrics.contains_answer("Ankara proposed a guarantor system [1].", ["guarantor system"]) == 1.0
    assert metrics.contains_answer("three-day mourning", ["three days"]) == 0.0
    # F1: pred {three, days, of, mourning} vs gold {three, days}: P=2/4, R=1 -> 2/3
    assert metrics.token_f1("three days of mourning", ["three days"]) == pytest.approx(2 / 3)
    assert metrics.token_f1("nothing", ["three days", "nothing"]) == 1.0


def test_answer_metrics_empty_cases():
    assert metrics.exact_match("", []) == 0.0
    assert metrics.exact_match("", [""]) == 1.0
    assert metrics.contains_answer("anything", []) == 0.0
    assert metrics.contains_answer("anything", [""]) == 0.0
    assert metrics.token_f1("", ["gold"]) == 0.0
    assert math.isnan(metrics.percentile([], 50))
    assert math.isnan(metrics.mean([None]))


def test_percentiles():
    assert metrics.percentile([1, 2, 3, 4], 50) == 2.5
    assert metrics.percentile([5], 95) == 5
    assert metrics.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) == pytest.approx(9.55)


# ---------------------------------------------------------------- inputs


def test_malformed_question_lines_are_reported_with_line_numbers(tmp_path: Path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "q1", "question": "Where?", "answer": "Pyongyang", "evidence_article_ids": ["a"]}\n'
        "{not json\n"
        '{"id": "q3", "answer": "x"}\n'
        '{"id": "q1", "question": "Again?", "answer": "y"}\n'
        '{"id": "q5", "question": "Pick", "answer": "A", "choices": ["B", "C"]}\n'
        '["a list"]\n'
        '{"id": "q7", "question": "Nothing?", "answer": [], "unanswerable": true}\n'
    )
    questions, problems = load_questions(path)
    assert [q.id for q in questions] == ["q1", "q7"]
    assert questions[1].unanswerable and questions[0].answers == ("Pyongyang",)
    assert [(p.line, p.reason.split(" (")[0]) for p in problems] == [
        (2, "invalid JSON"),
        (3, "'question' must be a non-empty string"),
        (4, "duplicate id 'q1'"),
        (5, "'choices' must contain the answer"),
        (6, "not a JSON object"),
    ]


def test_beir_layout(tmp_path: Path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "Tram", "text": "The council approved a tram line."}\n{"_id": "d2", "text": "Snow fell."}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "tram line approval"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\n")
    articles, questions, problems = load_beir(tmp_path)
    assert problems == [] and [(q.question, q.evidence) for q in questions] == [("tram line approval", ("d1",))]
    assert len(articles.read_text().splitlines()) == 2


# ---------------------------------------------------------------- the dev set


def test_dev_set_is_complete_and_consistent():
    questions, problems = load_questions(DEVSET / "questions.jsonl")
    assert problems == []
    assert len(questions) >= 40
    bodies = {}
    for line in (DEVSET / "articles.jsonl").read_text().splitlines():
        row = json.loads(line)
        bodies[row["id"]] = row["body"].lower()
    types = {q.type for q in questions}
    assert {"factoid", "follow-up", "unanswerable", "multiple-choice"} <= types
    for q in questions:
        assert all(e in bodies for e in q.evidence), q.id
        if not q.unanswerable:
            assert any(a.lower() in bodies[e] for a in q.answers for e in q.evidence), q.id


# ---------------------------------------------------------------- end to end


def test_evaluator_with_fakes_writes_json_markdown_and_plots(tmp_path: Path):
    settings = Settings(cache_dir=tmp_path / "cache")
    rag = open_eval_index(DEVSET / "articles.jsonl", settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())
    questions, _ = load_questions(DEVSET / "questions.jsonl")
    report = Evaluator(rag, questions, evidence=["sentences", "chunks"]).run(limit=12, seed=1, progress=False)
    paths = report.save(tmp_path / "out")
    assert {p.name for p in paths} == {"report.json", "report.md", "hits_at_k.png", "latency.png"}
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(data["records"]) == 12
    assert set(data["summary"]["retrieval"]) == {"dense", "bm25", "hybrid", "rerank"}
    assert set(data["summary"]["answers"]) == {"qwen2.5-coder-1.5b-instruct / sentences", "qwen2.5-coder-1.5b-instruct / chunks"}
    assert "| hybrid |" in (tmp_path / "out" / "report.md").read_text()
    # A rerun reuses the index built for the same articles and settings.
    again = open_eval_index(DEVSET / "articles.jsonl", settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())
    assert again.store.directory == rag.store.directory


@pytest.mark.real_models
def test_rag_eval_command_on_the_dev_set(tmp_path: Path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "RAG_LLM": "smollm2-135m-instruct"}
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", "eval", str(DEVSET / "questions.jsonl"), "--articles", str(DEVSET / "articles.jsonl"),
         "--out", str(tmp_path / "out"), "--limit", "4", "--seed", "3"],
        capture_output=True, text=True, env=env, timeout=900, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| dense |" in result.stdout and "smollm2-135m-instruct / sentences" in result.stdout
    assert "evaluating" in result.stderr  # the progress bar
    assert (tmp_path / "out" / "hits_at_k.png").stat().st_size > 1000


def test_refusals_are_counted_by_check_with_what_each_cost_and_caught():
    from rag.evaluation import summarize

    def rec(unanswerable: bool, refused_by, raw_right=None, right=0.0):
        answer = {"refused": refused_by is not None, "refused_by": refused_by, "raw_right": raw_right, "right": right,
                  "prompt_tokens": 100, "ttft_s": 1.0, "total_s": 2.0, "retrieval_s": 0.1}
        return {"answers": {"m / sentences": answer}, "unanswerable": unanswerable, "group": "g"}

    records = [rec(False, "claims", raw_right=1.0), rec(False, "claims", raw_right=0.0), rec(False, "coverage"),
               rec(True, "claims", raw_right=0.0), rec(True, "model", raw_right=0.0), rec(False, None, right=1.0)]
    by = summarize(records, [])["answers"]["m / sentences"]["refused_by"]
    assert by == {"claims": {"evidence": 2, "evidence_raw_right": 1, "not_in_corpus": 1},
                  "coverage": {"evidence": 1, "evidence_raw_right": 0, "not_in_corpus": 0},
                  "model": {"evidence": 0, "evidence_raw_right": 0, "not_in_corpus": 1}}


def test_an_interrupted_eval_index_build_is_built_again(tmp_path: Path):
    from rag.evaluation import eval_index_key

    articles = ROOT / "eval" / "devset" / "articles.jsonl"
    settings = Settings(cache_dir=tmp_path / "cache", seeds_dir=None)
    full = open_eval_index(articles, settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())
    count = full.info().articles
    full.close()
    index_dir = settings.cache_dir / "eval-indexes" / eval_index_key(articles, settings, HashingEmbedder())
    # What a build killed after its first article leaves: one article, and the mark.
    partial = open_eval_index(articles, settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())
    partial.remove([a.id for a in partial.articles()][1:])
    partial.close()
    index_dir.with_name(index_dir.name + ".building").touch()
    rebuilt = open_eval_index(articles, settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())
    assert rebuilt.info().articles == count > 1
    assert not index_dir.with_name(index_dir.name + ".building").exists()
    rebuilt.close()
