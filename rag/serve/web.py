"""The browser chat (Gradio) over :class:`rag.RAG`. Layout and wiring only: retrieval, prompts,
checks and rendering all live in the package, where Python users can reach them."""

from __future__ import annotations

import functools
import io
import os
import sys
import time
from typing import Any, TextIO

import gradio as gr
from starlette.middleware import Middleware

from rag.api import RAG
from rag.errors import RagError
from rag.options import AskOptions
from rag.serve.address import browser_url, check_port
from rag.serve.chat_assets import CSS as CHAT_CSS
from rag.serve.chat_assets import HEAD as CHAT_HEAD
from rag.serve.chat_handlers import ChatHandlers
from rag.serve.chat_view import build_chat_tab, wire_chat
from rag.serve.conversation_handlers import ConversationHandlers
from rag.serve.conversation_view import COPY_HEAD, wire_conversations
from rag.serve.conversation_view import CSS as CONVERSATION_CSS
from rag.serve.library_handlers import LibraryHandlers
from rag.serve.library_view import CSS as LIBRARY_CSS
from rag.serve.library_view import build_library_tab, wire_library
from rag.serve.phone_assets import CSS as PHONE_CSS
from rag.serve.phone_assets import HEAD as PHONE_HEAD
from rag.serve.request_checks import check_history, check_model, check_question
from rag.serve.stories_html import STORIES_CSS
from rag.serve.stories_view import (
    add_related_to_library,
    add_related_to_sources,
    build_briefing_tab,
    build_timeline_tab,
    views,
    wire_stories,
)
from rag.serve.uploads import WebLimits
from rag.serve.web_guard import WebGuard, allowed_names
from rag.settings import Settings
from rag.text import counted

# Gradio's routes that serve files by path: this app shows no files, and an upload must not
# be fetchable back by whoever learns its path.
FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/", "/file=", "/file/")

CSS = CHAT_CSS + STORIES_CSS + LIBRARY_CSS + CONVERSATION_CSS + PHONE_CSS  # other views append their rules; the phone's come last, to win
HEAD = CHAT_HEAD + COPY_HEAD + PHONE_HEAD


def status_markdown(rag: RAG, llm: str | None = None) -> str:
    info = rag.info()
    name = llm or rag.settings.llm
    model = "ready" if rag.model_ready(name) else "loading…"
    index = f"{info.articles} article{'s' if info.articles != 1 else ''}, {info.chunks} passages" if info.articles else "**the index is empty**: add articles in the Library tab"
    return f"Index: {index} · Model `{name}`: {model}"


def build_app(rag: RAG, limits: WebLimits | None = None):  # type: ignore[no-untyped-def]
    """The Gradio Blocks app over ``rag``. Every session keeps its own conversation."""
    limits = limits or WebLimits.of(rag.settings)
    llms = rag.available_llms()

    chat_handlers = ChatHandlers(rag, llms)
    library_handlers = LibraryHandlers(rag, limits, lambda: status_markdown(rag))

    def refresh_status(llm: str) -> tuple[Any, ...]:
        llm = llm if llm in llms else rag.settings.llm
        return status_markdown(rag, llm), gr.Timer(active=not rag.model_ready(llm))

    def choose_model(llm: str) -> tuple[Any, ...]:
        try:
            check_model(llm, llms)  # a hand-made call must not load a file it names
        except RagError as e:
            raise gr.Error(str(e)) from None
        rag.preload(llm)
        return status_markdown(rag, llm), gr.Timer(active=True)

    # Uploads never submitted (or left by a crash) are deleted after ten minutes, and all at exit.
    with gr.Blocks(title="News RAG", delete_cache=(600, 600)) as app:
        gr.Markdown("# Ask the news\nAnswers come only from the indexed articles and cite them as [n]; click a citation to see its passage.",
                    elem_id="intro")
        status = gr.Markdown(status_markdown(rag), elem_id="status")
        timer = gr.Timer(2.0)
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat"):
                chat = build_chat_tab(rag, llms)
            with gr.Tab("Briefing", id="briefing"):
                briefing_parts = build_briefing_tab(rag)
            with gr.Tab("Timeline", id="timeline"):
                timeline_parts = build_timeline_tab(rag)
            with gr.Tab("Library", id="library"):
                library = build_library_tab(library_handlers, limits, status)  # rag.serve.library_view

        asked = wire_chat(chat, chat_handlers, app)
        wire_conversations(chat, ConversationHandlers(rag, chat_handlers), app, asked)  # rag.serve.conversation_view
        wire_stories(rag, views(briefing_parts, timeline_parts))  # rag.serve.stories_view: briefing, timeline, related
        add_related_to_sources(rag, chat.sources, chat.turns)
        wire_library(library, library_handlers, app, tabs, chat.article)
        add_related_to_library(rag, library.preview, library.preview_id)
        # Hidden progress: a veiled status line (Gradio fades a pending output) every 2 s reads as a flicker.
        timer.tick(refresh_status, chat.llm, [status, timer], api_visibility="private", show_progress="hidden")
        chat.llm.change(choose_model, chat.llm, [status, timer], api_visibility="private")

        def answer_api(question: str, history: list[list[str]] | None = None, k: int = 0, llm: str = "") -> dict[str, Any]:
            """Answer a question; history is [[question, answer], ...]; llm is one of the listed
            model names (or empty for the default). Returns the answer as JSON."""
            try:
                pairs = check_history([(str(q), str(a)) for q, a in (history or [])])
                answer = rag.ask(check_question(str(question)), pairs, AskOptions(k=int(k) or None, llm=check_model(llm, llms)))
            except RagError as e:
                raise gr.Error(str(e)) from None
            return answer.to_dict()

        gr.api(answer_api, api_name="answer", concurrency_limit=8, concurrency_id="chat")
    return app


@functools.cache  # one copy per process, however often the app is launched
def _console() -> TextIO:
    """A private copy of stdout for the start-up lines: while llama.cpp loads a model (in the
    background) llama-cpp-python points file descriptor 1 at /dev/null, and a line printed then,
    such as the URL, was lost."""
    try:
        return os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding=sys.stdout.encoding or "utf-8")
    except (AttributeError, OSError, io.UnsupportedOperation):  # no file behind stdout (captured): use it as is
        return sys.stdout


def launch(
    settings: Settings | None = None,
    host: str | None = None,
    port: int | None = None,
    rag: RAG | None = None,
    block: bool = True,
    api: bool = False,
):  # type: ignore[no-untyped-def]
    """Open the index, load the model in the background, and serve the chat.

    Listens on 127.0.0.1 unless a host is given (or RAG_HOST); RAG_USERNAME and RAG_PASSWORD
    turn on a login; ``api`` also serves the HTTP API (rag.serve.http) at /v1 on the same port.
    Returns the running app when ``block`` is False (tests)."""
    started = time.perf_counter()
    chosen = rag.settings if rag else settings or Settings()
    host = host or chosen.host
    port = port or chosen.port
    check_port(host, port)  # before the index and the models load: a taken port fails at once
    out = _console()
    rag = rag or RAG.open(settings=settings)
    rag.preload()
    limits = WebLimits.of(rag.settings)
    app = build_app(rag, limits)
    auth = rag.settings.login()
    if api and auth and not rag.settings.api_key_value():
        # The mounted /v1 routes sit outside Gradio's login: without a key they would bypass it.
        raise RagError("RAG_USERNAME/RAG_PASSWORD protect the chat but not the API at /v1: set RAG_API_KEY too")
    info = rag.info()
    print(
        f"index {info.directory}: {counted(info.articles, 'article')}, {counted(info.chunks, 'passage')}; embedder {info.embedder}; "
        f"LLM {info.llm} loading in the background; ready in {time.perf_counter() - started:.1f}s",
        file=out, flush=True,
    )
    app.queue(default_concurrency_limit=4, max_size=64)
    guard = Middleware(WebGuard, names=allowed_names(host, rag.settings.allowed_hosts), blocked_prefixes=FILE_ROUTES)
    try:
        # quiet: Gradio's own "Running on" line is not flushed, and names a wildcard host as it is.
        app.launch(
            server_name=host, server_port=port, auth=auth, show_error=True, inbrowser=False, quiet=True,
            max_file_size=limits.max_upload_bytes, css=CSS, head=HEAD, prevent_thread_lock=True,
            allowed_paths=[], blocked_paths=[str(rag.store.directory)],
            app_kwargs={"middleware": [guard], "openapi_url": None},
        )
    except OSError:  # Gradio's "Cannot find empty port" (taken since the check above) told plainly
        check_port(host, port)
        raise
    if api:
        from rag.serve.http import check_bind, mount_api

        mount_api(app.server_app, rag, host=host)
        if warning := check_bind(host, rag.settings.api_key_value()):
            print(f"warning: {warning}", file=out, flush=True)
    # Printed once it listens (launch returns after Gradio's own request to the running server).
    print(f"Chat: {browser_url(host, port)}", file=out, flush=True)
    if api:
        print(f"API:  {browser_url(host, port, '/v1')}", file=out, flush=True)
    if block:
        app.block_thread()
    return app
