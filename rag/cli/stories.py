"""``rag brief``, ``rag timeline`` and ``rag related``: the news views (rag.stories) in the terminal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from rag.cli.common import echo, open_rag
from rag.stories.results import Briefing, Quote, Related, RelatedStory, Timeline
from rag.text import counted


def _span(days: list) -> str:  # type: ignore[type-arg]
    if not days:
        return "undated"
    return days[0].isoformat() if days[0] == days[-1] else f"{days[0]} to {days[-1]}"


def _quote_line(q: Quote) -> str:
    return f"   [{q.n}] {q.article.label()}  ({q.article.id})"


def print_briefing(briefing: Briefing) -> None:
    about = f" about '{briefing.topic}'" if briefing.topic else ""
    echo(f"Briefing {briefing.since} to {briefing.until}{about}: {counted(len(briefing.stories), 'story', 'stories')} from {counted(briefing.articles, 'article')}")
    if not briefing.stories:
        echo("no articles were published in this period" + (" about this topic" if briefing.topic else ""))
    for i, story in enumerate(briefing.stories, start=1):
        echo(f"\n{i}. {story.headline}")
        echo(f"   {story.summary()}")
        outlets = ", ".join(story.sources) or "unknown source"
        echo(f"   {outlets} · {_span(story.dates)} · {len(story.articles)} article{'s' * (len(story.articles) != 1)}")
        for note in story.notes:
            echo(f"   note: {note}")
        for q in story.quotes:
            echo(_quote_line(q))


def print_timeline(timeline: Timeline) -> None:
    echo(f"Timeline of '{timeline.query}': {len(timeline.events)} events")
    if not timeline.events:
        echo("nothing dated about this subject was found; try other words or a wider --since/--until")
    for e in timeline.events:
        when = f"({e.phrase})" if e.date_from == "sentence" else "(article date)"
        cites = "".join(f"[{q.n}]" for q in e.quotes)
        echo(f"\n{e.date}  {when}\n   {e.text} {cites}\n   {', '.join(e.sources)}")
    quotes = [q for e in timeline.events for q in e.quotes]
    if quotes:
        echo("\nSources:")
        for q in quotes:
            echo(_quote_line(q))


def _story_line(s: RelatedStory) -> str:
    return f"   {_span(s.dates)}  {s.headline}  ({len(s.articles)} article{'s' * (len(s.articles) != 1)})"


def print_related(related: Related) -> None:
    echo(f"Related coverage of: {related.article.label()}")
    echo(f"\nThe same story ({len(related.same_story)} other articles):")
    for a in related.same_story:
        echo(f"   {a.label()}  ({a.id})")
    for title, stories in (("Earlier stories", related.earlier), ("Later stories", related.later)):
        echo(f"\n{title}:" + ("" if stories else " none found"))
        for s in stories:
            echo(_story_line(s))


def _show(result: Briefing | Timeline | Related, as_json: bool, printer: Callable[[Any], None]) -> None:
    if as_json:
        echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        printer(result)


@click.command("brief")
@click.option("--since", default="7d", show_default=True, help="First day (YYYY-MM-DD), or a span back from --until: 7d, 2w.")
@click.option("--until", default=None, help="Last day (YYYY-MM-DD; default: today).")
@click.option("--topic", default=None, help="Only articles about this (e.g. \"port strike\").")
@click.option("--max-stories", type=click.IntRange(1, 100), default=None, help="Stories to show (default: RAG_BRIEFING_MAX_STORIES, 10).")
@click.option("--write", "write", is_flag=True, help="Have the model (--llm) write each summary; a sentence it cannot "
              "ground falls back to the article sentences.")
@click.option("--json", "as_json", is_flag=True, help="Print the briefing as JSON.")
@click.pass_context
def brief_cmd(ctx: click.Context, since: str, until: str | None, topic: str | None, max_stories: int | None,
              write: bool, as_json: bool) -> None:
    """What happened: the period's articles grouped into stories, each in cited sentences."""
    rag = open_rag(ctx)
    briefing = rag.brief(since, until, topic, max_stories, llm=write)
    _show(briefing, as_json, print_briefing)


@click.command("timeline")
@click.argument("subject")
@click.option("--since", default=None, help="First publication day (YYYY-MM-DD).")
@click.option("--until", default=None, help="Last publication day (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
@click.pass_context
def timeline_cmd(ctx: click.Context, subject: str, since: str | None, until: str | None, as_json: bool) -> None:
    """How a story unfolded: dated, cited events about SUBJECT, oldest first."""
    timeline = open_rag(ctx).timeline(subject, since, until)
    _show(timeline, as_json, print_timeline)


@click.command("related")
@click.argument("article_id")
@click.option("--json", "as_json", is_flag=True, help="Print the related coverage as JSON.")
@click.pass_context
def related_cmd(ctx: click.Context, article_id: str, as_json: bool) -> None:
    """The other coverage of an article's story, and the stories before and after it (ID or a prefix of it)."""
    related = open_rag(ctx).related(article_id)
    _show(related, as_json, print_related)


COMMANDS = [brief_cmd, timeline_cmd, related_cmd]
