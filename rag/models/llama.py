"""Text generators behind one small interface: llama.cpp in process (the remote one is in
rag.models.remote, the fake for tests in rag.testing).

One loaded llama.cpp model serves every caller; a lock serialises access to it, because a
``Llama`` object keeps one KV cache and is not safe to use from two threads at once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

Message = dict[str, str]


@contextmanager
def _held(lock: threading.Lock) -> Iterator[None]:
    """Release an already acquired ``lock`` on leaving the block."""
    try:
        yield
    finally:
        lock.release()


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
        self._cancel: threading.Event | None = None  # the running stream's, read by llama.cpp's abort check

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
                    self._watch_cancel(self._llm)
        return self._llm

    def _watch_cancel(self, llm) -> None:  # type: ignore[no-untyped-def]
        """Let ``cancel`` interrupt llama.cpp inside a decode, not only between tokens: reading a
        long prompt is one call of seconds, and a Stop then must not hold the model until it ends."""
        import llama_cpp

        def aborted(_data: object) -> bool:
            event = self._cancel
            return event is not None and event.is_set()

        self._abort = llama_cpp.ggml_abort_callback(aborted)  # kept referenced: ctypes must not free it
        self._no_abort = llama_cpp.ggml_abort_callback()  # a NULL function pointer: no check
        self._abort_on(llm, True)

    def _abort_on(self, llm, on: bool) -> None:  # type: ignore[no-untyped-def]
        """Install the abort check for the prompt only: ggml calls it once per graph node, so on each
        generated token (one short decode, with a cancel check between tokens anyway) it would cost a
        Python callback per node for nothing."""
        import llama_cpp

        llama_cpp.llama_set_abort_callback(llm._ctx.ctx, self._abort if on else self._no_abort, None)

    def warm(self, messages: Sequence[Message]) -> None:
        """Evaluate the fixed start of every prompt (the system message) once, so even the first
        question skips it: llama-cpp-python keeps the KV cache of the longest token prefix a new
        prompt shares with the last one, which is why the system prompt comes first and never varies."""
        llm = self.load()
        with self._lock:
            llm.create_chat_completion(messages=list(messages), max_tokens=1, temperature=0.0)

    def count_tokens(self, text: str) -> int:
        llm = self.load()
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        # Generate in the caller's thread: a producer thread handing pieces over a queue woke a
        # second thread per token, which on 2 cores stalled llama.cpp's spinning workers and cost
        # ~40% of tokens/s (benchmarks/answer_latency.py). The lock is a plain Lock, released by
        # closing the generator from any thread: a consumer that stops (Stop, a closed tab) closes
        # it, or sets ``cancel``, and the model is free at the next token.
        llm = self.load()
        # Waiting for another caller's answer: a Stop must not wait for it too.
        while not self._lock.acquire(timeout=0.1):
            if cancel is not None and cancel.is_set():
                return
        with _held(self._lock):
            if cancel is not None and cancel.is_set():
                return
            self._cancel = cancel
            self._abort_on(llm, True)
            chunks = llm.create_chat_completion(
                messages=list(messages), max_tokens=max_tokens, temperature=temperature,
                top_p=0.9, repeat_penalty=1.05, seed=self.seed, stream=True,
            )
            try:
                for n, chunk in enumerate(chunks):
                    if n == 0:  # the first chunk comes after the prompt is read: generation needs no abort check
                        self._abort_on(llm, False)
                    if cancel is not None and cancel.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
                    if piece:
                        yield piece
            except RuntimeError:
                if cancel is None or not cancel.is_set():
                    raise
                # llama_decode aborted by ``cancel`` mid-prompt; llama-cpp-python drops the partial cache.
            finally:
                self._cancel = None
                chunks.close()  # type: ignore[union-attr]
