"""Questions with options: RAG.ask(choices=) shows them to the model, searches with them, and
reports the option the answer names (Answer.choice)."""

from __future__ import annotations

from rag import RAG
from rag.answer.choices import coverage, pick_choice

from .conftest import SEEDS


def test_pick_choice_takes_the_option_the_answer_names() -> None:
    choices = ["Seoul", "Pyongyang", "Moscow", "Ankara"]
    assert pick_choice("Lavrov was speaking in Pyongyang [1].", choices) == 1
    assert pick_choice("He spoke in Pyongyang about Ankara's plan [1].", choices) is None  # two alike: no pick
    assert pick_choice("The articles do not say.", choices) is None
    assert pick_choice("Queen Margrethe II of Denmark abdicated [1].", ["Denmark's Queen Margrethe", "King Harald"]) == 0
    assert coverage("a guarantor system [1]", "guarantor system") == 1.0


def test_ask_with_choices_puts_them_in_the_prompt_and_picks_one(fake_rag: RAG) -> None:
    fake_rag.add([SEEDS])
    choices = ["three days", "one week", "two days", "a month"]
    answer = fake_rag.ask("How many days of national mourning did Türkiye declare?", choices=choices)
    prompt = fake_rag.generator.calls[-1][-1]["content"]
    assert "A) three days; B) one week; C) two days; D) a month" in prompt
    assert answer.choices == choices and answer.choice == 0, answer.text
    assert answer.to_dict()["choice"] == 0 and answer.citations


def test_without_choices_nothing_changes(fake_rag: RAG) -> None:
    fake_rag.add([SEEDS])
    answer = fake_rag.ask("How many days of national mourning did Türkiye declare?")
    assert "Options" not in fake_rag.generator.calls[-1][-1]["content"]
    assert answer.choices == [] and answer.choice is None
