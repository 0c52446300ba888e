"""The Library tab: its layout (built inside ``with gr.Tab(...)`` by ``rag.serve.web``) and its
wiring to :class:`~rag.serve.library_handlers.LibraryHandlers`.

The article list is HTML rendered here (escaped, see ``rag.serve.library_html``) so that one
markup is a table on a desktop and cards on a phone; its checkboxes and title buttons report
back through custom events of the ``gr.HTML`` (``trigger`` in ``LIST_JS``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.api import RAG
from rag.ingest.formats import SUPPORTED_SUFFIXES
from rag.serve.article_filter import ArticleFilter
from rag.serve.feeds_panel import sync_panel
from rag.serve.library_handlers import LibraryHandlers, remove_label
from rag.serve.uploads import WebLimits

# Delegated listeners on the component's element: they survive the list's re-rendering.
LIST_JS = """
const picked = () => [...element.querySelectorAll('input.library-pick:checked')].map((b) => b.dataset.id);
element.addEventListener('change', (e) => {
  if (e.target.matches && e.target.matches('input.library-pick')) trigger('selection', {ids: picked()});
});
element.addEventListener('click', (e) => {
  if (!e.target.closest || e.target.closest('input.library-pick')) return;
  const item = e.target.closest('.library-item');  // the whole row opens; its button is the keyboard path
  if (item) trigger('preview', {id: item.dataset.id});
});
// A new list is patched into the old one, and a reused checkbox keeps the state it was clicked
// into: make every box show what the server rendered (its "checked" attribute).
watch('value', () => element.querySelectorAll('input.library-pick').forEach((b) => { b.checked = b.hasAttribute('checked'); }));
"""
FOCUS_CANCEL = "() => { setTimeout(() => document.querySelector('#remove-cancel')?.focus(), 80); }"
# After a removal, Undo has the focus; after an undo (Remove is disabled then), the list.
FOCUS_RESULT = """() => { setTimeout(() => {
  const shown = (el) => el && el.offsetParent !== null && !el.disabled;
  const undo = document.querySelector('#undo');
  (shown(undo) ? undo : document.querySelector('#articles .library-pick, #library-search input'))?.focus();
}, 120); }"""
FOCUS_PREVIEW = "() => { setTimeout(() => document.querySelector('#article-preview .preview-title')?.focus(), 80); }"
FOCUS_QUESTION = "() => { setTimeout(() => document.querySelector('#question textarea')?.focus(), 150); }"

CSS = """
#articles .library-count, #articles .library-empty { margin: 0 0 6px; color: #3f3f46; }
#articles .library-empty { padding: 16px; border: 1px dashed var(--border-color-primary); border-radius: 8px; }
#articles ul.library-items { list-style: none; margin: 0; padding: 0; max-height: 560px; overflow-y: auto; }
#articles .library-head, #articles .library-item { display: grid; align-items: center; gap: 4px 10px;
  grid-template-columns: 1.5rem minmax(0, 1fr) minmax(5rem, 9rem) 6rem 5rem; padding: 6px 8px; }
#articles .library-head { font-weight: 600; border-bottom: 1px solid var(--border-color-primary); font-size: 0.9em; }
#articles .library-item { border-bottom: 1px solid var(--border-color-primary); cursor: pointer; }
#articles .library-item:hover { background: #f4f6fb; }
#articles .library-item:has(.library-pick:checked) { background: #e8efff; }
#articles .library-meta { display: contents; }
#articles .library-sep { display: none; }
#articles .library-source, #articles .library-date, #articles .library-passages { font-size: 0.9em; color: #3f3f46;
  overflow-wrap: anywhere; }
#articles .library-pick { width: 1.15rem; height: 1.15rem; margin: 0; cursor: pointer; }
#articles button.library-open { all: unset; cursor: pointer; font-weight: 600; color: #1e3a8a; overflow-wrap: break-word;
  word-break: normal; }
#articles button.library-open:hover { text-decoration: underline; }
#articles button.library-open:focus-visible, #articles .library-pick:focus-visible { outline: 3px solid #1d4ed8;
  outline-offset: 2px; }
#library-actions { align-items: center; }
#remove-confirm { border: 2px solid #b91c1c; border-radius: 8px; padding: 8px; }
#remove-confirm .library-confirm { margin: 0 0 6px; }
#library-result:not(:has(p)) { display: none; }
#article-preview { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px; }
#article-preview .preview-title { margin: 0 0 4px; font-size: 1.2em; }
#article-preview .preview-meta, #article-preview .preview-id { color: #3f3f46; margin: 2px 0; font-size: 0.9em; }
#article-preview .preview-url { overflow-wrap: anywhere; margin: 2px 0 8px; }
#article-preview .preview-url a { color: #1e3a8a; }
#article-preview .preview-text { max-height: 420px; overflow-y: auto; }
#article-preview .preview-text p { margin: 0 0 8px; }
#article-filter { align-items: center; gap: 8px; }
#article-chip .chip { border-radius: 12px; }  /* a title, often two lines: not a pill */
@media (max-width: 640px) {
  /* Cards: the checkbox beside the title, which takes the width; source and date below it. */
  #articles .library-head { display: none; }
  #articles .library-item { grid-template-columns: 1.5rem minmax(0, 1fr); border: 1px solid var(--border-color-primary);
    border-radius: 8px; margin: 0 0 8px; padding: 10px; }
  #articles .library-pick { grid-row: 1 / span 2; align-self: start; margin-top: 2px; width: 1.4rem; height: 1.4rem; }
  #articles .library-meta { display: block; grid-column: 2; font-size: 0.9em; }
  #articles .library-sep { display: inline; }
  #articles .library-passages { display: none; }
  #articles ul.library-items { max-height: none; }
}
"""


@dataclass
class LibraryView:
    """The Library tab's components."""

    search: gr.Textbox
    listing: gr.HTML
    selected: gr.State
    remove: gr.Button
    confirm: gr.Column
    confirm_text: gr.HTML
    confirm_yes: gr.Button
    cancel: gr.Button
    result: gr.HTML
    undo: gr.Button
    removed: gr.State
    preview: gr.Column
    preview_text: gr.HTML
    preview_id: gr.State
    ask: gr.Button
    close: gr.Button
    files: gr.File
    add: gr.Button
    upload_results: gr.Dataframe
    status: Any = None  # the app's status line, set by wire_library

    def pick(self, event: str) -> list[Any]:
        """The components a handler returns values for, in its order (``LibraryHandlers.OUTPUTS``)."""
        return [getattr(self, name) for name in LibraryHandlers.OUTPUTS[event]]


def build_library_tab(handlers: LibraryHandlers, limits: WebLimits, status: Any) -> LibraryView:
    """The list with its search, selection, removal (confirm, undo) and preview; the upload and
    the feeds beside it (under it on a phone)."""
    rag: RAG = handlers.rag
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            search = gr.Textbox(label="Search articles", placeholder="words in the title or text, source, author or id",
                                elem_id="library-search", max_lines=1)
            listing = gr.HTML(handlers.listing(), elem_id="articles", js_on_load=LIST_JS, padding=False)
            selected = gr.State([])
            with gr.Row(elem_id="library-actions"):
                remove = gr.Button("Remove selected", variant="stop", interactive=False, elem_id="remove", scale=0,
                                   min_width=240)
                undo = gr.Button("Undo", visible=False, elem_id="undo", scale=0, min_width=100)
            result = gr.HTML("", elem_id="library-result", padding=False)
            with gr.Column(visible=False, elem_id="remove-confirm") as confirm:
                confirm_text = gr.HTML("", padding=False)
                with gr.Row():
                    confirm_yes = gr.Button("Remove", variant="stop", elem_id="remove-confirm-yes", scale=0, min_width=140)
                    cancel = gr.Button("Cancel", elem_id="remove-cancel", scale=0, min_width=140)
            removed = gr.State([])
            with gr.Column(visible=False, elem_id="article-preview") as preview:
                preview_text = gr.HTML("", padding=False)
                with gr.Row():
                    ask = gr.Button("Ask about this article", variant="primary", elem_id="ask-about", scale=0, min_width=220)
                    close = gr.Button("Close preview", elem_id="close-preview", scale=0, min_width=180)
            preview_id = gr.State(None)
        with gr.Column(scale=2):
            files = gr.File(
                label=f"Add articles ({', '.join(SUPPORTED_SUFFIXES)}; up to {limits.max_upload_files} files, "
                f"{limits.max_upload_bytes // 1_000_000} MB each)",
                file_count="multiple", file_types=list(SUPPORTED_SUFFIXES), elem_id="upload",
            )
            add = gr.Button("Add to index", variant="primary", elem_id="add")
            upload_results = gr.Dataframe(headers=["File", "Result", "Detail"], interactive=False, wrap=True,
                                          elem_id="upload-results")
            synced = [listing, selected, remove, status]
            sync_panel(rag, synced, lambda: (handlers.listing(), [], remove_label([]), handlers.status()))
    return LibraryView(search, listing, selected, remove, confirm, confirm_text, confirm_yes, cancel, result, undo,
                       removed, preview, preview_text, preview_id, ask, close, files, add, upload_results, status)


def wire_library(view: LibraryView, handlers: LibraryHandlers, app: gr.Blocks, tabs: gr.Tabs,
                 article_filter: ArticleFilter) -> None:
    """Connect the tab's events. ``add_articles`` and ``remove_article`` stay API endpoints."""
    out = view.pick
    private: dict[str, Any] = {"api_visibility": "private"}
    quick: dict[str, Any] = {**private, "show_progress": "hidden"}  # no spinner for a click answered at once
    write: dict[str, Any] = {**private, "show_progress": "minimal", "concurrency_id": "library-write", "concurrency_limit": 1}
    view.search.change(handlers.search, [view.search, view.selected], out("search"), **quick, trigger_mode="always_last")
    view.listing.selection(handlers.select, None, out("select"), **quick, queue=False)  # type: ignore[attr-defined]
    view.listing.preview(handlers.open_preview, None, out("open_preview"), **quick).then(  # type: ignore[attr-defined]
        None, js=FOCUS_PREVIEW, **private)
    view.remove.click(handlers.ask_remove, view.selected, out("ask_remove"), **quick).then(None, js=FOCUS_CANCEL, **private)
    view.cancel.click(handlers.cancel_remove, None, out("cancel_remove"), **quick, queue=False).then(
        None, js="() => document.querySelector('#remove')?.focus()", **private)
    view.confirm_yes.click(handlers.confirm_remove, [view.selected, view.search, view.removed], out("confirm_remove"),
                           **write).then(None, js=FOCUS_RESULT, **private)
    view.undo.click(handlers.undo, [view.removed, view.search], out("undo"), **write).then(None, js=FOCUS_RESULT, **private)
    view.close.click(handlers.close_preview, None, out("close_preview"), **quick, queue=False)
    view.ask.click(handlers.ask_about, view.preview_id, [tabs, *article_filter.outputs()], **private).then(
        None, js=FOCUS_QUESTION, **private)
    view.add.click(handlers.add_files, view.files, [view.upload_results, *out("refresh")], api_name="add_articles")
    # For API callers (tests/test_serving_hardening.py): remove by id at once; the page asks first.
    api_remove = gr.Textbox(visible=False)
    api_remove.submit(handlers.remove_api, api_remove, out("refresh"), api_name="remove_article")
    app.load(handlers.refresh, None, out("refresh"), **quick)  # no veil over the status line while the page opens
