"""Is each answer sentence supported by the sentence it cites?

Word overlap cannot tell "Lavrov said Seoul is one of the factors that escalates the situation"
from "Lavrov says North Korea is one of the factors ...": both share nearly every word with the
cited sentence. What carries a claim are its names and numbers, so every name, number and link
in an answer sentence must be in the sentence it cites (or in the cited article's metadata: its
headline, source, author, date), not merely somewhere in the sources. A sentence that fails is
dropped; see :func:`unsupported_claims`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.citations import CITATION, metadata_fields, strip_citations
from rag.results import Hit
from rag.text import STOPWORDS, content_words, fold, numbers, split_sentences

# Capitalised words that name nothing a source must contain: titles and roles ("Foreign
# Minister Sergey Lavrov" is Lavrov), and words capitalised for grammar.
_NOT_NAMES = frozenset(
    """i what who whom whose when where why how which according the a an and or in on at of for about
    minister president prime foreign secretary general chief executive officer spokesman spokeswoman spokesperson
    mayor governor chairman chairwoman chair director head senator deputy ambassador envoy leader official officials
    mr mrs ms dr prof sir madam king queen prince princess pope premier chancellor commander captain coach
    article story report source sources news agency""".split()
) | STOPWORDS
# The name of a source ("Anadolu Agency") and news words stay checkable through their other words.
_WORD = re.compile(r"[^\W_][\w'’.]*")
_URL = re.compile(
    r"https?://[^\s)\]>\"']+|www\.[^\s)\]>\"']+|\b(?:[a-z0-9-]+\.)+(?:com|org|net|gov|edu|io|info|biz|co|uk|de|fr|ru|tr|example|xyz|app|"
    r"site|online|top|me|ly|link)\b(?:/[^\s)\]>\"']*)?",
    re.I,
)
# A second sentence of a cited passage may support a claim's remaining names and numbers only
# when it shares this many other content words with the claim: the claim merges two sentences
# of one story ("reopened on Monday, and 40 boats returned"), not a name borrowed from another.
SECOND_SENTENCE_MIN_SHARED = 2
# Words that open an answer sentence without naming anything.
_OPENERS = frozenset(
    """yes no both overall additionally also however instead meanwhile furthermore moreover still yet while although though
    because since after before during until unless as thus therefore hence so then first second third finally lastly
    according based in on at by for from with without among amid despite regarding concerning per""".split()
)
# "one" is mostly not a number ("one of the factors").
_LOOSE_NUMBERS = frozenset({"1"})
# Name words sharing their first this many letters are one name ('Korea'/'Korean',
# 'Türkiye'/'Turkish'); shorter words must match whole ('Xi', 'UN').
NAME_STEM_LETTERS = 4


def _key(word: str) -> str:
    return fold(re.sub(r"['’]s$|[.'’]+$", "", word))


def _same(a: str, b: str) -> bool:
    """The same name word: equal, or sharing a stem of NAME_STEM_LETTERS letters."""
    if a == b:
        return True
    n = NAME_STEM_LETTERS
    return len(a) >= n and len(b) >= n and a[:n] == b[:n]


def name_runs(text: str, known: set[str] | None = None, common: set[str] | None = None) -> list[tuple[str, ...]]:
    """Runs of capitalised words ('North Korea', 'Sergey Lavrov'), each as its folded words,
    titles and grammar words left out. A sentence's first word starts a run only when the next
    word is capitalised too, or it is in capitals, or ``known`` (names seen mid-sentence in the
    sources) has it, or ``common`` (every word of the sources) lacks it: 'Officials said' names
    no one when the sources speak of officials, 'Seoul is' and 'Egypt proposed' do."""
    runs: list[tuple[str, ...]] = []
    for span in split_sentences(text):
        sentence = text[span.start : span.end]
        words = list(_WORD.finditer(sentence))
        run: list[str] = []
        for i, m in enumerate(words):
            raw = m.group().rstrip(".")
            key = _key(raw)
            first = i == 0 or sentence[words[i - 1].end() : m.start()].strip() in (":", '"', "“", "‘", "'", ': "', ":“")
            capital = raw[:1].isupper()
            if capital and first and not (
                raw.isupper() and len(raw) > 1
                or (i + 1 < len(words) and words[i + 1].group()[:1].isupper())
                or (known is not None and key in known)
                or (common is not None and key not in common and key not in _OPENERS and not key.endswith("ly"))
            ):
                capital = False
            if capital and key not in _NOT_NAMES:
                run.append(key)
                if re.search(r"['’]s$", m.group()):  # "Russia's Foreign Minister": two names
                    runs.append(tuple(run))
                    run = []
                continue
            if capital and run:  # a title inside a name ("Foreign Minister Lavrov") keeps the run going
                continue
            if run:
                runs.append(tuple(run))
                run = []
        if run:
            runs.append(tuple(run))
    return runs


_AGO = re.compile(r"\b\w+\s+(?:days?|weeks?|months?|years?)\s+ago\b", re.I)


def known_names(texts: Sequence[str]) -> set[str]:
    """Words capitalised somewhere after a sentence's first word: the sources' names."""
    out: set[str] = set()
    for text in texts:
        for span in split_sentences(text):
            words = _WORD.findall(text[span.start : span.end])
            out.update(_key(w) for w in words[1:] if w[:1].isupper())
    return out


def _run_supported(run: tuple[str, ...], support: list[tuple[str, ...]]) -> bool:
    """A name is supported by a run of the support naming the same one: one is part of the
    other ('Lavrov' / 'Sergey Lavrov'), which 'North Korea' / 'South Korea' are not."""
    for other in support:
        if all(any(_same(w, o) for o in other) for w in run) or all(any(_same(o, w) for w in run) for o in other):
            return True
    return False


def _hosts(text: str) -> set[str]:
    return {re.sub(r"^(https?://)?(www\.)?", "", u.lower()).split("/")[0].rstrip(".,;:!?") for u in _URL.findall(text)}


@dataclass
class Claim:
    """What an answer sentence asserts that its source must contain."""

    numbers: set[str]
    names: list[tuple[str, ...]]
    hosts: set[str]

    @classmethod
    def of(cls, sentence: str, known: set[str], common: set[str] | None = None) -> Claim:
        text = strip_citations(sentence)
        hosts = _hosts(text)
        plain = _URL.sub(" ", text)
        return cls(numbers(plain) - _LOOSE_NUMBERS, name_runs(plain, known, common), hosts)

    def missing(self, support: str) -> list[str]:
        """The claim's names, numbers and link hosts that ``support`` does not have."""
        plain = _URL.sub(" ", support)
        runs = name_runs(plain, None) + [tuple(_key(w) for w in _WORD.findall(plain))]  # any word, as a last resort
        have_numbers = numbers(plain)
        out = sorted(self.numbers - have_numbers)
        words = set(runs[-1])
        out += [" ".join(r) for r in self.names if not (_run_supported(r, runs[:-1]) or (len(r) == 1 and r[0] in words))]
        out += sorted(h for h in self.hosts if h not in support.lower())
        return out

    def __bool__(self) -> bool:
        return bool(self.numbers or self.names or self.hosts)


def _sentences(hit: Hit) -> list[str]:
    return [s for span in split_sentences(hit.text) if (s := hit.text[span.start : span.end]).strip()]


def _support_for(sentence: str, claim: Claim, hits: Sequence[Hit]) -> list[str]:
    """What ``hits`` lack of ``claim``: the best sentence of each hit (the one missing least),
    plus sentences of the same passages that share enough of the claim's other words, plus the
    hits' articles' metadata."""
    words = content_words(strip_citations(sentence))
    name_words = {w for r in claim.names for w in r}
    meta = " . ".join(f for h in hits for f in metadata_fields(h.article))
    candidates = [s for h in hits for s in _sentences(h)]
    if not candidates:
        return claim.missing(meta) if meta else ["(no text)"]
    # The cited sentence is the one the claim's words come from (as the citation quotes it),
    # not the one that happens to hold its names.
    best = max(candidates, key=lambda c: (len(words & content_words(c)), -len(claim.missing(c))))
    support = [best, meta]
    missing = claim.missing(" . ".join(support))
    if missing:
        others = [c for c in candidates if c != best and len((words - name_words) & content_words(c)) >= SECOND_SENTENCE_MIN_SHARED]
        missing = claim.missing(" . ".join(support + others))
    return missing


def unsupported_claims(answer: str, evidence: Sequence[Hit], question: str = "") -> list[tuple[str, list[str]]]:
    """Answer sentences whose names, numbers or links their cited sources do not have, each
    with what is missing. ``evidence`` are the numbered sources with instruction-like sentences
    blanked out (so an injected sentence supports nothing). A cited sentence is checked against
    the sentences it cites; an uncited one against every source (then the citation guard adds the
    number). A citation standing alone after a sentence belongs to that sentence."""
    spans = [answer[s.start : s.end] for s in split_sentences(answer)]
    known = known_names([h.text for h in evidence] + [question])
    for h in evidence:
        known.update(_key(w) for f in metadata_fields(h.article) for w in _WORD.findall(f))
    common = {_key(w) for h in evidence for w in _WORD.findall(h.text)} | {_key(w) for w in _WORD.findall(question)}
    # "According to the report two days ago, ...": a time the question gave is restated, not claimed
    # (measured on the dev set: the "2" of "two days ago" refused an answer its source supports).
    asked_times = {m.group().lower() for m in _AGO.finditer(question)}
    out: list[tuple[str, list[str]]] = []
    for i, sentence in enumerate(spans):
        if not content_words(strip_citations(sentence)):
            continue
        cited = [int(n) for m in CITATION.finditer(sentence) for n in re.findall(r"\d+", m.group(1))]
        if not cited and i + 1 < len(spans) and not content_words(strip_citations(spans[i + 1])):
            cited = [int(n) for m in CITATION.finditer(spans[i + 1]) for n in re.findall(r"\d+", m.group(1))]
        hits = [evidence[n - 1] for n in cited if 1 <= n <= len(evidence)] or list(evidence)
        claimed = _AGO.sub(lambda m: " " if m.group().lower() in asked_times else m.group(), sentence)
        claim = Claim.of(claimed, known, common)
        if not claim:
            continue
        missing = _support_for(sentence, claim, hits)
        if missing:
            out.append((sentence.strip(), missing))
    return out
