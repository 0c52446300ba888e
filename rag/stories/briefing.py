"""A briefing: the period's articles (about a topic, if one is given) grouped into stories,
ranked by coverage and recency, each told in two or three cited sentences."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from rag.index.periods import article_texts, article_vectors, articles_between
from rag.index.store import Store
from rag.models.embedding import Embedder
from rag.models.llama import Generator
from rag.results import ArticleInfo
from rag.stories import summaries
from rag.stories.grouping import GroupingSettings, copy_groups, group_articles
from rag.stories.names import article_names
from rag.stories.results import Briefing, Story
from rag.stories.sentences import LEDE_CHARS, candidates


@dataclass(frozen=True)
class BriefingSettings:
    grouping: GroupingSettings = field(default_factory=GroupingSettings)
    recency_half_life_days: float = 3.0
    topic_min_similarity: float = 0.35  # a passage must be this close to the topic for its article to count
    representatives: int = 5  # articles of a story whose ledes are read for its sentences


@dataclass
class StoryGroup:
    """One story's articles with what the summary needs: their vectors and texts."""

    articles: list[ArticleInfo]
    vectors: np.ndarray
    texts: list[str]

    @property
    def centroid(self) -> np.ndarray:
        mean = self.vectors.sum(axis=0)
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm else mean

    def score(self, reference: date, half_life: float) -> float:
        """Coverage (distinct outlets, then articles) times recency (halved every ``half_life`` days)."""
        outlets = len({a.source or a.id for a in self.articles})
        latest = max((a.published for a in self.articles if a.published), default=None)
        age = max((reference - latest).days, 0) if latest else 10 * half_life
        return (outlets + 0.25 * len(self.articles)) * (0.5 + 0.5 * math.pow(0.5, age / half_life))


def _topic_filter(store: Store, embedder: Embedder, topic: str, since: date, until: date, minimum: float) -> set[str]:
    """Ids of the period's articles with a passage at least ``minimum`` close to ``topic``."""
    allowed = store.chunk_ids_in_range(since, until)
    if not len(allowed):
        return set()
    scored = store.dense_search(embedder.embed([topic])[0:1], len(allowed), allowed)
    return {h.article.id for h in store.hits([(cid, s) for cid, s in scored if s >= minimum])}


def story_groups(
    store: Store, embedder: Embedder, since: date, until: date, topic: str | None, settings: BriefingSettings
) -> tuple[list[StoryGroup], int]:
    """The period's stories (unranked), and how many articles they hold."""
    articles = articles_between(store, since, until)
    if topic and topic.strip():
        keep = _topic_filter(store, embedder, topic, since, until, settings.topic_min_similarity)
        articles = [a for a in articles if a.id in keep]
    ids = [a.id for a in articles]
    vectors = article_vectors(store, ids)
    texts = article_texts(store, ids)
    names = [article_names(a.title, texts.get(a.id, "")) for a in articles]
    groups = group_articles(articles, vectors, names, settings.grouping)
    return [StoryGroup([articles[i] for i in g], vectors[g], [texts.get(articles[i].id, "") for i in g]) for g in groups], len(articles)


def tell(
    group: StoryGroup, settings: BriefingSettings, score: float,
    generator: Generator | None = None, prompts_dir: Path | None = None,
) -> Story:
    """The story's headline and sentences: extractive, or the model's when every sentence passes."""
    centroid = group.centroid
    units = copy_groups(group.articles)
    # One article per copy group speaks for it (its copies are cited beside it); the ones closest to the story first.
    roots = sorted((u[0] for u in units), key=lambda i: -float(group.vectors[i] @ centroid))[: settings.representatives]
    copies = {group.articles[u[0]].id: [(group.articles[i], group.texts[i]) for i in u[1:]] for u in units}
    pool = [c for i in roots for c in candidates(group.articles[i], group.texts[i])]
    ranked = summaries.rank_candidates(pool, [group.texts[u[0]][:LEDE_CHARS] for u in units])
    headline = group.articles[roots[0]].title
    story = Story(headline, summaries.extractive(summaries.choose(ranked), copies), sorted_by_date(group.articles), score)
    if generator is not None and ranked:
        written, why = summaries.model_written(
            headline, [c for _, c in ranked[: summaries.MODEL_SOURCES]], generator, prompts_dir or summaries.DEFAULT_PROMPTS_DIR
        )
        if written:
            story.sentences, story.written_by = written, generator.name
        else:
            story.notes.append(f"{why}; the extractive summary is shown")
    return story


def build_briefing(
    store: Store, embedder: Embedder, since: date, until: date, *, topic: str | None = None, max_stories: int = 10,
    generator: Generator | None = None, prompts_dir: Path | None = None, settings: BriefingSettings | None = None,
) -> Briefing:
    """The ``max_stories`` best-covered, most recent stories published from ``since`` to ``until``."""
    started = time.perf_counter()
    settings = settings or BriefingSettings()
    groups, count = story_groups(store, embedder, since, until, topic, settings)
    scored = sorted(((g.score(until, settings.recency_half_life_days), g) for g in groups), key=lambda sg: -sg[0])
    stories = [tell(g, settings, s, generator, prompts_dir) for s, g in scored[:max_stories]]
    return Briefing(since, until, topic.strip() if topic and topic.strip() else None, stories, count, time.perf_counter() - started)


def sorted_by_date(articles: Sequence[ArticleInfo]) -> list[ArticleInfo]:
    return sorted(articles, key=lambda a: (a.published or date.min, a.id))
