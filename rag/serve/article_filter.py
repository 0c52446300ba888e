"""The chat's article filter: set by the Library's "Ask about this article", it limits retrieval
to that article (``AskOptions.article_ids``) and shows as a chip by the question box, with a
button that clears it. Built by ``rag.serve.chat_view``, set by ``rag.serve.library_view``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.serve.filters import chip_list_html
from rag.serve.library_html import short_title


@dataclass
class ArticleFilter:
    ids: gr.State  # the article ids the chat's questions are limited to ([]: all articles)
    row: gr.Row
    chip: gr.HTML
    clear: gr.Button

    def outputs(self) -> list[Any]:
        return [self.ids, self.row, self.chip]


def article_chip_html(titles: list[str]) -> str:
    return chip_list_html("Only from the article" if len(titles) == 1 else "Only from the articles",
                          [f"“{short_title(t)}”" for t in titles], "Active article filter")


def filter_update(ids: list[str], titles: list[str]) -> tuple[Any, ...]:
    """The values of :meth:`ArticleFilter.outputs` for a filter on ``ids`` (none: cleared)."""
    return list(ids), gr.update(visible=bool(ids)), article_chip_html(titles)


def build_article_filter() -> ArticleFilter:
    """Inside the chat's column, above the question box; hidden while no filter is on."""
    ids = gr.State([])
    with gr.Row(visible=False, elem_id="article-filter", equal_height=True) as row:
        chip = gr.HTML("", elem_id="article-chip", padding=False, scale=1, min_width=260)  # wraps the button below on a phone
        clear = gr.Button("Ask about all articles", size="sm", elem_id="article-filter-clear", scale=0, min_width=180)
    view = ArticleFilter(ids, row, chip, clear)
    clear.click(lambda: filter_update([], []), None, view.outputs(), api_visibility="private", queue=False)
    return view
