"""What the Chat tab's buttons do: ask (streamed, with a progress line until the first word),
stop, and start over. One browser session runs one answer at a time; Stop frees the shared
model at once, whatever the answer is doing (see ``LlamaCppGenerator.stream``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from rag.answer.pipeline import Phase
from rag.api import RAG
from rag.errors import RagError
from rag.options import AskOptions
from rag.results import Answer
from rag.serve.filters import check_dates, chips_html, date_errors_html
from rag.serve.phases import progress_html, writing_html
from rag.serve.rendering import answer_markdown, escape, sources_html
from rag.serve.request_checks import check_model, check_question

Message = dict[str, Any]
STOPPED_EARLY = "*Stopped before the answer began.*"


def _buttons(busy: bool) -> tuple[Any, Any]:
    """Ask and Stop for an idle or a running session: only one of them can be pressed."""
    return (gr.update(interactive=not busy),
            gr.update(interactive=busy, variant="stop" if busy else "secondary"))


def date_state(since: object, until: object) -> tuple[str, str]:
    """The chips and the fields' error line, as the user edits the dates."""
    dates = check_dates(since, until)
    return chips_html(dates), date_errors_html(dates)


@dataclass
class _Run:
    cancel: threading.Event = field(default_factory=threading.Event)
    partial: str = ""  # the escaped words shown so far, for what Stop leaves in the bubble


class ChatHandlers:
    """The handlers, holding each session's running answer (by Gradio session hash)."""

    # The outputs every handler here returns, in this order (see ``rag.serve.chat_view``).
    OUTPUTS = ("chatbot", "sources", "turns", "question", "send", "stop", "chips", "date_error")

    def __init__(self, rag: RAG, llms: Sequence[str]) -> None:
        self.rag = rag
        self.llms = list(llms)
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def _out(self, chat: Any = None, sources: Any = None, turns: Any = None, question: Any = None,
             busy: bool | None = None, chips: Any = None, date_error: Any = None) -> tuple[Any, ...]:
        skip = gr.skip()
        send, stop = _buttons(busy) if busy is not None else (skip, skip)
        values = (chat, sources, turns, question, send, stop, chips, date_error)
        return tuple(skip if v is None else v for v in values)

    def validate(self, question: str, chat: Any, turns: Any, llm: str, k: float, since: object, until: object,
                 mode: str, article_ids: object = None) -> list[Any]:
        """The ``validator`` of the ask events, one state per input (``ChatView.inputs``): an
        over-long question is an error on its field, not a chat message."""
        ok = gr.validate(True, "")
        try:
            if (question or "").strip():
                check_question(question.strip())
            problem = None
        except RagError as e:
            problem = str(e)
        # The dates are checked by ``ask``: Gradio's date field shows no validator message.
        return [gr.validate(problem is None, problem or ""), ok, ok, ok, ok, ok, ok, ok, ok]

    def running(self, session: str) -> bool:
        return session in self._runs

    def ask(
        self, question: str, chat: list[Message], turns: list[Answer], llm: str, k: float, since: object, until: object,
        mode: str, request: gr.Request, article_ids: Sequence[str] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        session = request.session_hash or ""
        question = (question or "").strip()
        if not question or self.running(session):  # Enter pressed while an answer is on its way
            yield self._out()
            return
        dates = check_dates(since, until)
        if dates.errors:  # shown under the date fields; the question stays in its box
            yield self._out(chips=chips_html(dates), date_error=date_errors_html(dates))
            return
        try:
            check_question(question)
            check_model(llm, self.llms)
        except RagError as e:
            yield self._out(chat=chat + [{"role": "assistant", "content": f"⚠️ {escape(str(e))}"}])
            return
        run = _Run()
        with self._lock:
            if session in self._runs:
                yield self._out()
                return
            self._runs[session] = run
        started = time.perf_counter()
        chat = chat + [{"role": "user", "content": escape(question)}, {"role": "assistant", "content": progress_html(None, 0)}]
        yield self._out(chat, question="", busy=True, chips=chips_html(dates), date_error="")
        history = [(t.question, t.text) for t in turns]
        options = AskOptions(k=int(k), since=dates.since, until=dates.until, llm=llm, mode=mode,  # type: ignore[arg-type]
                             article_ids=tuple(article_ids or ()))  # the Library's "Ask about this article"
        stream = self.rag.stream_phases(question, history, options, cancel=run.cancel)
        try:
            for event in stream:
                if run.cancel.is_set():
                    # Stopped: said here, in the answer's own stream, so no update of it still on its
                    # way can land after (Stop's handler sent its own reply on another channel).
                    yield self._out(self._stopped(chat, run), busy=False)
                    return
                elapsed = time.perf_counter() - started
                # A new list each time: a yielded update is never changed after the fact.
                if isinstance(event, Phase):
                    chat = chat[:-1] + [{"role": "assistant", "content": progress_html(event, elapsed)}]
                elif isinstance(event, str):
                    run.partial += event
                    chat = chat[:-1] + [{"role": "assistant", "content": writing_html(escape(run.partial), elapsed)}]
                else:
                    turns = turns + [event]
                    chat = chat[:-1] + self.final_messages(event, len(turns) - 1, dates.phrase(),
                                                                self._only(article_ids or ()))
                    texts = {h.article.id: self.rag.article_text(h.article.id) or "" for t in turns for h in t.sources}
                    self._finish(session, run)
                    yield self._out(chat, sources_html(turns, texts), turns, busy=False)
                    return
                yield self._out(chat)
        except RagError as e:
            chat = chat[:-1] + [{"role": "assistant", "content": f"⚠️ {escape(str(e))}"}]
            self._finish(session, run)
            yield self._out(chat, busy=False)
        finally:
            self._finish(session, run)
            stream.close()  # a cancelled handler ends the generation now, releasing the model

    def ask_api(
        self, question: str, chat: list[Message], turns: list[Answer], llm: str, k: float, since: object, until: object,
        mode: str, request: gr.Request, article_ids: Sequence[str] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """``ask`` as the /ask API has always answered: (chatbot, sources, turns, question), with a
        bad date as a warning in the chat (an API caller has no field to show it by)."""
        dates = check_dates(since, until)
        if dates.errors:
            warning = " ".join(message for _, message in dates.errors)
            yield chat + [{"role": "assistant", "content": f"⚠️ {escape(warning)}"}], gr.skip(), turns, gr.skip()
            return
        for out in self.ask(question, chat, turns, llm, k, since, until, mode, request, article_ids):
            yield out[:4]

    @staticmethod
    def final_messages(answer: Answer, turn: int, filter_phrase: str = "", only: str = "") -> list[Message]:
        """The chat messages of a final answer (also of one reopened: rag.serve.conversation_handlers)."""
        messages: list[Message] = []
        if answer.standalone_question:
            messages.append({"role": "assistant", "content": escape(answer.standalone_question),
                             "metadata": {"title": "Searched for a standalone question", "status": "done"}})
        messages.append({"role": "assistant", "content": answer_markdown(answer, turn, filter_phrase, only)})
        return messages

    def _only(self, article_ids: Sequence[str]) -> str:
        """The article filter in words, for a refusal it causes."""
        if not article_ids:
            return ""
        if len(article_ids) > 1:
            return f"the {len(article_ids)} chosen articles"
        article = self.rag.article(article_ids[0])
        return f"the article “{article.title}”" if article else "the chosen article"

    def _finish(self, session: str, run: _Run) -> None:
        with self._lock:
            if self._runs.get(session) is run:  # not a newer question's
                del self._runs[session]

    def stop(self, request: gr.Request) -> tuple[Any, ...]:
        """End this session's answer: the model is freed at once (see ``LlamaCppGenerator``), and
        the answer's stream, which notices within a step, says where it stopped. A finished
        answer is left as it is."""
        with self._lock:
            run = self._runs.get(request.session_hash or "")
        if run is None:
            return self._out(busy=False)
        run.cancel.set()
        skip = gr.skip()
        return (skip,) * 5 + (gr.update(interactive=False),) + (skip,) * (len(self.OUTPUTS) - 6)

    @staticmethod
    def _stopped(chat: list[Message], run: _Run) -> list[Message]:
        text = f"{escape(run.partial)} *(stopped)*" if run.partial.strip() else STOPPED_EARLY
        return chat[:-1] + [{"role": "assistant", "content": text}]

    def new_conversation(self, request: gr.Request) -> tuple[Any, ...]:
        with self._lock:
            run = self._runs.pop(request.session_hash or "", None)
        if run is not None:
            run.cancel.set()
        return self._out([], sources_html([], {}), [], busy=False)
