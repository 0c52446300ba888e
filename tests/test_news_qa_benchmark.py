"""The real-news benchmark (benchmarks/news_qa.py): its scoring functions, and its whole code path
on a tiny slice in the news-qa-2024 format built from eval/devset (CI never needs the real data)."""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from rag import Settings
from rag.evaluation import metrics
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import news_qa  # noqa: E402

# ---------------------------------------------------------------- scoring


def test_option_right_needs_every_content_word_of_the_right_option() -> None:
    assert metrics.option_right("Luke Humphries beat Luke Littler 7-4 in the final [1].", "Luke Humphries") == 1.0
    assert metrics.option_right("Humphries won the title [1].", "Luke Humphries") == 0.0
    assert metrics.option_right("Denmark's Queen Margrethe II abdicated [2].", "Denmark's Queen Margrethe") == 1.0
    assert metrics.option_right("The storms were named [1].", "Storm Henk") == 0.0
    assert metrics.option_right("", "Henk") == 0.0


def test_best_option_is_the_lenient_figure() -> None:
    choices = ["Hank", "Henk", "Hink", "Hunk"]
    assert metrics.best_option("Storm Henk hit Britain [1].", choices, "Henk") == 1.0
    assert metrics.best_option("Storm Hank hit Britain [1].", choices, "Henk") == 0.0
    # Naming two options equally well is not a pick.
    assert metrics.best_option("Either Henk or Hank [1].", choices, "Henk") == 0.0
    # Part of the right option, none of the others: the lenient figure counts it.
    assert metrics.best_option("Humphries won [1].", ["Rob Cross", "Luke Humphries", "Scott Williams"], "Luke Humphries") == 1.0


def test_citation_support_checks_names_and_numbers_in_the_quoted_sentence() -> None:
    quote = "Lavrov spoke in Pyongyang on Thursday, where 40 reporters attended."
    assert metrics.citation_supported("Lavrov spoke in Pyongyang [1].", quote)
    assert not metrics.citation_supported("Lavrov spoke in Seoul [1].", quote)
    assert not metrics.citation_supported("About 45 reporters attended [1].", quote)
    assert metrics.citation_supported("About 40 reporters attended [1].", quote)
    # No names or numbers: half the content words must be there.
    assert metrics.citation_supported("the talks were described as useful [1]", "Officials described the talks as useful.")
    assert not metrics.citation_supported("the harvest failed badly [1]", "Officials described the talks as useful.")


def test_quiz_weeks_groups_dates_days_apart() -> None:
    d = date(2024, 1, 5)
    weeks = news_qa.quiz_weeks([d, d + timedelta(days=27), d + timedelta(days=28), d + timedelta(days=56)])
    assert list(weeks.values()) == [0, 1, 1, 2]


# ---------------------------------------------------------------- the code path on a tiny slice


def _tiny_news_qa(folder: Path) -> Path:
    """eval/devset as a news-qa-2024 folder: its articles unchanged; its standalone factoid
    questions as multiple choice over 12 weekly quiz dates; two questions no article answers."""
    dev = ROOT / "eval" / "devset"
    folder.mkdir()
    (folder / "articles.jsonl").write_text((dev / "articles.jsonl").read_text())
    rows = [json.loads(line) for line in (dev / "questions.jsonl").read_text().splitlines() if line.strip()]
    factoid = [r for r in rows if r.get("type") == "factoid" and r.get("answer") and not r.get("history")][:12]
    distractors = ["Brussels", "forty", "Marta Olsen", "a ceasefire"]
    out = []
    for week, row in enumerate(factoid):
        right = row["answer"][0]
        out.append({"id": row["id"], "question": row["question"], "answer": [right],
                    "choices": [right, *[d for d in distractors if d != right][:3]], "type": "multiple-choice",
                    "question_date": (date(2024, 1, 5) + timedelta(days=28 * week)).isoformat(),
                    "evidence_article_ids": row["evidence_article_ids"]})
    for week, (question, right) in enumerate([("Which storm hit Zerovia this week?", "Storm Quillon"),
                                              ("Who won the Harbin ice marathon?", "Ottoline Brisk")]):
        out.append({"id": f"missing-{week}", "question": question, "answer": [right],
                    "choices": [right, "Brussels", "forty", "Marta Olsen"], "type": "multiple-choice",
                    "question_date": (date(2024, 1, 5) + timedelta(days=28 * (week * 11))).isoformat(),
                    "evidence_article_ids": []})
    (folder / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out))
    return folder


def test_benchmark_runs_end_to_end_on_a_tiny_slice(tmp_path: Path) -> None:
    data = _tiny_news_qa(tmp_path / "news-qa")
    settings = Settings(cache_dir=tmp_path / "cache", seeds_dir=None)
    variants = {"baseline": news_qa.BASELINE, "default": {}}
    saved: list[list[str]] = []  # what a long run has kept after each variant
    result = news_qa.run(data, variants, settings=settings, embedder=HashingEmbedder(),
                         generator=ExtractiveFakeGenerator(), progress=False,
                         on_variant=lambda r: saved.append(list(r["variants"])))
    assert saved == [["baseline"], ["baseline", "default"]]
    assert result["config"]["questions"] == {"evidence": 12, "not_in_corpus": 2, "asked": 14}
    # The evidence ceiling (no model): does what the model reads hold the right answer?
    check = result["variants"]["default"]["summary"][news_qa.TUNED]["evidence_check"]
    assert check["n"] == 6 and 0.0 <= check["in_evidence"] <= check["in_retrieved"] + 1e-9 <= 1.0 + 1e-9
    for name in variants:
        halves = result["variants"][name]["summary"]
        assert set(halves) == {news_qa.TUNED, news_qa.HELD_OUT}
        tuned = halves[news_qa.TUNED]
        assert tuned["retrieval"]["hybrid"]["n"] == 6 and halves[news_qa.HELD_OUT]["retrieval"]["hybrid"]["n"] == 6
        # BM25 is perfect on the dev set (which is why it cannot tune anything): the code path is right.
        assert tuned["retrieval"]["bm25"]["hits@10"] == 1.0
        answers = next(iter(tuned["answers"].values()))
        assert answers["n_answerable"] == 6 and answers["n_unanswerable"] == 1
        # The extractive fake quotes the best-matching sentence, which holds most dev answers.
        assert answers["right"] >= 0.5 and answers["best_option"] >= answers["right"] - 1e-9
        assert answers["citation_support"] >= 0.5
        assert answers["llm_prompt_tokens_p50"] != answers["llm_prompt_tokens_p50"]  # NaN: the fake counts no tokens
    # One cached index per chunker setting: the baseline's 128-token chunks and the default's.
    assert len(list((tmp_path / "cache" / "eval-indexes").iterdir())) == (
        1 if Settings().chunk_tokens == news_qa.BASELINE["chunk_tokens"] else 2
    )
    text = news_qa.markdown(result)
    assert "| baseline | tuned (weeks 1-6) | hybrid |" in text and "right / declined / wrong" in text


def test_benchmark_skips_cleanly_without_the_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert news_qa.main(["--data", str(tmp_path / "absent")]) == 0
    assert "not found" in capsys.readouterr().out
