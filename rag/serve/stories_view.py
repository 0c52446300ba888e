"""The news views in the browser app: the Briefing and Timeline tabs, and related coverage in the
chat's Sources panel (for the latest answer's cited articles) and in the Library (an article's preview)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.api import RAG
from rag.errors import RagError
from rag.results import Answer
from rag.serve.request_checks import check_text
from rag.serve.stories_html import briefing_html, related_html, timeline_html

_PICK = '<p class="views-empty">Choose an article to see its earlier and later coverage.</p>'


def _newest_day(rag: RAG) -> str:
    dated = [a.published for a in rag.articles() if a.published]
    return max(dated).isoformat() if dated else ""


def _shown(fn: Callable[..., str]) -> Callable[..., str]:
    """A handler whose RagError (bad dates, an empty subject) is shown to the user as it is."""
    def run(*args: Any) -> str:
        try:
            return fn(*args)
        except RagError as e:
            raise gr.Error(str(e)) from None
    return run


@dataclass
class StoryViews:
    since: gr.Textbox
    until: gr.Textbox
    topic: gr.Textbox
    max_stories: gr.Slider
    brief: gr.Button
    briefing: gr.HTML
    subject: gr.Textbox
    tl_since: gr.Textbox
    tl_until: gr.Textbox
    show_timeline: gr.Button
    timeline: gr.HTML


def build_briefing_tab(rag: RAG) -> tuple[Any, ...]:
    """Inside ``with gr.Tab("Briefing")``: the period, a topic, and the stories."""
    with gr.Row():
        since = gr.Textbox(value="7d", label="From", info="YYYY-MM-DD, or a span back from “Until”: 7d, 2w", elem_id="brief-since")
        until = gr.Textbox(value=_newest_day(rag), label="Until", info="YYYY-MM-DD (default: the newest article's day)",
                           elem_id="brief-until")
        topic = gr.Textbox(label="Topic (optional)", placeholder="e.g. hurricane", elem_id="brief-topic")
        max_stories = gr.Slider(1, 30, value=rag.settings.briefing_max_stories, step=1, label="Stories", elem_id="brief-max")
    brief = gr.Button("Brief me", variant="primary", elem_id="brief")
    briefing = gr.HTML('<p class="views-empty">What happened in a period: its articles grouped into stories, '
                       "each told in sentences quoted from them.</p>", elem_id="briefing")
    return since, until, topic, max_stories, brief, briefing


def build_timeline_tab(rag: RAG) -> tuple[Any, ...]:
    """Inside ``with gr.Tab("Timeline")``: a subject and its dated events."""
    with gr.Row():
        subject = gr.Textbox(label="Subject", placeholder="e.g. Boeing strike", scale=3, elem_id="timeline-subject")
        since = gr.Textbox(label="Published from", placeholder="YYYY-MM-DD", elem_id="timeline-since")
        until = gr.Textbox(label="Published until", placeholder="YYYY-MM-DD", elem_id="timeline-until")
    show = gr.Button("Show timeline", variant="primary", elem_id="show-timeline")
    timeline = gr.HTML('<p class="views-empty">How a story unfolded: dated events about a subject, each a quoted, '
                       "cited sentence.</p>", elem_id="timeline")
    return subject, since, until, show, timeline


def views(briefing_parts: tuple[Any, ...], timeline_parts: tuple[Any, ...]) -> StoryViews:
    return StoryViews(*briefing_parts, *timeline_parts)


def wire_stories(rag: RAG, v: StoryViews) -> None:
    def brief(since: str, until: str, topic: str, max_stories: float) -> str:
        check_text(topic or "", "the topic", 500)
        return briefing_html(rag.brief(since.strip() or None, until.strip() or None, topic or None, int(max_stories)))

    def timeline(subject: str, since: str, until: str) -> str:
        check_text(subject or "", "the subject", 4000)
        return timeline_html(rag.timeline(subject or "", since.strip() or None, until.strip() or None))

    ins = [v.since, v.until, v.topic, v.max_stories]
    v.brief.click(_shown(brief), ins, v.briefing, api_name="briefing", concurrency_limit=2, concurrency_id="stories")
    v.topic.submit(_shown(brief), ins, v.briefing, api_visibility="private", concurrency_limit=2, concurrency_id="stories")
    tl = [v.subject, v.tl_since, v.tl_until]
    v.show_timeline.click(_shown(timeline), tl, v.timeline, api_name="timeline", concurrency_limit=2, concurrency_id="stories")
    v.subject.submit(_shown(timeline), tl, v.timeline, api_visibility="private", concurrency_limit=2, concurrency_id="stories")


def _related(rag: RAG, article_id: str | None) -> str:
    if not article_id:
        return _PICK
    try:
        return related_html(rag.related(article_id))
    except RagError as e:
        raise gr.Error(str(e)) from None


def add_related_to_sources(rag: RAG, sources: gr.HTML, turns: gr.State) -> None:
    """Below the chat's Sources panel (in its column): related coverage of the latest answer's cited articles."""
    with sources.parent:  # type: ignore[union-attr]  # the Sources column, entered again to add to it
        with gr.Accordion("Related coverage", open=False, elem_id="sources-related-box"):
            pick = gr.Dropdown([], label="Coverage before and after a cited article", elem_id="sources-related-pick")
            shown = gr.HTML(_PICK, elem_id="sources-related")

    def cited(answers: list[Answer] | None) -> Any:
        if not answers:
            return gr.update(choices=[], value=None)
        hits = answers[-1].cited_sources or answers[-1].sources
        articles = list({h.article.id: h.article for h in hits}.values())
        return gr.update(choices=[(a.label(), a.id) for a in articles], value=articles[0].id if articles else None)

    turns.change(cited, turns, pick, api_visibility="private")
    pick.change(lambda aid: _related(rag, aid), pick, shown, api_visibility="private")


def add_related_to_library(rag: RAG, preview: gr.Column, article: gr.State) -> None:
    """In the Library's article preview: the previewed article's story and its related coverage."""
    with preview:  # the preview's column, entered again to add to it
        shown = gr.HTML(_PICK, elem_id="library-related")

    article.change(lambda aid: _related(rag, aid) if aid else _PICK, article, shown, api_visibility="private")
