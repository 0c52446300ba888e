"""The Library's feed controls: the subscribed feeds, a Sync button, and what each feed did.
Wiring only; the sync itself is :func:`rag.feeds.sync`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from rag import feeds
from rag.api import RAG
from rag.errors import RagError
from rag.serve.rendering import escape


def feeds_markdown(rag: RAG) -> str:
    found = feeds.feeds(rag)
    if not found:
        return "No feeds yet: subscribe with `rag feeds add URL`."
    lines = []
    for f in found:
        when = f"synced {f.last_sync[:16].replace('T', ' ')} UTC: {f.last_status}" if f.last_sync else "never synced"
        error = f" — {escape(f.last_error)}" if f.last_error else ""
        lines.append(f"- **{escape(f.title or f.url)}** · {escape(when)}{error}")
    return "\n".join(lines)


def sync_panel(rag: RAG, outputs: Sequence[Any], refresh: Callable[[], tuple[Any, ...]]) -> None:
    """Place the feed list, the Sync button and its results here; after a sync, ``refresh()``
    gives the new values of ``outputs`` (the article table and whatever shows the index)."""
    with gr.Accordion("Feeds", open=True, elem_id="feeds"):
        listing = gr.Markdown(feeds_markdown(rag), elem_id="feed-list")
        button = gr.Button("Sync feeds", elem_id="sync")
        results = gr.Dataframe(headers=["Feed", "Result", "Detail"], interactive=False, wrap=True, elem_id="sync-results",
                               column_widths=["30%", "18%", "52%"])

    def run(progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        def pages(done: int, total: int) -> None:
            progress((done, total), desc="Fetching pages", unit="pages")

        def embedding(done: int, total: int) -> None:
            progress((done, total) if total else 0, desc="Embedding", unit="passages")

        try:
            report = feeds.sync(rag, progress=pages, ingest_progress=embedding)
        except RagError as e:  # another sync running, a read-only index
            raise gr.Error(str(e)) from None
        gr.Info(report.summary())
        rows = report.rows() or [["(no feeds)", "", "subscribe with `rag feeds add URL`"]]
        return (rows, feeds_markdown(rag), *refresh())

    # One sync at a time: a second click while one runs waits in the queue.
    button.click(run, None, [results, listing, *outputs], api_name="sync_feeds", concurrency_limit=1)
