"""Follow-up rewriting runs only when a question needs its history (a model call saved otherwise)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import RAG
from rag.answer.followups import needs_history

DEV = Path(__file__).resolve().parent.parent / "eval" / "devset" / "questions.jsonl"
HISTORY = [("Where was Lavrov speaking?", "In Pyongyang [1].")]


def _dev_questions() -> list[dict]:
    return [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]


def test_every_dev_set_follow_up_is_rewritten() -> None:
    follow_ups = [q for q in _dev_questions() if q.get("history")]
    assert len(follow_ups) == 6
    assert [q["id"] for q in follow_ups if not needs_history(q["question"], q["history"])] == []


def test_standalone_dev_set_questions_are_not_rewritten() -> None:
    standalone = [q["question"] for q in _dev_questions() if not q.get("history")]
    rewritten = [q for q in standalone if needs_history(q, HISTORY)]
    # A few standalone questions use a pronoun for a name they give themselves ("... when it
    # was founded"): those are rewritten needlessly, which costs time but never a wrong search.
    assert len(rewritten) <= len(standalone) // 5, rewritten


@pytest.mark.parametrize("question", ["And Iran?", "Why?", "What about Brazil?", "and what did he say about Iran?",
                                      "Who is their coach?", "Did she say the same about Seoul?"])
def test_questions_pointing_back_are_rewritten(question: str) -> None:
    assert needs_history(question, HISTORY)


@pytest.mark.parametrize("question", ["What happened in Gaza this week?", "Is there a ceasefire in Gaza now?",
                                      "Which law that Congress passed in March raised the debt ceiling?"])
def test_time_words_and_relative_clauses_are_not_back_references(question: str) -> None:
    assert not needs_history(question, HISTORY)
    assert not needs_history("And what did he say about Iran?", [])  # no history: nothing to rewrite with


def test_a_standalone_question_in_a_chat_skips_the_rewrite(fake_rag: RAG) -> None:
    fake_rag.add([DEV.parent.parent.parent / "seeds"])
    calls = len(fake_rag.generator.calls)
    answer = fake_rag.ask("How many days of national mourning did Türkiye declare?", history=HISTORY)
    assert len(fake_rag.generator.calls) == calls + 1  # the answer only, no rewrite
    assert answer.standalone_question is None
    fake_rag.ask("And what did he say about Iran?", history=HISTORY)
    assert fake_rag.generator.calls[-2].kind == "condense"
