"""Questions that come with options (a quiz, a form): matching an answer to the option it names.

The model reads the options and answers in words, citing a source as always; the option it
picked is the one whose content words the answer covers best, so an answer is never forced onto
an option it does not name, and a refusal picks none.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

from rag.text import content_words


def _words(text: str) -> set[str]:
    return content_words(text) or {w for w in text.lower().split() if w}


def coverage(text: str, option: str) -> float:
    """Share of the option's content words (stemmed) that ``text`` contains (0..1)."""
    words = _words(option)
    if not words:
        return 0.0
    found = content_words(text) | {w.strip(string.punctuation) for w in text.lower().split()}
    return len(words & found) / len(words)


def pick_choice(text: str, choices: Sequence[str]) -> int | None:
    """The index of the option ``text`` names: the one it covers best, strictly better than any
    other and at least half of its words; None when it names none or two alike."""
    scores = [coverage(text, c) for c in choices]
    if not scores:
        return None
    best = max(range(len(scores)), key=lambda i: scores[i])
    if scores[best] < 0.5 or sum(1 for s in scores if s == scores[best]) > 1:
        return None
    return best
