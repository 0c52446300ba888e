"""Measuring the news views on a labelled fixture (eval/stories): story grouping against the
labelled stories (adjusted Rand index), the timelines' order, dates and event de-duplication
against labelled events, and the citation support of every briefing and timeline sentence.

    rag = open_eval_index("eval/stories/articles.jsonl")
    report = evaluate_stories(rag, "eval/stories")
    report.to_dict()["grouping_ari"]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rag.api import RAG
from rag.errors import RagError
from rag.index.periods import articles_between
from rag.stories.results import Briefing, Quote, Timeline, TimelineEvent
from rag.stories.sentences import unsupported


@dataclass
class TimelineScore:
    query: str
    found: float  # labelled events the timeline shows
    order: float  # pairs of shown labelled events in the right order
    dates: float  # shown labelled events with their labelled date
    deduplicated: float  # shown labelled events shown once (not split over several entries)
    merged_sources: float  # of the articles reporting a shown event, the share its entry cites
    entries: int


@dataclass
class StoriesReport:
    grouping_ari: float
    stories_found: int
    stories_labelled: int
    briefing_support: float  # briefing sentences supported by what they cite (1.0 for the extractive default)
    timeline_support: float
    timelines: list[TimelineScore] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_labels(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / "labels.json"
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RagError(f"cannot read the story labels {path}: {e}") from None
    if not isinstance(labels.get("stories"), dict) or not isinstance(labels.get("timelines"), list):
        raise RagError(f"{path} needs 'stories' (article key -> story) and 'timelines' (query, events)")
    return labels


def _key(url: str | None, article_id: str) -> str:
    """The fixture's article key: the last part of its URL (ingest gives articles their own ids)."""
    return url.rstrip("/").rsplit("/", 1)[-1] if url else article_id


def quote_holds(rag: RAG, quote: Quote) -> bool:
    """The quote is the article's text at its offsets."""
    text = rag.article_text(quote.article.id)
    return text is not None and text[quote.start : quote.end] == quote.text


def sentence_support(rag: RAG, sentences: Iterable[tuple[str, Sequence[Quote]]]) -> float:
    """Share of sentences whose quotes are exact and support them (the grounding check)."""
    checked = [all(quote_holds(rag, q) for q in quotes) and not unsupported(text, quotes) for text, quotes in sentences]
    return sum(checked) / len(checked) if checked else 1.0


def briefing_support(rag: RAG, briefing: Briefing) -> float:
    return sentence_support(rag, ((s.text, s.quotes) for story in briefing.stories for s in story.sentences))


def timeline_support(rag: RAG, timeline: Timeline) -> float:
    # Each cited sentence is the event's text in its own article: every quote must support it.
    return sentence_support(rag, ((q.text, [q]) for e in timeline.events for q in e.quotes))


def _matches(event: TimelineEvent, keywords: Sequence[str]) -> bool:
    return any(all(k.lower() in q.text.lower() for k in keywords) for q in event.quotes)


def score_timeline(timeline: Timeline, gold: dict[str, Any], reporting: dict[str, set[str]]) -> TimelineScore:
    """``gold``: {"query", "events": [{"id", "date", "keywords"}]}; ``reporting``: event id ->
    keys of the fixture articles with a sentence holding all its keywords."""
    shown: dict[str, list[int]] = {}
    for i, entry in enumerate(timeline.events):
        for g in gold["events"]:
            if _matches(entry, g["keywords"]):
                shown.setdefault(g["id"], []).append(i)
    golds = {g["id"]: g for g in gold["events"]}
    firsts = sorted((entries[0], date.fromisoformat(golds[gid]["date"])) for gid, entries in shown.items())
    pairs = [(a[1], b[1]) for i, a in enumerate(firsts) for b in firsts[i + 1 :] if a[1] != b[1]]
    on_date = [timeline.events[entries[0]].date == date.fromisoformat(golds[gid]["date"]) for gid, entries in shown.items()]
    cited = []
    for gid, entries in shown.items():
        keys = {_key(q.article.url, q.article.id) for q in timeline.events[entries[0]].quotes}
        if reporting.get(gid):
            cited.append(len(keys & reporting[gid]) / len(reporting[gid]))

    def share(values: Sequence[bool] | Sequence[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    return TimelineScore(
        gold["query"], len(shown) / len(gold["events"]), share([a < b for a, b in pairs]) if pairs else 1.0,
        share(on_date), share([len(e) == 1 for e in shown.values()]), share(cited), len(timeline.events),
    )


def evaluate_stories(rag: RAG, directory: str | Path = "eval/stories") -> StoriesReport:
    """Brief the fixture's week, build its labelled timelines, and score them against the labels."""
    from sklearn.metrics import adjusted_rand_score

    labels = load_labels(directory)
    week = labels.get("week", {})
    since, until = date.fromisoformat(week["since"]), date.fromisoformat(week["until"])
    briefing = rag.brief(since, until, max_stories=100)
    predicted = {_key(a.url, a.id): n for n, story in enumerate(briefing.stories) for a in story.articles}
    keys = [k for k in labels["stories"] if k in predicted]
    if len(keys) < len(labels["stories"]):
        missing = sorted(set(labels["stories"]) - set(keys))
        raise RagError(f"the briefing left out labelled articles: {', '.join(missing[:5])}")
    ari = float(adjusted_rand_score([labels["stories"][k] for k in keys], [predicted[k] for k in keys]))
    texts = {_key(a.url, a.id): rag.article_text(a.id) or "" for a in articles_between(rag.store, None, None)}
    scores, timelines = [], []
    for gold in labels["timelines"]:
        timeline = rag.timeline(gold["query"], since=gold.get("since"), until=gold.get("until"))
        timelines.append(timeline)
        reporting = {g["id"]: {k for k, t in texts.items() if all(w.lower() in t.lower() for w in g["keywords"])} for g in gold["events"]}
        scores.append(score_timeline(timeline, gold, reporting))
    timeline_seconds = sum(t.seconds for t in timelines)
    tl_support = [timeline_support(rag, t) for t in timelines]
    return StoriesReport(
        ari, len(briefing.stories), len(set(labels["stories"].values())), briefing_support(rag, briefing),
        min(tl_support) if tl_support else 1.0, scores, {"briefing": round(briefing.seconds, 3), "timelines": round(timeline_seconds, 3)},
    )
