"""The Chat tab: its layout (built inside ``with gr.Tab(...)`` by ``rag.serve.web``) and its
wiring to :class:`~rag.serve.chat_handlers.ChatHandlers`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.answer.retrieval import MODES
from rag.api import RAG
from rag.serve.article_filter import ArticleFilter, build_article_filter
from rag.serve.chat_handlers import ChatHandlers, date_state
from rag.serve.conversation_view import ConversationPanel, build_conversation_panel
from rag.serve.explanations import mode_choices, model_choices
from rag.serve.rendering import sources_html
from rag.serve.suggestions import suggested_questions

# Shown when the index is too new to have headlines to suggest from.
FALLBACK_EXAMPLES = [
    "Where was Lavrov speaking?",
    "What did Türkiye propose for the Israel-Palestine conflict?",
    "How many days of national mourning did Türkiye declare?",
    "What did Lavrov say about Iran?",
]


def suggestions_for(rag: RAG) -> list[list[str]]:
    return [[q] for q in (suggested_questions(rag.articles()) or FALLBACK_EXAMPLES)]


@dataclass
class ChatView:
    """The Chat tab's components, for ``rag.serve.web`` to wire to the rest of the app."""

    chatbot: gr.Chatbot
    chips: gr.HTML
    question: gr.Textbox
    send: gr.Button
    stop: gr.Button
    new_chat: gr.Button
    suggestions: gr.Dataset
    llm: gr.Dropdown
    k: gr.Slider
    mode: gr.Dropdown
    since: gr.DateTime
    until: gr.DateTime
    date_error: gr.HTML
    sources: gr.HTML
    turns: gr.State
    api_ask: gr.Button
    article: ArticleFilter  # set by the Library's "Ask about this article" (rag.serve.library_view)
    history: ConversationPanel  # saved conversations (rag.serve.conversation_view)

    def outputs(self) -> list[Any]:
        """In the order of ``ChatHandlers.OUTPUTS``."""
        return [getattr(self, name) for name in ChatHandlers.OUTPUTS]

    def inputs(self) -> list[Any]:
        return [self.question, self.chatbot, self.turns, self.llm, self.k, self.since, self.until, self.mode, self.article.ids]


def build_chat_tab(rag: RAG, llms: Sequence[str]) -> ChatView:
    """The tab's components: the conversation, the question box with Ask and Stop, suggested
    questions, the date filter (shown as chips when on) and options, and the Sources panel."""
    has_articles = bool(rag.info().articles)
    turns = gr.State([])
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(
                elem_id="chatbot", height=520, sanitize_html=True, show_label=False, label="Conversation",
                buttons=["copy", "copy_all"],  # not "share": it posts to Hugging Face, and has no accessible name
                placeholder="Ask a question about the indexed articles: answers cite them as [n]." if has_articles
                else "The index is empty: add articles in the Library tab.",
            )
            chips = gr.HTML("", elem_id="filter-chips", padding=False)
            article = build_article_filter()
            # Phones only (rag.serve.phone_assets): opens the Sources drawer; its "(n)" is set by the page script.
            gr.Button("Sources", size="sm", elem_id="sources-open", elem_classes="phone-only")
            with gr.Row(elem_id="ask-row"):
                question = gr.Textbox(
                    label="Your question", show_label=False, placeholder="Ask about the news…", scale=6,
                    elem_id="question", autofocus=True, max_lines=6,
                )
                send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="send")
                stop = gr.Button("Stop", variant="secondary", scale=1, min_width=80, elem_id="stop", interactive=False)
            new_chat = gr.Button("New conversation", size="sm", elem_id="new-chat")
            history = build_conversation_panel()
            suggestions = gr.Dataset(
                components=[question], samples=suggestions_for(rag),
                label="Suggested questions (from the newest articles)", elem_id="suggestions", samples_per_page=4,
            )
            with gr.Accordion("Filters and options", open=False, elem_id="options"):
                with gr.Row():
                    since = gr.DateTime(label="Published from", include_time=False, type="string", elem_id="since",
                                        info="YYYY-MM-DD, or pick a day")
                    until = gr.DateTime(label="Published until", include_time=False, type="string", elem_id="until",
                                        info="YYYY-MM-DD, or pick a day")
                date_error = gr.HTML("", elem_id="date-error", padding=False)
                llm = gr.Dropdown(model_choices(list(llms)), value=rag.settings.llm, label="Model", elem_id="model",
                                  info="Bigger models answer better and take longer")
                mode = gr.Dropdown(mode_choices(list(MODES)), value=rag.settings.retrieval, label="How to search",
                                   elem_id="mode")
                k = gr.Slider(1, 12, value=rag.settings.top_k, step=1, label="Passages to retrieve", elem_id="k",
                              info="More passages: more context, slower answers")
        with gr.Column(scale=2, elem_id="sources-column"):
            # Phones only: the column is a drawer there, and this closes it back to the citation.
            gr.Button("Back to answer", size="sm", elem_id="sources-back", elem_classes="phone-only")
            gr.HTML('<h2 class="sources-heading" id="sources-title">Sources</h2>')
            sources = gr.HTML(sources_html([], {}), elem_id="sources")
    api_ask = gr.Button(visible=False)
    return ChatView(chatbot, chips, question, send, stop, new_chat, suggestions, llm, k, mode, since, until, date_error,
                    sources, turns, api_ask, article, history)


# The date pickers keep a typed text they cannot read ("March 2024") out of their value, so an
# ask would quietly search without the filter: send what the fields show, for ``ask`` to name
# the problem under the fields. (Indexes: ChatView.inputs.)
RAW_DATES_JS = """(...values) => {
  const shown = (id) => { const el = document.querySelector('#' + id + ' input'); return el ? el.value : null; };
  const out = values.slice();
  out[5] = shown('since') ?? out[5];
  out[6] = shown('until') ?? out[6];
  return out;
}"""
SHOWN_DATES_JS = """(since, until) => {
  const shown = (id, value) => { const el = document.querySelector('#' + id + ' input'); return el ? el.value : value; };
  return [shown('since', since), shown('until', until)];
}"""


def wire_chat(view: ChatView, handlers: ChatHandlers, app: gr.Blocks) -> list[Any]:
    """Connect the tab's events; returns the ask events (others cancel them)."""
    inputs, outputs = view.inputs(), view.outputs()
    chat = {"concurrency_limit": 8, "concurrency_id": "chat", "validator": handlers.validate, "js": RAW_DATES_JS}
    asked = [
        # "multiple": a question stopped while the model was still reading must not block the next one.
        # Named: unnamed, they would take "ask" (the function's name) from the API below.
        view.send.click(handlers.ask, inputs, outputs, api_name="chat_send", api_visibility="private",
                        trigger_mode="multiple", **chat),
        view.question.submit(handlers.ask, inputs, outputs, api_name="chat_submit", api_visibility="private",
                             trigger_mode="multiple", **chat),
    ]
    # A suggestion is asked at once.
    picked = view.suggestions.click(lambda sample: sample[0], view.suggestions, view.question, api_visibility="private",
                                    queue=False)
    asked.append(picked.then(handlers.ask, inputs, outputs, api_name="chat_suggestion", api_visibility="private",
                             trigger_mode="multiple", **chat))
    # The /ask API keeps its outputs (benchmarks/chat_load.py drives it): on a button never shown.
    api = {k: v for k, v in chat.items() if k != "js"}
    asked.append(view.api_ask.click(handlers.ask_api, inputs, outputs[:4], api_name="ask", trigger_mode="multiple", **api))
    # No ``cancels``: a cancelled event's updates still in flight could land after Stop's reply;
    # the answer's own stream ends itself and says so (ChatHandlers.stop).
    view.stop.click(handlers.stop, None, outputs, api_visibility="private", queue=False)
    view.new_chat.click(handlers.new_conversation, None, outputs, cancels=asked, api_visibility="private")
    view.chatbot.clear(handlers.new_conversation, None, outputs, cancels=asked, api_visibility="private")
    for field in (view.since, view.until):
        field.submit(date_state, [view.since, view.until], [view.chips, view.date_error], js=SHOWN_DATES_JS,
                     api_visibility="private", queue=False)
        field.change(date_state, [view.since, view.until], [view.chips, view.date_error], js=SHOWN_DATES_JS,
                     api_visibility="private", queue=False)
    app.load(lambda: gr.Dataset(samples=suggestions_for(handlers.rag)), None, view.suggestions, api_visibility="private")
    return asked
