"""``rag feeds add|list|rm``, ``rag sync`` and ``rag watch``: feeds and a folder that keep the index fresh."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from rag import feeds as feed_api
from rag.cli.common import Bar, echo, open_rag
from rag.feeds.sync import SyncReport
from rag.feeds.watch import WatchBatch, watch


@click.group("feeds")
def feeds_group() -> None:
    """The RSS/Atom feeds `rag sync` fetches (stored in the index)."""


@feeds_group.command("add")
@click.argument("refs", nargs=-1, required=True)
@click.pass_context
def add_cmd(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Subscribe to feeds: http(s) URLs or paths of local RSS/Atom files."""
    rag = open_rag(ctx, seed=False)
    for ref in refs:
        feed, new = feed_api.add(rag, ref)
        echo(f"{'added' if new else 'already subscribed:'} feed {feed.id}: {feed.url}")
    echo("run `rag sync` to fetch them")


@feeds_group.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """The feeds, with their last sync."""
    rag = open_rag(ctx, seed=False)
    found = feed_api.feeds(rag)
    if not found:
        echo("no feeds: add one with `rag feeds add URL`")
    for f in found:
        last = f"last synced {f.last_sync}: {f.last_status}" if f.last_sync else "never synced"
        echo(f"{f.id:>3}  {f.url}" + (f"  ({f.title})" if f.title else "") + f"\n     {last}" + (f" — {f.last_error}" if f.last_error else ""))


@feeds_group.command("rm")
@click.argument("ref")
@click.option("--articles", is_flag=True, help="Also remove the articles the feed brought in (default: keep them).")
@click.pass_context
def rm_cmd(ctx: click.Context, ref: str, articles: bool) -> None:
    """Unsubscribe from a feed, by its number (see `rag feeds list`), URL or path."""
    rag = open_rag(ctx, seed=False)
    feed, removed = feed_api.remove(rag, ref, articles=articles)
    kept = "" if articles else "; its articles stay in the index (--articles removes them)"
    echo(f"removed feed {feed.id}: {feed.url}" + (f" and {len(removed)} article(s)" if articles else kept))


def print_sync(report: SyncReport) -> None:
    echo(report.summary())
    for f in report.feeds:
        echo(f"  {f.title or f.url}: {f.status}; {f.detail()}")
    for feed_url, error in report.errors:
        echo(f"  failed: {error.item}: {error.reason}" if error.item != feed_url else f"  failed: feed {feed_url}: {error.reason}",
             err=True)


@click.command("sync")
@click.argument("refs", nargs=-1)
@click.option("--full", is_flag=True, help="Ignore ETag/Last-Modified and look at every item again (indexed ones are still skipped).")
@click.pass_context
def sync_cmd(ctx: click.Context, refs: tuple[str, ...], full: bool) -> None:
    """Fetch the feeds (all, or the numbers/URLs given) and ingest their new and edited items."""
    rag = open_rag(ctx, seed=False)
    pages, embedding = Bar("fetching pages", unit="page"), Bar("embedding")
    try:
        report = feed_api.sync(rag, refs, full=full, progress=pages, ingest_progress=embedding)
    finally:
        pages.close()
        embedding.close()
    print_sync(report)
    if report.feeds and all(f.status == "failed" for f in report.feeds):
        sys.exit(1)


def _print_batch(batch: WatchBatch) -> None:
    echo(batch.summary())
    for failure in batch.ingest.failed if batch.ingest else []:
        echo(f"  failed: {failure.path}: {failure.reason}", err=True)
    for path in batch.gone:
        echo(f"  gone: {path}")
    sys.stdout.flush()  # a watch runs for hours: its log (`rag watch … | tee`) must not wait for a full buffer


@click.command("watch")
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--debounce", type=click.IntRange(min=50), help="Milliseconds to gather a burst of changes (default: RAG_WATCH_DEBOUNCE_MS, 1600).")
@click.pass_context
def watch_cmd(ctx: click.Context, directory: Path, debounce: int | None) -> None:
    """Keep the index in step with a folder: ingest files as they appear or change, remove the
    articles of files that go. Ctrl-C stops."""
    rag = open_rag(ctx, seed=False)
    # The first Ctrl-C asks the watch to stop once the batch in hand is committed, rather than
    # raising KeyboardInterrupt wherever the ingest happens to be; a second one stops at once
    # (an open transaction is rolled back whole).
    stop = threading.Event()

    def on_interrupt(_signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()  # nothing printed here: a handler that writes can interrupt a write to the same stream

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        watch(rag, directory, _print_batch, debounce_ms=debounce, stop=stop,
              on_ready=lambda: echo(f"watching {directory.resolve()} (Ctrl-C stops)", err=True))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
        rag.close()
    echo("stopped watching", err=True)


COMMANDS = (feeds_group, sync_cmd, watch_cmd)
