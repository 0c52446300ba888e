"""Text generators behind one small interface: llama.cpp in process, and a fake for tests.

One loaded llama.cpp model serves every caller; a lock serialises access to it, because a
``Llama`` object keeps one KV cache and is not safe to use from two threads at once.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

Message = dict[str, str]
_END = object()


@runtime_checkable
class Generator(Protocol):
    name: str

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """Yield pieces of the assistant's reply as they are produced; stop early once ``cancel`` is set."""
        ...


class LlamaCppGenerator:
    """A GGUF model run by llama-cpp-python, loaded on first use (or by :meth:`load`)."""

    def __init__(self, name: str, path: Path, n_ctx: int = 4096, n_threads: int | None = None, seed: int = 0) -> None:
        self.name = name
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 2
        self.seed = seed
        self._llm = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def load(self):  # type: ignore[no-untyped-def]
        if self._llm is None:
            with self._lock:
                if self._llm is None:
                    from llama_cpp import Llama

                    self._llm = Llama(
                        model_path=str(self.path),
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        n_threads_batch=self.n_threads,
                        n_batch=512,
                        seed=self.seed,
                        verbose=False,
                    )
        return self._llm

    def count_tokens(self, text: str) -> int:
        llm = self.load()
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        # The model runs in its own thread and hands pieces over a queue, so the lock is held
        # only while generating: a consumer that stops reading (a closed browser tab, a Stop
        # button) ends the generation at the next token instead of holding the model forever.
        llm = self.load()
        pieces: queue.Queue[object] = queue.Queue()
        gone = threading.Event()

        def produce() -> None:
            try:
                with self._lock:
                    chunks = llm.create_chat_completion(
                        messages=list(messages), max_tokens=max_tokens, temperature=temperature,
                        top_p=0.9, repeat_penalty=1.05, seed=self.seed, stream=True,
                    )
                    for chunk in chunks:
                        if gone.is_set() or (cancel is not None and cancel.is_set()):
                            break
                        piece = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
                        if piece:
                            pieces.put(piece)
            except Exception as e:  # handed to the consumer
                pieces.put(e)
            finally:
                pieces.put(_END)

        threading.Thread(target=produce, daemon=True, name="llama-generate").start()
        try:
            while (item := pieces.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                yield str(item)
        finally:
            gone.set()


class ExtractiveFakeGenerator:
    """Deterministic stand-in for tests: answers with the source sentence that shares the most
    words with the question, cited; says the refusal marker when nothing overlaps."""

    name = "extractive-fake"

    def __init__(self) -> None:
        self.calls: list[list[Message]] = []

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        self.calls.append(list(messages))
        content = messages[-1]["content"]
        if content.startswith("Rewrite the last question"):
            yield content.rsplit("Last question:", 1)[1].split("\n")[0].strip()
            return
        question = content.rsplit("Question:", 1)[1].split("\n")[0]
        q_words = {w for w in re.findall(r"\w+", question.lower()) if len(w) > 3}
        best, best_score = None, 0
        for m in re.finditer(r"^\[(\d+)\] (.*)$", content, re.M):
            for sentence in re.split(r"(?<=[.!?])\s+", m.group(2)):
                score = len(q_words & set(re.findall(r"\w+", sentence.lower())))
                if score > best_score:
                    best, best_score = f"{sentence.strip()} [{m.group(1)}]", score
        text = best if best else "NOT IN SOURCES"
        for word in re.findall(r"\S+\s*", text):
            if cancel is not None and cancel.is_set():
                return
            yield word
