"""The names an article is about — capitalised words past a sentence's first word, in its
headline and lede — read with one regular expression, because a week of articles must be
read in seconds (the sentence splitter takes about 7 s per MB)."""

from __future__ import annotations

import re

from rag.text import STOPWORDS, fold

# Where names of the story sit: the headline and the first paragraphs.
LEDE_CHARS = 2000
_CAPITALISED = re.compile(r"(?<![\w'’-])[A-Z][\w'’-]*[\w]")
# A capital after these starts a sentence, so it may be grammar, not a name.
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"“”]\s*|\n\s*|\(\w+\)\s*[—–-]\s*)$")
# Words capitalised in news without naming the story: titles, days, months, newsroom words.
_NOT_NAMES = STOPWORDS | frozenset(
    """mr mrs ms dr president minister prime secretary governor senator rep officials official police chief
    monday tuesday wednesday thursday friday saturday sunday january february march april june july august
    september october november december news reuters ap afp associated press updated read more said says
    new first last year years week today tomorrow yesterday""".split()
)


def article_names(title: str, text: str) -> frozenset[str]:
    """Folded name words of an article: every capitalised word of its headline's middle and of
    its lede that does not open a sentence ('Lavrov', 'pyongyang'), titles and days left out."""
    found: set[str] = set()
    for part in (title, text[:LEDE_CHARS]):
        for m in _CAPITALISED.finditer(part):
            before = part[max(0, m.start() - 12) : m.start()]
            word = re.sub(r"['’]s$", "", m.group())
            if (_SENTENCE_START.search(before) and not word.isupper()) or len(word) < 3:
                continue
            key = fold(word)
            if key not in _NOT_NAMES:
                found.add(key)
    return frozenset(found)


def name_overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Shared names over the smaller set (0..1); 0 when fewer than two are shared, since one
    shared name ("Biden") says little about being the same story."""
    shared = len(a & b)
    return shared / min(len(a), len(b)) if shared >= 2 else 0.0
