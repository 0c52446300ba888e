"""What the Library tab's controls do: search (titles, metadata and article text), select,
remove with a confirmation that names the articles, undo within the session, preview, upload,
and "Ask about this article". Each session's selection and removals live in its own gr.State."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from rag.api import RAG
from rag.documents.articles import Article
from rag.errors import RagError
from rag.serve.article_filter import filter_update
from rag.serve.library_html import article_list_html, confirm_html, note_html, preview_html, removed_html
from rag.serve.request_checks import check_text
from rag.serve.uploads import WebLimits, discard_gradio_uploads, discard_unreferenced, store_uploads, upload_display_name

MAX_SELECTED = 10_000  # ids one selection event may carry (a hand-made request could send any number)
UNDO_DEPTH = 20  # removals a session can undo, latest first


def remove_label(selected: Sequence[str]) -> Any:
    """The Remove button: named by how many are selected, pressable only then."""
    n = len(selected)
    return gr.update(value=f"Remove selected ({n})" if n else "Remove selected", interactive=bool(n))


class LibraryHandlers:
    """The handlers over one RAG; ``status()`` is the app's index line, refreshed after changes."""

    # What each handler returns, by name, in order (``LibraryView.pick`` finds the components).
    # Only what an event can change is its output: Gradio fades every output while it runs.
    LISTED = ("listing", "selected", "remove", "confirm", "status")
    OUTPUTS: dict[str, tuple[str, ...]] = {
        "refresh": LISTED,
        "search": ("listing", "selected", "remove", "confirm", "result"),
        "select": ("selected", "remove", "confirm"),
        "ask_remove": ("confirm", "confirm_text", "result"),
        "cancel_remove": ("confirm", "result"),
        "confirm_remove": (*LISTED, "result", "undo", "removed", "preview", "preview_id"),
        "undo": (*LISTED, "result", "undo", "removed"),
        "open_preview": ("preview", "preview_text", "preview_id", "result"),
        "close_preview": ("preview", "preview_id"),
    }

    def __init__(self, rag: RAG, limits: WebLimits, status: Callable[[], str]) -> None:
        self.rag = rag
        self.limits = limits
        self.status = status
        self.upload_dir = rag.store.directory / "uploads"

    def _out(self, event: str, **values: Any) -> tuple[Any, ...]:
        names = self.OUTPUTS[event]
        assert set(values) <= set(names), (event, set(values) - set(names))
        return tuple(values.get(name, gr.skip()) for name in names)

    def _listing(self, query: str, selected: Sequence[str]) -> tuple[str, list[str]]:
        """The list for ``query`` and the selection pruned to what it shows."""
        query = check_text(query or "", "the search", 500).strip()
        articles = self.rag.articles(search=query or None)
        shown = {a.id for a in articles}
        kept = [i for i in selected if i in shown]
        return article_list_html(articles, kept, query), kept

    def listing(self, query: str = "", selected: Sequence[str] = ()) -> str:
        return self._listing(query, selected)[0]

    def refresh(self, query: str = "") -> tuple[Any, ...]:
        """After the index changed elsewhere (an upload, a feed sync, a reload): the list, with
        nothing selected, and the status line."""
        html, _ = self._listing(query, ())
        return self._out("refresh", listing=html, selected=[], remove=remove_label([]), confirm=gr.update(visible=False),
                         status=self.status())

    def search(self, query: str, selected: list[str]) -> tuple[Any, ...]:
        try:
            html, kept = self._listing(query, selected or [])
        except RagError as e:
            return self._out("search", listing=article_list_html([], (), ""), result=note_html(str(e)))
        return self._out("search", listing=html, selected=kept, remove=remove_label(kept),
                         confirm=gr.update(visible=False))

    def select(self, evt: gr.EventData) -> tuple[Any, ...]:
        """The list's checkboxes changed: ``evt.ids`` is every checked id, in list order."""
        raw = getattr(evt, "_data", None) or {}
        ids = raw.get("ids") if isinstance(raw, dict) else None
        picked = [i for i in (ids if isinstance(ids, list) else [])[:MAX_SELECTED] if isinstance(i, str)]
        known = {a.id for a in self.rag.articles()}
        picked = [i for i in dict.fromkeys(picked) if i in known]
        return self._out("select", selected=picked, remove=remove_label(picked), confirm=gr.update(visible=False))

    def ask_remove(self, selected: list[str]) -> tuple[Any, ...]:
        """Remove was pressed: ask, naming the articles (nothing is removed yet)."""
        records = [r for i in selected or [] if (r := self.rag.article(i))]
        if not records:
            return self._out("ask_remove", result=note_html("Select the articles to remove first."),
                             confirm=gr.update(visible=False))
        return self._out("ask_remove", confirm=gr.update(visible=True), confirm_text=confirm_html([r.title for r in records]),
                         result="")

    def cancel_remove(self) -> tuple[Any, ...]:
        return self._out("cancel_remove", confirm=gr.update(visible=False), result=note_html("Nothing was removed."))

    def confirm_remove(self, selected: list[str], query: str, removed: list[list[Article]]) -> tuple[Any, ...]:
        """Remove the selected articles and their uploaded files; keep their records to undo it."""
        records = [r for i in selected or [] if (r := self.rag.article(i))]
        if not records:  # removed meanwhile, in another session
            html, _ = self._listing(query, ())
            return self._out("confirm_remove", listing=html, selected=[], remove=remove_label([]),
                             confirm=gr.update(visible=False), result=note_html("Those articles are no longer in the index."),
                             status=self.status())
        try:
            gone = set(self.rag.remove([r.id for r in records]))
        except RagError as e:
            raise gr.Error(str(e)) from None
        records = [r for r in records if r.id in gone]
        discard_unreferenced([r.origin for r in records if r.origin], self.upload_dir, self.rag)
        stack = [*(removed or []), records][-UNDO_DEPTH:]
        html, _ = self._listing(query, ())
        return self._out(
            "confirm_remove",
            listing=html, selected=[], remove=remove_label([]), confirm=gr.update(visible=False),
            result=removed_html([r.title for r in records]), undo=gr.update(visible=True), removed=stack,
            status=self.status(), preview=gr.update(visible=False), preview_id=None,
        )

    def undo(self, removed: list[list[Article]], query: str) -> tuple[Any, ...]:
        """Add the latest removed articles back (from the text kept in the session)."""
        if not removed:
            return self._out("undo", undo=gr.update(visible=False), result=note_html("Nothing to undo."))
        records, stack = removed[-1], removed[:-1]
        try:
            report = self.rag.restore(records)
        except RagError as e:
            raise gr.Error(str(e)) from None
        back = set(report.added) | set(report.updated)
        titles = [r.title for r in records if r.id in back]
        result = removed_html(titles, restored=True) if titles else note_html("Those articles are in the index already.")
        html, _ = self._listing(query, ())
        return self._out("undo", listing=html, selected=[], remove=remove_label([]), result=result,
                         undo=gr.update(visible=bool(stack)), removed=stack, status=self.status())

    def open_preview(self, evt: gr.EventData) -> tuple[Any, ...]:
        raw = getattr(evt, "_data", None) or {}
        article_id = raw.get("id") if isinstance(raw, dict) else None
        record = self.rag.article(article_id) if isinstance(article_id, str) else None
        if record is None:
            return self._out("open_preview", preview=gr.update(visible=False), preview_id=None,
                             result=note_html("That article is no longer in the index."))
        info = next((a for a in self.rag.articles() if a.id == record.id), None)
        return self._out("open_preview", preview=gr.update(visible=True), preview_text=preview_html(record, info),
                         preview_id=record.id)

    def close_preview(self) -> tuple[Any, ...]:
        return self._out("close_preview", preview=gr.update(visible=False), preview_id=None)

    def ask_about(self, article_id: str | None) -> tuple[Any, ...]:
        """To the Chat tab, its questions limited to the previewed article: (tabs, *ArticleFilter.outputs)."""
        record = self.rag.article(article_id) if article_id else None
        if record is None:
            raise gr.Error("That article is no longer in the index.")
        return (gr.Tabs(selected="chat"), *filter_update([record.id], [record.title]))

    def add_files(self, files: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        """Upload: (results rows, *refresh()). Copied into ``index/uploads`` and indexed; what
        added nothing (duplicates, failures) keeps no copy."""
        if not files:
            return [], *self._out("refresh")
        try:
            accepted, rows = store_uploads([str(f) for f in files], self.upload_dir, self.limits)
        finally:  # copied into the index (or refused): Gradio's temporary copies go now
            discard_gradio_uploads([str(f) for f in files], get_upload_folder())
        if accepted:
            def on_progress(done: int, total: int) -> None:
                progress((done, total) if total else 0, desc="Embedding", unit="passages")

            report = self.rag.add(accepted, progress=on_progress)
            discard_unreferenced(accepted, self.upload_dir, self.rag)
            for result in report.files.values():
                rows.append([upload_display_name(result.path), result.status, result.detail()])
        return rows, *self.refresh()

    def remove_api(self, article_ref: str | None) -> tuple[Any, ...]:
        """The ``remove_article`` API: remove by id (or id prefix, URL, origin) with its upload, at
        once (an API caller confirmed by calling). Returns ``refresh()``'s values."""
        if not article_ref or not str(article_ref).strip():
            raise gr.Error("Name the article to remove: its id.")
        before = {a.id: a.origin for a in self.rag.articles()}
        try:
            removed = self.rag.remove(str(article_ref).strip())
        except RagError as e:
            raise gr.Error(str(e)) from None
        discard_unreferenced([before[i] for i in removed if before.get(i)], self.upload_dir, self.rag)
        return self.refresh()
