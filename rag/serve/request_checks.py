"""Checks on what a caller sends to the serving layer (HTTP API, Gradio routes) before it reaches
the pipeline, so bad input is a clear RagError (a 400) instead of a failure deep inside the
tokenizer, llama.cpp's context or date arithmetic (a 500)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import date

from rag.errors import RagError

MAX_QUESTION_CHARS = 2_000  # a question, or a user turn of the history: the condense prompt holds three
MAX_ANSWER_TURN_CHARS = 8_000  # an earlier answer (the prompt keeps its first 400 characters)
MAX_HISTORY_TURNS = 100
MAX_COMBINING_RUN = 30  # Unicode's stream-safe text format allows 30 combining marks in a row
# "Yesterday", "last year", "ten years ago" are date arithmetic around `today`: keep it far
# from the ends of the calendar (date.min/date.max) that Python's dates cannot cross.
MIN_TODAY, MAX_TODAY = date(1000, 1, 1), date(8999, 12, 31)


def check_text(text: str, what: str, limit: int) -> str:
    """``text`` unchanged when it is valid Unicode of a sane shape; else a RagError naming the fix."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RagError(
            f"{what} contains an unpaired surrogate (U+{ord(text[e.start]):04X}) at character {e.start}, "
            "which is not valid Unicode: send UTF-8 text"
        ) from None
    run = longest = 0
    for ch in text:
        run = run + 1 if unicodedata.combining(ch) else 0
        longest = max(longest, run)
    if longest > MAX_COMBINING_RUN:
        raise RagError(
            f"{what} has {longest:,} combining marks in a row; at most {MAX_COMBINING_RUN} are allowed "
            "(remove the stacked accents)"
        )
    if len(text) > limit:
        raise RagError(f"{what} is {len(text):,} characters long; the limit is {limit:,}: send a shorter text")
    return text


def check_question(question: str) -> str:
    check_text(question, "the question", MAX_QUESTION_CHARS)
    if not question.strip():
        raise RagError("the question is empty")
    return question


def check_history(history: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    if len(history) > MAX_HISTORY_TURNS:
        raise RagError(f"the history has {len(history)} turns; at most {MAX_HISTORY_TURNS} are allowed")
    for i, (user, assistant) in enumerate(history, start=1):
        check_text(user, f"history turn {i} (the user's message)", MAX_QUESTION_CHARS)
        check_text(assistant, f"history turn {i} (the assistant's answer)", MAX_ANSWER_TURN_CHARS)
    return list(history)


def check_today(today: date | None) -> date | None:
    if today is not None and not MIN_TODAY <= today <= MAX_TODAY:
        raise RagError(f"today={today.isoformat()} is out of range: use a date from {MIN_TODAY} to {MAX_TODAY}")
    return today


def check_model(llm: str | None, available: Sequence[str]) -> str | None:
    """Only the listed model names, never a path: a name picks a model loaded once and shared."""
    if llm and llm not in available:
        shown = llm if len(llm) <= 80 else llm[:80] + "…"
        raise RagError(f"unknown model {shown!r}: choose one of {', '.join(available)}")
    return llm or None
