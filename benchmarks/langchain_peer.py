"""The peer: the equivalent LangChain pipeline over the same models, built the usual way.

HuggingFaceEmbeddings over the same MiniLM folder (normalised, like ours), LangChain's FAISS
vector store, and LlamaCpp over the same GGUF with the same context, threads, batch size and
sampling settings as ours (LangChain's defaults, n_batch=8 and n_ctx=512, would make it much
slower at reading a prompt: that would not be a fair race). The prompt is the classic "stuff"
chain: our system prompt, then the top-k chunks as numbered sources and the question.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def hf_embeddings() -> Any:
    from langchain_community.embeddings import HuggingFaceEmbeddings

    from rag.models.registry import resolve_embedder

    _, folder = resolve_embedder("all-MiniLM-L6-v2")
    with warnings.catch_warnings():  # deprecated in favour of langchain-huggingface (not installable here)
        warnings.simplefilter("ignore")
        return HuggingFaceEmbeddings(model_name=str(folder), model_kwargs={"device": "cpu"},
                                     encode_kwargs={"normalize_embeddings": True})


def llamacpp(path: Path, n_ctx: int, n_threads: int, max_tokens: int, temperature: float, seed: int) -> Any:
    from langchain_community.llms import LlamaCpp

    return LlamaCpp(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, n_batch=512, max_tokens=max_tokens,
                    temperature=temperature, top_p=0.9, repeat_penalty=1.05, seed=seed, verbose=False, streaming=True)


def chat_prompt(llm: Any, messages: list[dict[str, str]]) -> str:
    """``messages`` rendered with the GGUF's own chat template (LlamaCpp takes a plain prompt)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    client = llm.client
    template = client.metadata["tokenizer.chat_template"]
    eos = client.detokenize([client.token_eos()]).decode("utf-8", "ignore")
    bos = client.detokenize([client.token_bos()]).decode("utf-8", "ignore")
    return Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)(messages=messages).prompt


def stuff_messages(system: str, question: str, docs: list[Any]) -> list[dict[str, str]]:
    sources = "\n".join(f"[{i}] {' '.join(d.page_content.split())}" for i, d in enumerate(docs, start=1))
    user = f"Question: {question}\n\nSources (quoted article text):\n{sources}\nEnd of sources.\n\nQuestion: {question}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
