"""The typed results of the news views: briefings, timelines and related coverage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from rag.results import ArticleInfo


def _day(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _article(a: ArticleInfo) -> dict[str, object]:
    return {"article_id": a.id, "title": a.title, "source": a.source, "url": a.url, "published": _day(a.published)}


@dataclass(frozen=True)
class Quote:
    """A cited article sentence: ``[n]`` points at ``article`` text from ``start`` to ``end``."""

    n: int
    article: ArticleInfo
    text: str
    start: int
    end: int

    def to_dict(self) -> dict[str, object]:
        return {"n": self.n, **_article(self.article), "quote": self.text, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class StorySentence:
    """One sentence of a story's summary and the quotes that support it."""

    text: str
    quotes: tuple[Quote, ...]

    def cited(self) -> str:
        """The sentence with its citations: 'Lavrov said ... [1][2]'."""
        return self.text + "".join(f" [{q.n}]" if i == 0 else f"[{q.n}]" for i, q in enumerate(self.quotes))


@dataclass
class Story:
    """Articles about one event or subject, possibly from several outlets over several days."""

    headline: str
    sentences: list[StorySentence]
    articles: list[ArticleInfo]  # every article of the story, copies included, oldest first
    score: float
    written_by: str = "extractive"  # or the model's name, when its summary passed the grounding checks
    notes: list[str] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        """The distinct outlets, in order of first appearance."""
        return list(dict.fromkeys(a.source for a in self.articles if a.source))

    @property
    def dates(self) -> list[date]:
        return sorted({a.published for a in self.articles if a.published})

    @property
    def quotes(self) -> list[Quote]:
        seen: dict[int, Quote] = {}
        for s in self.sentences:
            for q in s.quotes:
                seen.setdefault(q.n, q)
        return [seen[n] for n in sorted(seen)]

    def summary(self) -> str:
        return " ".join(s.cited() for s in self.sentences)

    def to_dict(self) -> dict[str, object]:
        return {
            "headline": self.headline,
            "summary": self.summary(),
            "sentences": [{"text": s.text, "citations": [q.n for q in s.quotes]} for s in self.sentences],
            "citations": [q.to_dict() for q in self.quotes],
            "sources": self.sources,
            "dates": [d.isoformat() for d in self.dates],
            "articles": [_article(a) for a in self.articles],
            "score": round(self.score, 4),
            "written_by": self.written_by,
            "notes": self.notes,
        }


@dataclass
class Briefing:
    """The stories of a period, best covered and most recent first."""

    since: date | None
    until: date | None
    topic: str | None
    stories: list[Story]
    articles: int  # how many articles the period (and topic) held
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "since": _day(self.since), "until": _day(self.until), "topic": self.topic, "articles": self.articles,
            "stories": [s.to_dict() for s in self.stories], "seconds": round(self.seconds, 3),
        }


DateFrom = Literal["sentence", "published"]


@dataclass
class TimelineEvent:
    """A dated event: the sentence that reports it, and every article reporting the same event.
    ``date_from`` says where the date came from: a date the sentence names ("on Tuesday", read
    against its article's date), or — when it names none — the article's publication date."""

    date: date
    date_from: DateFrom
    text: str
    quotes: list[Quote]
    phrase: str | None = None  # the words that gave the date, when the sentence gave it

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(q.article.source for q in self.quotes if q.article.source))

    def to_dict(self) -> dict[str, object]:
        return {
            "date": self.date.isoformat(), "date_from": self.date_from, "date_phrase": self.phrase, "text": self.text,
            "sources": self.sources, "citations": [q.to_dict() for q in self.quotes],
        }


@dataclass
class Timeline:
    query: str
    since: date | None
    until: date | None
    events: list[TimelineEvent]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "query": self.query, "since": _day(self.since), "until": _day(self.until),
            "events": [e.to_dict() for e in self.events], "seconds": round(self.seconds, 3),
        }


@dataclass
class RelatedStory:
    """A story about the same subject as an article: its headline (its best-covered article's
    title), its articles and its dates."""

    headline: str
    articles: list[ArticleInfo]
    similarity: float

    @property
    def dates(self) -> list[date]:
        return sorted({a.published for a in self.articles if a.published})

    def to_dict(self) -> dict[str, object]:
        return {
            "headline": self.headline, "similarity": round(self.similarity, 4),
            "dates": [d.isoformat() for d in self.dates], "articles": [_article(a) for a in self.articles],
        }


@dataclass
class Related:
    """For one article: the other coverage of its own story, and the stories before and after it."""

    article: ArticleInfo
    same_story: list[ArticleInfo]
    earlier: list[RelatedStory]  # newest first: the closest in time leads
    later: list[RelatedStory]  # oldest first

    def to_dict(self) -> dict[str, object]:
        return {
            "article": _article(self.article), "same_story": [_article(a) for a in self.same_story],
            "earlier": [s.to_dict() for s in self.earlier], "later": [s.to_dict() for s in self.later],
        }
