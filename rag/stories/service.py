"""The news views as ``RAG`` offers them (rag.api delegates here): arguments checked and read,
the views' settings taken from :class:`rag.settings.Settings`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rag.errors import RagError
from rag.index.periods import copy_families
from rag.index.store import Store
from rag.models.embedding import Embedder
from rag.models.llama import Generator
from rag.results import Hit
from rag.settings import Settings
from rag.stories.briefing import BriefingSettings, build_briefing
from rag.stories.grouping import GroupingSettings
from rag.stories.related import RelatedSettings, build_related
from rag.stories.results import Briefing, Related, Timeline
from rag.stories.spans import period
from rag.stories.timeline import TimelineSettings, build_timeline


def grouping_settings(s: Settings) -> GroupingSettings:
    return GroupingSettings(s.story_link_similarity, s.story_name_weight, s.story_gap_days, s.story_gap_penalty)


def brief(
    store: Store, embedder: Embedder, settings: Settings, since: date | str | None, until: date | str | None,
    topic: str | None, max_stories: int | None, generator: Generator | None, today: date | None,
) -> Briefing:
    start, end = period(since, until, today)
    if max_stories is not None and not 1 <= max_stories <= 100:
        raise RagError(f"max_stories={max_stories} is out of range; choose 1 to 100")
    config = BriefingSettings(grouping_settings(settings), settings.story_recency_half_life_days, settings.story_topic_min_similarity)
    return build_briefing(
        store, embedder, start, end, topic=topic, max_stories=max_stories or settings.briefing_max_stories,
        generator=generator, prompts_dir=Path(settings.prompts_dir), settings=config,
    )


def timeline_settings(s: Settings) -> TimelineSettings:
    return TimelineSettings(max_events=s.timeline_max_events, min_similarity=s.timeline_min_similarity)


def timeline(store: Store, embedder: Embedder, settings: Settings, query: str, hits: list[Hit], since: date | None, until: date | None) -> Timeline:
    if not query.strip():
        raise RagError("the timeline's subject is empty")
    return build_timeline(
        query.strip(), hits, store.article_text, embedder, since, until, timeline_settings(settings),
        copies=lambda ids: copy_families(store, ids),
    )


def related(store: Store, settings: Settings, article_id: str) -> Related:
    found = store.find_articles(article_id.strip()) if article_id.strip() else []
    if len(found) != 1:
        what = "matches no indexed article" if not found else f"matches {len(found)} articles; give more of the id"
        raise RagError(f"'{article_id}' {what} (see `rag info --articles` for ids)")
    config = RelatedSettings(grouping_settings(settings), min_similarity=settings.related_min_similarity,
                             max_stories=settings.related_max_stories)
    return build_related(store, found[0], config)
