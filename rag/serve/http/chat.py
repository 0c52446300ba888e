"""Chat completions: the conversation turned into a question and its history, answered through
RAG.stream, returned whole or as server-sent events, cancelled when the client leaves."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from rag.api import RAG
from rag.errors import RagError
from rag.options import AskOptions
from rag.results import Answer, final_answer
from rag.serve.http.errors import ApiError, _from_rag_error, error_body
from rag.serve.http.shapes import ChatMessage, ChatRequest, _citations
from rag.serve.request_checks import check_history, check_question, check_today

log = logging.getLogger(__name__)

def _conversation(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """(question, history as (user, assistant) turns). System prompts are ignored: the answer
    prompt is this server's own (prompts/), so that citations can be checked."""
    last = messages[-1]
    if last.role != "user" or not last.text().strip():
        raise ApiError(400, "the last message must be a non-empty user message (the question)", param="messages")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for m in messages[:-1]:
        if m.role == "user":
            pending = m.text()
        elif m.role == "assistant" and pending is not None:
            history.append((pending, m.text()))
            pending = None
    return last.text().strip(), history


class _Chat:
    """One chat completion request, answered whole or as server-sent events."""

    def __init__(self, rag: RAG, body: ChatRequest) -> None:
        self.rag = rag
        self.body = body
        self.model = body.model or rag.settings.llm
        if self.model not in rag.available_llms():
            raise ApiError(
                404, f"the model '{self.model}' does not exist; GET /v1/models lists the ones available",
                code="model_not_found", param="model",
            )
        self.question, self.history = _conversation(body.messages)
        check_question(self.question)
        check_history(self.history)
        check_today(body.today)
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def events(self, cancel: threading.Event) -> Iterator[str | Answer]:
        b = self.body
        options = AskOptions(k=b.k, since=b.since, until=b.until, llm=self.model, today=b.today, mode=b.mode,
                             max_tokens=b.max_completion_tokens or b.max_tokens, temperature=b.temperature)
        return self.rag.stream(self.question, self.history, options, cancel=cancel)

    def _extras(self, answer: Answer) -> dict[str, Any]:
        # The checked answer: its text can differ from the streamed words (normalised
        # citations, a refusal), so a client should show ``rag.answer`` once it arrives.
        return {"citations": _citations(answer), "rag": answer.to_dict()}

    def completion(self, answer: Answer) -> dict[str, Any]:
        citations = _citations(answer)
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{
                "index": 0, "finish_reason": "stop", "logprobs": None,
                "message": {"role": "assistant", "content": answer.text, "refusal": None, "citations": citations},
            }],
            **self._extras(answer),
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        data = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            **extra,
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    async def sse(self) -> AsyncIterator[str]:
        """The answer as chat.completion.chunk events; the last one carries the citations.

        RAG.stream blocks, so it runs in its own thread and hands events over a queue; when the
        client goes away, ``cancel`` stops the model at its next token and frees it."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()
        end = object()

        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, item)
            except RuntimeError:  # the event loop is gone (server shutting down)
                cancel.set()

        def work() -> None:
            stream = None
            try:
                stream = self.events(cancel)
                for event in stream:
                    put(event)
                    if cancel.is_set():
                        break
            except Exception as e:  # noqa: BLE001 - handed to the client as an error event
                put(e)
            finally:
                if stream is not None:
                    stream.close()
                put(end)

        threading.Thread(target=work, daemon=True, name="rag-api-answer").start()
        try:
            yield self.chunk({"role": "assistant", "content": ""})
            while (item := await events.get()) is not end:
                if isinstance(item, str):
                    yield self.chunk({"content": item})
                elif isinstance(item, Answer):
                    yield self.chunk({}, "stop", **self._extras(item))
                elif isinstance(item, Exception):
                    e = _from_rag_error(item)
                    if e.status >= 500 and not isinstance(item, RagError):
                        log.error("answer failed", exc_info=item)
                    yield f"data: {json.dumps(error_body(e.message, e.type, e.code, e.param))}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            cancel.set()


class _AnswerStream(StreamingResponse):
    """A streamed answer that runs ``on_close`` once the response is over, even when the client
    left before the first event (the body generator then never starts, so its finally never runs)."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


def _last_answer(events: Callable[[threading.Event], Iterator[str | Answer]], cancel: threading.Event) -> Answer:
    return final_answer(events(cancel))
