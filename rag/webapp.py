"""The browser chat (Gradio) over :class:`rag.RAG`. No retrieval or prompt logic lives here."""

from __future__ import annotations

import html
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

from .api import RAG
from .config import Settings
from .results import Answer

EXAMPLES = [
    "Where was Lavrov speaking?",
    "What did Türkiye propose for the Israel-Palestine conflict?",
    "How many days of national mourning did Türkiye declare?",
]
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def md_escape(text: str) -> str:
    """Show article text literally: no HTML, no markdown tricks."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def render_answer(answer: Answer) -> str:
    """The final answer as Markdown: checked text, then the cited sources with their quotes."""
    lines = [md_escape(answer.text).replace("\\[", "[").replace("\\]", "]")]
    if answer.citations:
        lines.append("\n**Sources**")
        for c in answer.citations:
            lines.append(f"- **[{c.n}]** {md_escape(c.article.label())}: “{md_escape(c.quote)}”")
    if answer.standalone_question:
        lines.append(f"\n<details><summary>Searched for</summary>{md_escape(answer.standalone_question)}</details>")
    return "\n".join(lines)


def _pairs(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    user = None
    for msg in history:
        content = msg.get("content")
        text = content if isinstance(content, str) else ""
        if msg.get("role") == "user":
            user = text
        elif msg.get("role") == "assistant" and user is not None:
            pairs.append((user, re.sub(r"\n\*\*Sources\*\*.*", "", text, flags=re.S)))
            user = None
    return pairs


def build_app(rag: RAG):  # type: ignore[no-untyped-def]
    import gradio as gr

    def respond(message: str, history: list[dict[str, Any]]) -> Iterator[str]:
        partial = ""
        for event in rag.stream(message, history=_pairs(history)):
            if isinstance(event, Answer):
                yield render_answer(event)
            else:
                partial += event
                yield md_escape(partial)

    with gr.Blocks(title="News RAG") as app:
        gr.Markdown("## Ask the news\nAnswers come only from the indexed articles and cite them as [n].")
        gr.ChatInterface(
            respond,
            examples=EXAMPLES,
            cache_examples=False,
            chatbot=gr.Chatbot(height=520, sanitize_html=True, placeholder="Ask about the indexed articles."),
            concurrency_limit=4,
            api_name="chat",
        )
    return app


def launch(settings: Settings | None = None, host: str | None = None, port: int | None = None) -> None:
    """Open the index, start loading the model in the background, and serve the chat."""
    rag = RAG.open(settings=settings)
    info = rag.info()
    threading.Thread(target=lambda: getattr(rag.generator, "load", lambda: None)(), daemon=True).start()
    app = build_app(rag)
    host = host or os.environ.get("RAG_HOST", "127.0.0.1")
    port = port or int(os.environ.get("RAG_PORT", "7860"))
    print(f"index {info.directory}: {info.articles} articles, {info.chunks} chunks; LLM {info.llm} loading in the background")
    auth = None
    if os.environ.get("RAG_USERNAME") and os.environ.get("RAG_PASSWORD"):
        auth = (os.environ["RAG_USERNAME"], os.environ["RAG_PASSWORD"])
    app.queue(default_concurrency_limit=4).launch(server_name=host, server_port=port, auth=auth, show_error=True)
