"""The browser chat (Gradio) over :class:`rag.RAG`. Layout and wiring only: retrieval, prompts,
checks and rendering all live in the package, where Python users can reach them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from rag.answer.retrieval import MODES
from rag.api import RAG
from rag.errors import RagError
from rag.ingest.formats import SUPPORTED_SUFFIXES
from rag.options import AskOptions
from rag.results import Answer
from rag.serve.rendering import answer_markdown, escape, sources_html
from rag.serve.request_checks import check_history, check_model, check_question
from rag.serve.uploads import WebLimits, discard_gradio_uploads, discard_unreferenced, store_uploads
from rag.serve.web_guard import WebGuard, allowed_names
from rag.settings import Settings

# Gradio's routes that serve files by path: this app shows no files, and an upload must not
# be fetchable back by whoever learns its path.
FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/", "/file=", "/file/")

EXAMPLES = [
    "Where was Lavrov speaking?",
    "What did Türkiye propose for the Israel-Palestine conflict?",
    "How many days of national mourning did Türkiye declare?",
    "What did Lavrov say about Iran?",
]

CSS = """
#sources { max-height: 640px; overflow-y: auto; }
#sources .src { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px 10px; margin: 6px 0; }
#sources .src.flash { outline: 3px solid var(--color-accent); }
#sources .src-meta { color: var(--body-text-color-subdued); font-size: 0.85em; }
#sources mark { background: #ffe58a; color: inherit; padding: 0 2px; }
#sources .article-text { white-space: pre-wrap; font-size: 0.9em; max-height: 320px; overflow-y: auto; }
#sources h4 { margin: 10px 0 4px; }
a.cite { font-weight: 600; text-decoration: none; cursor: pointer; }
"""

# Citation links scroll the sources panel to the cited passage and open it.
HEAD = """
<script>
document.addEventListener('click', function (e) {
  const link = e.target.closest && e.target.closest('a[href*="#src-"]');
  if (!link) return;
  e.preventDefault(); e.stopPropagation();
  const el = document.getElementById(link.getAttribute('href').split('#')[1]);
  if (!el) return;
  el.open = true;
  el.scrollIntoView({behavior: 'smooth', block: 'center'});
  el.classList.add('flash');
  setTimeout(function () { el.classList.remove('flash'); }, 2000);
}, true);
</script>
"""


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # Gradio 6 hands messages back as lists of parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def _article_rows(rag: RAG, query: str | None = None) -> list[list[Any]]:
    return [
        [a.title, a.source or "", a.published.isoformat() if a.published else "", a.chunk_count, a.id]
        for a in rag.articles(search=query)
    ]


def _article_choices(rag: RAG) -> list[tuple[str, str]]:
    return [(f"{a.title} ({a.id})", a.id) for a in rag.articles()]


def status_markdown(rag: RAG, llm: str | None = None) -> str:
    info = rag.info()
    name = llm or rag.settings.llm
    model = "ready" if rag.model_ready(name) else "loading…"
    index = f"{info.articles} article{'s' if info.articles != 1 else ''}, {info.chunks} passages" if info.articles else "**the index is empty**: add articles in the Library tab"
    return f"Index: {index} · Model `{name}`: {model}"


def build_app(rag: RAG, limits: WebLimits | None = None):  # type: ignore[no-untyped-def]
    """The Gradio Blocks app over ``rag``. Every session keeps its own conversation."""
    limits = limits or WebLimits.of(rag.settings)
    upload_dir = rag.store.directory / "uploads"
    llms = rag.available_llms()

    stops: dict[str, threading.Event] = {}  # per browser session: set by the Stop button

    def ask(
        question: str, chat: list[dict[str, Any]], turns: list[Answer], llm: str, k: float, since: str, until: str,
        mode: str, request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        question = (question or "").strip()
        if not question:
            yield chat, gr.skip(), turns, ""
            return
        try:
            check_question(question)
            check_model(llm, llms)
        except RagError as e:
            yield chat + [{"role": "assistant", "content": f"⚠️ {escape(str(e))}"}], gr.skip(), turns, ""
            return
        chat = chat + [{"role": "user", "content": escape(question)}, {"role": "assistant", "content": "…"}]
        yield chat, gr.skip(), turns, ""
        history = [(t.question, t.text) for t in turns]
        partial = ""
        cancel = stops[request.session_hash or ""] = threading.Event()
        options = AskOptions(k=int(k), since=(since or "").strip() or None, until=(until or "").strip() or None,
                             llm=llm, mode=mode)  # type: ignore[arg-type]
        stream = rag.stream(question, history, options, cancel=cancel)
        try:
            for event in stream:
                if isinstance(event, str):
                    partial += event
                    chat[-1] = {"role": "assistant", "content": escape(partial)}
                    yield chat, gr.skip(), turns, ""
                    continue
                turns = turns + [event]
                texts = {h.article.id: rag.article_text(h.article.id) or "" for t in turns for h in t.sources}
                chat = chat[:-1]
                if event.standalone_question:
                    chat.append({"role": "assistant", "content": escape(event.standalone_question),
                                 "metadata": {"title": "Searched for a standalone question", "status": "done"}})
                chat.append({"role": "assistant", "content": answer_markdown(event, len(turns) - 1)})
                yield chat, sources_html(turns, texts), turns, ""
        except RagError as e:
            chat[-1] = {"role": "assistant", "content": f"⚠️ {escape(str(e))}"}
            yield chat, gr.skip(), turns, ""
        finally:
            stream.close()  # on Stop: end the generation now, releasing the model for others

    def stop_generation(chat: list[dict[str, Any]], request: gr.Request) -> list[dict[str, Any]]:
        if event := stops.get(request.session_hash or ""):
            event.set()
        if chat and chat[-1].get("role") == "assistant" and "a class=\"cite\"" not in str(chat[-1].get("content")):
            chat = chat[:-1] + [{"role": "assistant", "content": f"{_text_of(chat[-1])} *(stopped)*"}]
        return chat

    def new_conversation(request: gr.Request) -> tuple[Any, ...]:
        if event := stops.get(request.session_hash or ""):
            event.set()
        return [], sources_html([], {}), []

    def add_files(files: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        if not files:
            return [], gr.skip(), gr.skip(), gr.skip()
        try:
            accepted, rows = store_uploads([str(f) for f in files], upload_dir, limits)
        finally:  # copied into the index (or refused): Gradio's temporary copies go now
            discard_gradio_uploads([str(f) for f in files], get_upload_folder())
        if accepted:
            def on_progress(done: int, total: int) -> None:
                progress((done, total) if total else 0, desc="Embedding", unit="passages")

            report = rag.add(accepted, progress=on_progress)
            discard_unreferenced(accepted, upload_dir, rag)  # duplicates and failures keep no copy
            for result in report.files.values():
                rows.append([Path(result.path).name, result.status, result.detail()])
        return rows, _article_rows(rag), gr.update(choices=_article_choices(rag), value=None), status_markdown(rag)

    def remove_article(article_id: str | None) -> tuple[Any, ...]:
        if not article_id:
            raise gr.Error("Choose an article to remove first.")
        before = rag.articles()
        removed = rag.remove(article_id)
        discard_unreferenced([a.origin for a in before if a.id in removed], upload_dir, rag)
        gr.Info(f"Removed {len(removed)} article(s).")
        return _article_rows(rag), gr.update(choices=_article_choices(rag), value=None), status_markdown(rag)

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
        turns = gr.State([])
        gr.Markdown("# Ask the news\nAnswers come only from the indexed articles and cite them as [n]; click a citation to see its passage.")
        status = gr.Markdown(status_markdown(rag), elem_id="status")
        timer = gr.Timer(2.0)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row():
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(
                            elem_id="chatbot", height=520, sanitize_html=True, show_label=False,
                            placeholder="Ask a question about the indexed articles." if rag.info().articles
                            else "The index is empty: add articles in the Library tab.",
                        )
                        with gr.Row():
                            question = gr.Textbox(show_label=False, placeholder="Ask about the news…", scale=6, elem_id="question", autofocus=True)
                            send = gr.Button("Ask", variant="primary", scale=1, elem_id="send")
                            stop = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
                        new_chat = gr.Button("New conversation", size="sm", elem_id="new-chat")
                        gr.Examples(EXAMPLES, inputs=question, label="Try")
                        with gr.Accordion("Options", open=False):
                            llm = gr.Dropdown(llms, value=rag.settings.llm, label="Model", elem_id="model")
                            with gr.Row():
                                k = gr.Slider(1, 12, value=rag.settings.top_k, step=1, label="Passages to retrieve", elem_id="k")
                                mode = gr.Dropdown(list(MODES), value=rag.settings.retrieval, label="Retrieval", elem_id="mode")
                            with gr.Row():
                                since = gr.Textbox(label="Published from (YYYY-MM-DD)", elem_id="since")
                                until = gr.Textbox(label="Published until (YYYY-MM-DD)", elem_id="until")
                    with gr.Column(scale=2):
                        gr.Markdown("### Sources")
                        sources = gr.HTML(sources_html([], {}), elem_id="sources")
            with gr.Tab("Library", id="library"):
                with gr.Row():
                    with gr.Column(scale=3):
                        lib_search = gr.Textbox(label="Search articles", placeholder="title, source, author or id", elem_id="library-search")
                        table = gr.Dataframe(
                            value=_article_rows(rag), headers=["Title", "Source", "Published", "Passages", "ID"],
                            interactive=False, wrap=True, elem_id="articles",
                            column_widths=["44%", "20%", "14%", "8%", "14%"],
                        )
                    with gr.Column(scale=2):
                        files = gr.File(
                            label=f"Add articles ({', '.join(SUPPORTED_SUFFIXES)}; up to {limits.max_upload_files} files, "
                            f"{limits.max_upload_bytes // 1_000_000} MB each)",
                            file_count="multiple", file_types=list(SUPPORTED_SUFFIXES), elem_id="upload",
                        )
                        add = gr.Button("Add to index", variant="primary", elem_id="add")
                        results = gr.Dataframe(headers=["File", "Result", "Detail"], interactive=False, wrap=True, elem_id="upload-results")
                        remove_choice = gr.Dropdown(_article_choices(rag), label="Remove an article", elem_id="remove-choice")
                        remove = gr.Button("Remove", variant="stop", elem_id="remove")

        inputs = [question, chatbot, turns, llm, k, since, until, mode]
        outputs = [chatbot, sources, turns, question]
        asked = [
            # "multiple": a question stopped while the model was still reading must not block the next one.
            send.click(ask, inputs, outputs, api_name="ask", concurrency_limit=8, concurrency_id="chat", trigger_mode="multiple"),
            question.submit(ask, inputs, outputs, api_visibility="private", concurrency_limit=8, concurrency_id="chat", trigger_mode="multiple"),
        ]
        stop.click(stop_generation, chatbot, chatbot, cancels=asked, api_visibility="private", queue=False)
        new_chat.click(new_conversation, None, [chatbot, sources, turns], cancels=asked)
        chatbot.clear(new_conversation, None, [chatbot, sources, turns], cancels=asked, api_visibility="private")
        timer.tick(refresh_status, llm, [status, timer], api_visibility="private")
        llm.change(choose_model, llm, [status, timer], api_visibility="private")
        lib_search.change(lambda q: _article_rows(rag, q), lib_search, table, api_visibility="private")
        add.click(add_files, files, [results, table, remove_choice, status], api_name="add_articles")
        remove.click(remove_article, remove_choice, [table, remove_choice, status], api_name="remove_article")

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
        app.load(lambda: (_article_rows(rag), gr.update(choices=_article_choices(rag)), status_markdown(rag)), None, [table, remove_choice, status], api_visibility="private")
    return app


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
    rag = rag or RAG.open(settings=settings)
    rag.preload()
    limits = WebLimits.of(rag.settings)
    app = build_app(rag, limits)
    host = host or rag.settings.host
    port = port or rag.settings.port
    auth = rag.settings.login()
    if api and auth and not rag.settings.api_key_value():
        # The mounted /v1 routes sit outside Gradio's login: without a key they would bypass it.
        raise RagError("RAG_USERNAME/RAG_PASSWORD protect the chat but not the API at /v1: set RAG_API_KEY too")
    info = rag.info()
    print(
        f"index {info.directory}: {info.articles} articles, {info.chunks} passages; embedder {info.embedder}; "
        f"LLM {info.llm} loading in the background; ready in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    print(f"starting the chat at http://{host}:{port}", flush=True)
    app.queue(default_concurrency_limit=4, max_size=64)
    guard = Middleware(WebGuard, names=allowed_names(host, rag.settings.allowed_hosts), blocked_prefixes=FILE_ROUTES)
    app.launch(
        server_name=host, server_port=port, auth=auth, show_error=True, inbrowser=False,
        max_file_size=limits.max_upload_bytes, css=CSS, head=HEAD, prevent_thread_lock=True,
        allowed_paths=[], blocked_paths=[str(rag.store.directory)],
        app_kwargs={"middleware": [guard], "openapi_url": None},
    )
    if api:
        from rag.serve.http import check_bind, mount_api

        mount_api(app.server_app, rag, host=host)
        if warning := check_bind(host, rag.settings.api_key_value()):
            print(f"warning: {warning}", flush=True)
        print(f"serving the API at http://{host}:{port}/v1", flush=True)
    if block:
        app.block_thread()
    return app
