"""A timeline: the dated events of a subject in order, each a cited article sentence. An
event's date is the one its sentence names ("on Tuesday", read against the article's date by
the answers' date resolver) or else the article's date, marked so; the same event told by
several outlets (wire copies, recaps) is one entry citing them all."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from rag.answer.dates import resolve_dates
from rag.models.embedding import Embedder
from rag.results import ArticleInfo, Hit
from rag.stories.results import DateFrom, Quote, Timeline, TimelineEvent
from rag.stories.sentences import Candidate, candidates, words
from rag.text import STOPWORDS, content_words, fold

CopyFinder = Callable[[Sequence[str]], dict[str, list[ArticleInfo]]]

# A date phrase in a clause about the future ("will return to work on Monday") is not the
# date of what the sentence reports.
_FUTURE = re.compile(r"\b(?:will|would|to be|due to|expected to|plans? to|scheduled to|set to)\b[^,;]{0,40}$", re.I)


@dataclass(frozen=True)
class TimelineSettings:
    max_events: int = 15
    min_similarity: float = 0.3  # a sentence this close to the subject (cosine) can be an event
    # A sentence naming no day is an event (of its article's date) only in the lede: later ones are background.
    lede_sentences: int = 2
    same_event_similarity: float = 0.8  # two sentences this close, a day apart at most, tell one event
    dated_bonus: float = 0.1  # a sentence naming its day is likelier an event than background
    per_article: int = 3  # events one article may add: a long piece cannot fill the timeline


@dataclass
class _Event:
    date: date
    date_from: DateFrom
    phrase: str | None
    vector: np.ndarray
    clause: frozenset[str]
    members: list[Candidate] = field(default_factory=list)


def event_date(sentence: str, published: date) -> tuple[date, DateFrom, str | None]:
    """The day ``sentence`` says its event happened, read against ``published``; else ``published``."""
    rest, offset = sentence, 0
    while rest.strip():
        found = resolve_dates(rest, published)
        if found is None:
            break
        at = rest.lower().find(found.phrase)
        if found.since == found.until and found.since <= published and not _FUTURE.search(sentence[: offset + max(at, 0)]):
            return found.since, "sentence", found.phrase
        if at < 0:
            break
        offset += at + len(found.phrase)
        rest = sentence[offset:]
    return published, "published", None


def clause_words(sentence: str, phrase: str | None, subject: set[str]) -> frozenset[str]:
    """Content words of the clause holding the date phrase ("which began on Monday"), the
    phrase's and the subject's words left out: what the sentence says happened that day."""
    if not phrase:
        return frozenset()
    clauses = re.split(r"[,;:()—–]|\band\b|\bbut\b", sentence)
    holding = next((c for c in clauses if phrase in c.lower()), sentence)
    return frozenset(content_words(holding) - content_words(phrase) - subject)


def about(query: str, hit: Hit) -> bool:
    """Is the passage about the subject? Its headline and text name every name of the query
    ("Boeing") and hold at least half its content words: retrieval ranks an air strike near a
    "machinists strike", and the sentence's closeness alone let such events in (measured on real news)."""
    text = f"{hit.article.title} {hit.text}"
    names = {fold(w) for w in re.findall(r"\b[A-Z][\w'’-]+", query)} - STOPWORDS
    if names and not names <= {fold(w) for w in re.findall(r"[\w'’-]+", text)}:
        return False
    subject = words(query)
    return not subject or 2 * len(subject & words(text)) >= len(subject)


def _pool(query: str, hits: Sequence[Hit], article_text: Callable[[str], str | None]) -> list[tuple[Candidate, int]]:
    """The distinct sentences of the passages about ``query`` in dated articles, each with its
    place in the article (counted from 0 when the passage opens the article, else from 1,000)."""
    seen: set[tuple[str, int]] = set()
    out: list[tuple[Candidate, int]] = []
    texts: dict[str, str | None] = {}
    for hit in hits:
        if hit.article.published is None or not about(query, hit):
            continue  # an undated article cannot place its events
        if hit.article.id not in texts:
            texts[hit.article.id] = article_text(hit.article.id)
        text = texts[hit.article.id]
        if not text:
            continue
        for cand in candidates(hit.article, text, hit.start, hit.end):
            if (cand.article.id, cand.start) not in seen:
                seen.add((cand.article.id, cand.start))
                out.append((cand, cand.position if hit.start == 0 else 1_000 + cand.position))
    return out


def build_timeline(
    query: str, hits: Sequence[Hit], article_text: Callable[[str], str | None], embedder: Embedder,
    since: date | None = None, until: date | None = None, settings: TimelineSettings | None = None,
    copies: CopyFinder | None = None,
) -> Timeline:
    """The events about ``query`` in the retrieved ``hits``, oldest first; ``copies`` finds the
    near copies of articles (rag.index.periods.copy_families), cited beside them."""
    started = time.perf_counter()
    settings = settings or TimelineSettings()
    placed = _pool(query, hits, article_text)
    pool = [c for c, _ in placed]
    if not pool:
        return Timeline(query, since, until, [], time.perf_counter() - started)
    vectors = embedder.embed([query, *(c.text for c in pool)])
    dated = [event_date(c.text, c.article.published) for c in pool]  # type: ignore[arg-type]
    relevance = vectors[1:] @ vectors[0]
    ranking = relevance + settings.dated_bonus * np.array([d[1] == "sentence" for d in dated])
    subject = content_words(query)
    events: list[_Event] = []
    added: dict[str, int] = {}
    for i in np.argsort(-ranking):
        cand, vec, (day, date_from, phrase) = pool[i], vectors[1 + i], dated[i]
        if relevance[i] < settings.min_similarity or (date_from == "published" and placed[i][1] >= settings.lede_sentences):
            continue
        clause = clause_words(cand.text, phrase, subject)
        same = next((e for e in events if _same_event(e, day, date_from, vec, clause, settings)), None)
        if same is not None:
            if all(m.article.id != cand.article.id for m in same.members):
                same.members.append(cand)
            continue
        if len(events) < settings.max_events and added.get(cand.article.id, 0) < settings.per_article:
            events.append(_Event(day, date_from, phrase, vec, clause, [cand]))
            added[cand.article.id] = added.get(cand.article.id, 0) + 1
    _add_copies(events, copies, article_text)
    events.sort(key=lambda e: (e.date, min(m.article.published or e.date for m in e.members), e.members[0].start))
    out, n = [], 0
    for e in events:
        quotes: list[Quote] = []
        for m in sorted(e.members, key=lambda m: (m.article.published or e.date, m.article.id)):
            n += 1
            quotes.append(m.quote(n))
        out.append(TimelineEvent(e.date, e.date_from, e.members[0].text, quotes, e.phrase))
    return Timeline(query, since, until, out, time.perf_counter() - started)


def _same_event(
    e: _Event, day: date, date_from: DateFrom, vec: np.ndarray, clause: frozenset[str], settings: TimelineSettings
) -> bool:
    """One event: both sentences name the same day and say the same thing of it ("began on
    Monday" / "the strike, which began on Monday"), or they are near-identical a day apart at most."""
    if day == e.date and date_from == e.date_from == "sentence" and clause & e.clause:
        return True
    return abs((day - e.date).days) <= 1 and float(e.vector @ vec) >= settings.same_event_similarity


def _add_copies(events: list[_Event], copies: CopyFinder | None, article_text: Callable[[str], str | None]) -> None:
    """Cite each event's sentence in the near copies of its articles too (retrieval keeps one of a family)."""
    if copies is None:
        return
    families = copies(sorted({m.article.id for e in events for m in e.members}))
    for e in events:
        quoted = {m.article.id for m in e.members}
        for m in list(e.members):
            for copy in families.get(m.article.id, []):
                text = article_text(copy.id) if copy.id not in quoted else None
                if text and (at := text.find(m.text)) >= 0:
                    e.members.append(Candidate(copy, m.text, at, at + len(m.text), m.position))
                    quoted.add(copy.id)
