"""The Chat tab's saved conversations: the list (newest first), rename, delete with a
confirmation, export as Markdown and the ratings as an evaluation set, thumbs up and down on
answers and regenerating the last one; the handlers are in ``rag.serve.conversation_handlers``.

Element ids (for the page's CSS, the phone layout and the tests): ``#conversations`` (the
accordion), ``#conversation-list``, ``#conversation-title``, ``#conversation-rename``,
``#conversation-delete``, ``#conversation-confirm`` (the confirmation row) with
``#conversation-delete-yes`` / ``#conversation-delete-no``, ``#conversation-export``,
``#feedback-export`` and ``#conversation-note``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from rag.serve.conversation_handlers import ConversationHandlers

if TYPE_CHECKING:
    from rag.serve.chat_view import ChatView

# The exports download in the page (a Blob): the app serves no files (rag.serve.web.FILE_ROUTES).
DOWNLOAD_JS = """(files) => {
  if (!files) return;
  for (const file of JSON.parse(files)) {
    const type = file.name.endsWith('.jsonl') ? 'application/x-ndjson' : 'text/markdown';
    const url = URL.createObjectURL(new Blob([file.text], {type: type + ';charset=utf-8'}));
    const a = Object.assign(document.createElement('a'), {href: url, download: file.name});
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}"""

# The chat's copy buttons copy a message's source (escaped Markdown with the citation links'
# HTML): copy what the bubble shows instead, with the [n] marks and without the hover previews.
COPY_HEAD = """
<script>
(function () {
  let pending = null;
  const shown = (el) => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll('.cite-preview, button, .phase').forEach((e) => e.remove());
    copy.style.position = 'fixed'; copy.style.left = '-99999px'; document.body.appendChild(copy);
    const text = copy.innerText.replace(/\\n{3,}/g, '\\n\\n').trim();
    copy.remove();
    return text;
  };
  document.addEventListener('click', (e) => {
    const button = e.target.closest('#chatbot button');
    const label = button ? (button.getAttribute('aria-label') || button.title || '') : '';
    if (!/copy/i.test(label)) return;
    // A message's buttons follow its row (Gradio 6): the bubble is the row's last message.
    let row = button.closest('.message-buttons');
    while (row && !row.classList.contains('message-row')) row = row.previousElementSibling;
    const bubbles = row ? row.querySelectorAll('[data-testid="bot"], [data-testid="user"]') : [];
    if (bubbles.length && !/conversation/i.test(label)) {
      pending = shown(bubbles[bubbles.length - 1]);
    } else {
      const rows = document.querySelectorAll('#chatbot [data-testid="user"], #chatbot [data-testid="bot"]');
      pending = Array.from(rows).map((r) => (r.dataset.testid === 'user' ? 'Q: ' : 'A: ') + shown(r)).join('\\n\\n');
    }
  }, true);
  if (navigator.clipboard && navigator.clipboard.writeText) {
    const write = navigator.clipboard.writeText.bind(navigator.clipboard);
    navigator.clipboard.writeText = (text) => { const t = pending ?? text; pending = null; return write(t); };
  }
  document.addEventListener('copy', (e) => {  // the fallback without navigator.clipboard (plain http)
    if (pending === null) return;
    e.clipboardData.setData('text/plain', pending); e.preventDefault(); pending = null;
  });
})();
</script>
"""

CSS = """
#conversation-list { max-height: 320px; overflow-y: auto; }
#conversation-list label { width: 100%; }
#conversation-rename { align-self: end; }
#conversation-confirm { border: 1px solid #b91c1c; border-radius: 8px; padding: 6px 10px; }
#conversation-note:not(:has(p)) { display: none; }
"""


@dataclass
class ConversationPanel:
    """The components of the saved-conversations panel (see the module docstring for their ids)."""

    accordion: gr.Accordion
    listing: gr.Radio
    title: gr.Textbox
    rename: gr.Button
    delete: gr.Button
    confirm: gr.Row
    confirm_text: gr.Markdown
    delete_yes: gr.Button
    delete_no: gr.Button
    export: gr.Button
    export_feedback: gr.Button
    note: gr.Markdown
    downloads: gr.Textbox  # the files to download, as JSON [{"name", "text"}] (DOWNLOAD_JS)
    current: gr.State  # the open conversation's id ("" before its first answer is saved)
    starts: gr.State  # each saved turn's first message index in the chat (rag.serve.conversation_handlers)
    remembered: gr.BrowserState  # the id of the conversation open in this browser, reopened on the next visit

    def controls(self) -> list[Any]:
        return [self.title, self.rename, self.delete, self.export]


def build_conversation_panel() -> ConversationPanel:
    """The panel, closed until opened (filled by ``ConversationHandlers.listing`` on page load)."""
    current, starts = gr.State(""), gr.State([])
    # Fixed, so a restarted app still reads it. No secret: the id is only ever opened for its own
    # login (Conversations.get), and is worth nothing to anyone else.
    remembered = gr.BrowserState("", storage_key="rag-open-conversation", secret="rag-open-conversation")
    with gr.Accordion("Saved conversations", open=False, elem_id="conversations") as accordion:
        listing = gr.Radio([], label="Open a conversation", elem_id="conversation-list",
                           info="None yet: each answered question is saved here.")
        with gr.Row(equal_height=False):
            title = gr.Textbox(label="Title of the open conversation", elem_id="conversation-title", scale=4,
                               max_lines=1, interactive=False, placeholder="Ask a question to start one")
            rename = gr.Button("Rename", size="sm", elem_id="conversation-rename", scale=1, min_width=90, interactive=False)
        with gr.Row():
            export = gr.Button("Export as Markdown", size="sm", elem_id="conversation-export", interactive=False)
            delete = gr.Button("Delete…", size="sm", variant="stop", elem_id="conversation-delete", interactive=False)
        with gr.Row(visible=False, elem_id="conversation-confirm") as confirm:
            confirm_text = gr.Markdown("")
            delete_yes = gr.Button("Delete", variant="stop", size="sm", elem_id="conversation-delete-yes")
            delete_no = gr.Button("Keep it", size="sm", elem_id="conversation-delete-no")
        export_feedback = gr.Button("Export rated answers as an evaluation set", size="sm", elem_id="feedback-export")
        note = gr.Markdown("", elem_id="conversation-note")
    downloads = gr.Textbox(visible=False)
    return ConversationPanel(accordion, listing, title, rename, delete, confirm, confirm_text, delete_yes, delete_no,
                             export, export_feedback, note, downloads, current, starts, remembered)


def _calls(event: Any, fn: Any) -> bool:
    """Whether a Gradio event listener runs ``fn`` (to tell the chat's asks from the /ask API's)."""
    return getattr(event, "fn", None) == fn or getattr(getattr(event, "fn", None), "fn", None) == fn


def wire_conversations(view: ChatView, handlers: ConversationHandlers, app: gr.Blocks, asked: list[Any]) -> None:
    """Connect the panel: save after each of the chat's asks (not the /ask API's), open, rename,
    delete, export, rate and regenerate."""
    from rag.serve.chat_view import RAW_DATES_JS  # here: rag.serve.chat_view builds this panel

    p, private = view.history, {"api_visibility": "private"}
    saved = [p.current, p.starts, p.listing, p.accordion, *p.controls(), p.note]
    save_inputs = [view.turns, p.current, view.chatbot, p.starts, view.since, view.until]
    for event in asked:
        if _calls(event, handlers.chat.ask):
            event.then(handlers.save, save_inputs, saved, **private)
    opened = [view.chatbot, view.sources, view.turns, p.current, p.starts, *p.controls(), p.note]
    # Opening one ends an answer still running, as "New conversation" does.
    p.listing.input(handlers.chat.new_conversation, None, view.outputs(), cancels=asked, **private).then(
        handlers.open, p.listing, opened, **private)
    reset = [p.current, p.starts, p.listing, p.accordion, *p.controls()]
    view.new_chat.click(handlers.reset, None, reset, **private)
    view.chatbot.clear(handlers.reset, None, reset, **private)
    for rename in (p.rename.click, p.title.submit):
        rename(handlers.rename, [p.current, p.title], [p.listing, p.accordion, p.title, p.note], **private)
    p.delete.click(handlers.ask_delete, p.current, [p.confirm, p.confirm_text], **private)
    p.delete_no.click(lambda: gr.Row(visible=False), None, p.confirm, queue=False, **private)
    p.delete_yes.click(handlers.delete, p.current, [p.confirm, view.chatbot, view.sources, view.turns, p.current, p.starts,
                                                    p.listing, p.accordion, *p.controls(), p.note], **private)
    p.export.click(handlers.export_markdown, p.current, [p.downloads, p.note], **private).then(
        None, p.downloads, None, js=DOWNLOAD_JS, **private)
    p.export_feedback.click(handlers.export_feedback, None, [p.downloads, p.note], **private).then(
        None, p.downloads, None, js=DOWNLOAD_JS, **private)
    view.chatbot.like(handlers.like, [p.current, p.starts], p.note, **private)
    chat = {"concurrency_limit": 8, "concurrency_id": "chat", "validator": handlers.chat.validate, "js": RAW_DATES_JS}
    view.chatbot.retry(handlers.prepare_retry, [view.chatbot, view.turns, p.starts, p.current],
                       [view.chatbot, view.turns, view.question], **private).then(handlers.regenerator.ask, view.inputs(), view.outputs(), **chat, **private).then(
        handlers.save, save_inputs, saved, **private)
    p.current.change(lambda current: current, p.current, p.remembered, queue=False, **private)
    # No loading veil: it dims the Sources panel at page load (axe then measured the dimmed text).
    app.load(handlers.restore, p.remembered, [*opened, p.listing, p.accordion], show_progress="hidden", **private)
