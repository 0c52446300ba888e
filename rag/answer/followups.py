"""Does a chat question need its history to be understood?

Rewriting a follow-up into a standalone question costs a model call (10-20 s on a busy 2-core
machine), so it runs only when the question points back at the conversation: a personal
pronoun ("what did he say", "who is their coach"), a continuation ("and Iran?", "what about
Brazil?"), or too few words to stand alone. A miss costs a wrong search; a needless rewrite
only costs time, so the test leans towards rewriting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Personal pronouns and back-references. Not "this/that/there": "this week", "the law that
# passed" and "is there" are how standalone news questions are written.
_REFERS = re.compile(
    r"\b(he|him|his|himself|she|her|hers|herself|it|its|itself|they|them|their|theirs|themselves|"
    r"the same|the former|the latter|the other one|the others)\b",
    re.I,
)
_CONTINUES = re.compile(r"^\W*(and|but|or|also|so|then|what about|how about|what else|anything else|more on)\b", re.I)
MIN_STANDALONE_WORDS = 4  # "Why?", "And Iran?", "Since when?" cannot stand alone


def needs_history(question: str, history: Sequence[tuple[str, str]]) -> bool:
    """True when ``question`` should be rewritten with ``history`` before searching."""
    if not history:
        return False
    if len(re.findall(r"\w+", question)) < MIN_STANDALONE_WORDS:
        return True
    return bool(_CONTINUES.match(question) or _REFERS.search(question))
