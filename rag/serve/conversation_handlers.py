"""What the saved-conversations panel does (layout: ``rag.serve.conversation_view``).

Each login (Gradio's ``request.username``; without a login, the one local user) has its own
conversations in the index's ``conversations.sqlite`` (rag.conversations). A conversation is
saved when an answer is final, right after ``ChatHandlers.ask``; an answer stopped before it
was checked is not (it is not in the chat's history either: it has no checked citations to keep).
Regenerating the last answer replaces the saved one, and its rating with it."""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Sequence
from typing import Any

import gradio as gr

from rag.api import RAG
from rag.conversations import ConversationNotFound, Conversations, articles_jsonl, evaluation_jsonl, markdown
from rag.errors import RagError
from rag.results import Answer
from rag.serve.chat_handlers import ChatHandlers, Message
from rag.serve.filters import check_dates
from rag.serve.rendering import escape, sources_html

# The model's seed is fixed (Settings.seed): at the chat's temperature a regenerated answer would
# repeat the same words. Warmer sampling writes another one, still checked like every answer.
REGENERATE_TEMPERATURE = 0.8
_FEEDBACK = {True: "up", False: "down"}
_SHOWN = {"up": "Like", "down": "Dislike"}


def _files(*files: tuple[str, str]) -> str:
    """Files for the page to download (rag.serve.conversation_view.DOWNLOAD_JS)."""
    return json.dumps([{"name": name, "text": text} for name, text in files], ensure_ascii=False)


def _slug(title: str) -> str:
    return re.sub(r"[^\w]+", "-", title.casefold()).strip("-")[:60] or "conversation"


def _question_of(content: str) -> str:
    """A question back from its chat bubble (``rendering.escape`` undone), for regenerating an
    answer that was stopped or failed and so has no saved Answer to take it from."""
    text = re.sub(r"`([^`]*)`", r"\1", content)
    return html.unescape(re.sub(r"\\(.)", r"\1", text))


def turn_starts(chat: Sequence[Message], turns: int, starts: Sequence[int]) -> list[int]:
    """Where each answer of the chat's history begins in its messages (its bubble's first message,
    the index Gradio's like and retry events name), after an ask that may have added one or
    replaced the last. Stopped and failed answers are in the chat but not in the history."""
    last_user = max((i for i, m in enumerate(chat) if m.get("role") == "user"), default=-1)
    starts = list(starts)
    if turns == len(starts) + 1:
        return [*starts, last_user + 1]
    return starts[:turns]  # unchanged, or shorter after a regenerate that was stopped (a regenerated
    # answer starts where the one it replaces did: the chat was cut at its question, asked again)


class ConversationHandlers:
    """The panel's handlers, over ``rag.conversations`` and the chat's ``ChatHandlers``."""

    def __init__(self, rag: RAG, chat: ChatHandlers) -> None:
        self.rag = rag
        self.chat = chat
        # Regenerate answers through the same handlers (the same running-answer table, so Stop
        # works), over a warmer view of the same RAG (shared index and models).
        self.regenerator = copy.copy(chat)
        self.regenerator.rag = rag.with_settings(temperature=max(REGENERATE_TEMPERATURE, rag.settings.temperature))

    def _of(self, request: gr.Request) -> Conversations:
        return self.rag.conversations.of(getattr(request, "username", None))

    def _listing(self, chats: Conversations, current: str) -> tuple[Any, Any]:
        listed = chats.list()
        choices = [(f"{c.title} · {c.updated_at:%b} {c.updated_at.day}, {c.updated_at:%H:%M} UTC · "
                    f"{c.turns} question{'s' if c.turns != 1 else ''}", c.id) for c in listed]
        label = f"Saved conversations ({len(listed)})" if listed else "Saved conversations"
        info = "Newest first." if listed else "None yet: each answered question is saved here."
        return (gr.Radio(choices=choices, value=current if any(c.id == current for c in listed) else None, info=info),
                gr.Accordion(label=label))

    def _controls(self, title: str | None) -> list[Any]:
        on = title is not None
        return [gr.Textbox(value=title or "", interactive=on), gr.Button(interactive=on), gr.Button(interactive=on),
                gr.Button(interactive=on)]

    def restore(self, remembered: str, request: gr.Request) -> tuple[Any, ...]:
        """As the page loads: the list, and the conversation this browser had open, reopened if it
        is this login's (a reload or a restart loses nothing). Outputs: those of :meth:`open`,
        then list, accordion."""
        try:
            chats = self._of(request)
            mine = bool(remembered) and any(c.id == remembered for c in chats.list())
            listed = self._listing(chats, remembered if mine else "")
        except RagError as e:
            return (*(gr.skip(),) * 9, f"⚠️ {escape(str(e))}", gr.skip(), gr.skip())
        return (*(self.open(remembered, request) if mine else (gr.skip(),) * 10), *listed)

    def save(self, turns: list[Answer], current: str, chat: list[Message], starts: list[int], since: object,
             until: object, request: gr.Request) -> tuple[Any, ...]:
        """After an ask: keep the conversation's saved answers equal to the chat's history.
        Outputs: current, starts, list, accordion, title, rename, delete, export, note."""
        chats = self._of(request)
        new_starts = turn_starts(chat, len(turns), starts)
        if not turns:
            return (current, new_starts, gr.skip(), gr.skip(), *[gr.skip()] * 4, gr.skip())
        phrase = check_dates(since, until).phrase()
        try:
            saved = chats.save(current or None, turns, [""] * (len(turns) - 1) + [phrase])
            title = chats.get(saved).title
        except RagError as e:  # a read-only index, a full disk: the chat goes on, unsaved
            return (current, new_starts, gr.skip(), gr.skip(), *[gr.skip()] * 4,
                    f"⚠️ Not saved: {escape(str(e))}")
        return (saved, new_starts, *self._listing(chats, saved), *self._controls(title), "")

    def open(self, conversation_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Open a saved conversation: its messages, ratings and Sources panel come back.
        Outputs: chatbot, sources, turns, current, starts, title, rename, delete, export, note."""
        if not conversation_id:
            return (gr.skip(),) * 10
        try:
            conversation = self._of(request).get(conversation_id)
        except RagError as e:
            return (*(gr.skip(),) * 9, f"⚠️ {escape(str(e))}")
        messages: list[Message] = []
        starts: list[int] = []
        for turn in conversation.turns:
            messages.append({"role": "user", "content": escape(turn.question)})
            starts.append(len(messages))
            messages += self.chat.final_messages(turn.answer, turn.position, turn.filter_note)
        answers = conversation.answers
        texts = {h.article.id: self.rag.article_text(h.article.id) or "" for a in answers for h in a.sources}
        chatbot = gr.Chatbot(value=messages, feedback_value=[_SHOWN.get(t.feedback or "") for t in conversation.turns])
        return (chatbot, sources_html(answers, texts), answers, conversation.id, starts,
                *self._controls(conversation.title), "")

    def reset(self, request: gr.Request) -> tuple[Any, ...]:
        """A new conversation: nothing open. Outputs: current, starts, list, accordion, title, rename, delete, export."""
        try:
            listed = self._listing(self._of(request), "")
        except RagError:
            listed = (gr.skip(), gr.skip())
        return ("", [], *listed, *self._controls(None))

    def rename(self, current: str, title: str, request: gr.Request) -> tuple[Any, ...]:
        """Outputs: list, accordion, title, note."""
        chats = self._of(request)
        try:
            chats.rename(current, title)
        except RagError as e:
            return gr.skip(), gr.skip(), gr.skip(), f"⚠️ {escape(str(e))}"
        return (*self._listing(chats, current), chats.get(current).title, f"Renamed to “{escape(chats.get(current).title)}”.")

    def ask_delete(self, current: str, request: gr.Request) -> tuple[Any, ...]:
        """Show the confirmation, naming the conversation. Outputs: confirm row, its text."""
        try:
            conversation = self._of(request).get(current)
        except RagError as e:
            return gr.Row(visible=False), f"⚠️ {escape(str(e))}"
        count = len(conversation.turns)
        return (gr.Row(visible=True), f"Delete “{escape(conversation.title)}” and its {count} "
                f"answer{'s' if count != 1 else ''}? This cannot be undone.")

    def delete(self, current: str, request: gr.Request) -> tuple[Any, ...]:
        """Delete the open conversation and clear the chat. Outputs: confirm row, chatbot,
        sources, turns, current, starts, list, accordion, title, rename, delete, export, note."""
        chats = self._of(request)
        try:
            title = chats.get(current).title
            chats.delete(current)
        except RagError as e:
            return (gr.Row(visible=False), *(gr.skip(),) * 11, f"⚠️ {escape(str(e))}")
        return (gr.Row(visible=False), [], sources_html([], {}), [], "", [], *self._listing(chats, ""),
                *self._controls(None), f"Deleted “{escape(title)}”.")

    def export_markdown(self, current: str, request: gr.Request) -> tuple[str, str]:
        """The open conversation as Markdown, for the page to download. Outputs: downloads, note."""
        try:
            conversation = self._of(request).get(current)
        except ConversationNotFound:
            return "", "Ask a question or open a conversation first."
        return _files((f"{_slug(conversation.title)}.md", markdown(conversation))), ""

    def export_feedback(self, request: gr.Request) -> tuple[str, str]:
        """Every rated answer of this user as evaluation questions, with the articles they were
        given (rag.conversations.export), for the page to download. Outputs: downloads, note."""
        conversations = self._of(request).all()
        questions = evaluation_jsonl(conversations)
        if not questions:
            return "", "No rated answers yet: rate an answer with its thumbs up or down first."
        count = questions.count("\n")
        return (_files(("feedback-eval.jsonl", questions),
                       ("feedback-articles.jsonl", articles_jsonl(conversations, self.rag.article_text))),
                f"Exported {count} rated answer{'s' if count != 1 else ''}: run `rag eval feedback-eval.jsonl "
                "--articles feedback-articles.jsonl`.")

    def like(self, current: str, starts: list[int], data: gr.LikeData, request: gr.Request) -> str:
        """Store a thumbs up or down (or its removal) with the answer it was given to. Output: note."""
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        if not current or index not in starts:
            return "Only a finished, saved answer can be rated."
        feedback = _FEEDBACK.get(data.liked) if isinstance(data.liked, bool) else None
        try:
            self._of(request).set_feedback(current, starts.index(index), feedback)  # type: ignore[arg-type]
        except RagError as e:
            return f"⚠️ {escape(str(e))}"
        return ""

    def prepare_retry(self, chat: list[Message], turns: list[Answer], starts: list[int], current: str,
                      data: gr.RetryData, request: gr.Request) -> tuple[Any, ...]:
        """Regenerate: take the last question out of the chat (and its answer out of the history)
        and put it back in the question box, for the ask that follows. The thumbs shown are set
        again from what is stored (the page would keep showing the old answer's on the new one).
        Outputs: chatbot, turns, question."""
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        if starts and starts[-1] > index and turns:
            question, turns = turns[-1].question, turns[:-1]
        else:  # the last answer was stopped or failed: nothing saved to replace
            question = _question_of(str(data.value if isinstance(data.value, str) else chat[index].get("content", "")))
        kept = chat[:index]
        try:
            stored = [t.feedback for t in self._of(request).get(current).turns] if current else []
        except RagError:
            stored = []
        groups = [i for i, m in enumerate(kept) if m.get("role") == "assistant" and (i == 0 or kept[i - 1].get("role") != "assistant")]
        shown = [_SHOWN.get(stored[starts.index(g)] or "") if g in starts and starts.index(g) < len(stored) else None
                 for g in groups]
        return gr.Chatbot(value=kept, feedback_value=shown), turns, question
