"""HTML of the news views in the browser app: briefing stories with their cited sentences,
timeline entries, and related coverage. Every text from an article is escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date

from rag.results import ArticleInfo
from rag.stories.results import Briefing, Quote, Related, RelatedStory, Timeline
from rag.text import counted

STORIES_CSS = """
.story { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 14px; margin: 10px 0; }
.story h3 { margin: 0 0 4px; font-size: 1.1em; }
.story .story-meta, .event .event-meta, .rel-meta { color: #585862; font-size: 0.88em; }
.story p { margin: 6px 0; line-height: 1.5; }
.story sup a, .event sup a { color: #1e3a8a; font-weight: 600; text-decoration: underline; }
.quotes { margin: 4px 0 0; padding-left: 1.2em; font-size: 0.9em; }
.quotes li { margin: 3px 0; }
.quotes li:target { outline: 3px solid var(--color-accent); }
.story-note { color: #92400e; font-size: 0.85em; }
.timeline { list-style: none; margin: 0; padding: 0 0 0 14px; border-left: 3px solid #9db4f0; }
.event { margin: 0 0 14px; padding-left: 10px; position: relative; }
.event::before { content: ""; position: absolute; left: -21px; top: 6px; width: 11px; height: 11px; border-radius: 50%;
  background: #1e3a8a; }
.event time { font-weight: 700; font-variant-numeric: tabular-nums; }
.event .date-from { font-size: 0.8em; border-radius: 999px; padding: 0 8px; margin-left: 6px; }
.event .date-from.sentence { background: #e8efff; color: #1e3a8a; }
.event .date-from.published { background: #f4f4f5; color: #3f3f46; }
.related h3 { font-size: 1em; margin: 10px 0 4px; }
.related ul { margin: 0; padding-left: 1.2em; }
.views-empty { color: #585862; }
"""


def _day(d: date | None) -> str:
    return d.isoformat() if d else "undated"


def _span(days: Sequence[date]) -> str:
    if not days:
        return "undated"
    return _day(days[0]) if days[0] == days[-1] else f"{_day(days[0])} to {_day(days[-1])}"


def _article_link(a: ArticleInfo) -> str:
    title = html.escape(a.title)
    if a.url and a.url.startswith(("http://", "https://")):
        return f'<a href="{html.escape(a.url, quote=True)}" target="_blank" rel="noopener noreferrer">{title}</a>'
    return title


def _meta(a: ArticleInfo) -> str:
    return " · ".join(html.escape(p) for p in (a.source, _day(a.published)) if p)


def _quotes(prefix: str, quotes: Sequence[Quote]) -> str:
    items = "".join(
        f'<li id="{prefix}-{q.n}">[{q.n}] “{html.escape(q.text)}” — {_article_link(q.article)} '
        f'<span class="story-meta">{_meta(q.article)}</span></li>'
        for q in quotes
    )
    return f'<ol class="quotes" aria-label="Cited sentences">{items}</ol>'


def _cites(prefix: str, quotes: Sequence[Quote]) -> str:
    return "".join(f'<sup><a href="#{prefix}-{q.n}" aria-label="source {q.n}">[{q.n}]</a></sup>' for q in quotes)


def briefing_html(briefing: Briefing) -> str:
    about = f" about “{html.escape(briefing.topic)}”" if briefing.topic else ""
    head = (f'<p class="story-meta" id="briefing-summary">{counted(len(briefing.stories), "story", "stories")} from {counted(briefing.articles, "article")} '
            f"published {briefing.since} to {briefing.until}{about}.</p>")
    if not briefing.stories:
        return head + '<p class="views-empty">No articles were published in this period. Try a wider period.</p>'
    out = [head]
    for i, story in enumerate(briefing.stories, start=1):
        prefix = f"brief-{i}"
        sentences = " ".join(f"{html.escape(s.text)}{_cites(prefix, s.quotes)}" for s in story.sentences)
        n = len(story.articles)
        meta = f"{html.escape(', '.join(story.sources) or 'unknown source')} · {_span(story.dates)} · {n} article{'s' * (n != 1)}"
        notes = "".join(f'<p class="story-note">{html.escape(note)}</p>' for note in story.notes)
        out.append(
            f'<article class="story" aria-labelledby="{prefix}-h"><h3 id="{prefix}-h">{i}. {html.escape(story.headline)}</h3>'
            f'<div class="story-meta">{meta}</div><p>{sentences}</p>{notes}'
            f"<details><summary>Sources ({len(story.quotes)})</summary>{_quotes(prefix, story.quotes)}</details></article>"
        )
    return "".join(out)


def timeline_html(timeline: Timeline) -> str:
    if not timeline.events:
        return ('<p class="views-empty">Nothing dated about this subject was found. Try other words, or a wider '
                "period.</p>")
    items = []
    for i, e in enumerate(timeline.events, start=1):
        prefix = f"tl-{i}"
        if e.date_from == "sentence":
            badge = f'<span class="date-from sentence" title="the sentence says when">“{html.escape(e.phrase or "")}”</span>'
        else:
            badge = '<span class="date-from published" title="the sentence names no day">article date</span>'
        items.append(
            f'<li class="event"><time datetime="{e.date}">{e.date}</time>{badge}'
            f"<div>{html.escape(e.text)}{_cites(prefix, e.quotes)}</div>"
            f'<div class="event-meta">{html.escape(", ".join(e.sources))}</div>'
            f"<details><summary>Sources ({len(e.quotes)})</summary>{_quotes(prefix, e.quotes)}</details></li>"
        )
    return (f'<p class="story-meta" id="timeline-summary">{len(timeline.events)} events about “{html.escape(timeline.query)}”, '
            f'oldest first.</p><ol class="timeline">{"".join(items)}</ol>')


def _story_item(s: RelatedStory) -> str:
    n = len(s.articles)
    titles = "; ".join(_article_link(a) for a in s.articles[:3]) + ("…" if n > 3 else "")
    return (f'<li><strong>{html.escape(s.headline)}</strong> <span class="rel-meta">{_span(s.dates)} · {n} '
            f"article{'s' * (n != 1)}</span><br>{titles}</li>")


def related_html(related: Related) -> str:
    parts = [f'<div class="related"><p class="rel-meta">Related coverage of <strong>{html.escape(related.article.title)}</strong> '
             f"({_meta(related.article)})</p>"]
    same = "".join(f"<li>{_article_link(a)} <span class='rel-meta'>{_meta(a)}</span></li>" for a in related.same_story)
    parts.append(f"<h3>The same story ({len(related.same_story)})</h3>" + (f"<ul>{same}</ul>" if same else "<p class='views-empty'>No other coverage.</p>"))
    for title, stories in (("Earlier stories", related.earlier), ("Later stories", related.later)):
        body = "".join(_story_item(s) for s in stories)
        parts.append(f"<h3>{title}</h3>" + (f"<ul>{body}</ul>" if body else "<p class='views-empty'>None found.</p>"))
    return "".join(parts) + "</div>"
