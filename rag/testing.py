"""Fast, deterministic stand-ins for the real models, for tests and examples:

    from rag import RAG
    from rag.testing import ExtractiveFakeGenerator, HashingEmbedder
    rag = RAG.open("tmp-index", embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())

They implement the same protocols as the real ones (:class:`rag.models.embedding.Embedder`,
:class:`rag.models.llama.Generator`), so everything around them is the real code.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from rag.answer.prompts import REFUSAL_MARKER, PromptMessages
from rag.models.llama import Message


class HashingEmbedder:
    """Deterministic bag-of-words embedder: no model, same text -> same vector."""

    def __init__(self, dim: int = 64, name: str = "hashing-test") -> None:
        self.name = name
        self.dim = dim

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text))

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dim] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        if progress:
            progress(len(texts))
        return out


class ExtractiveFakeGenerator:
    """A model that answers with the source sentence sharing the most words with the question,
    cited, and says the refusal marker when nothing overlaps; a follow-up is "rewritten" to
    itself. It reads the structured request the prompts carry (:class:`rag.answer.prompts.PromptMessages`),
    never the prompt's wording, so editing a template cannot change what it does. ``calls``
    keeps every request, for tests to inspect."""

    name = "extractive-fake"

    def __init__(self) -> None:
        self.calls: list[PromptMessages] = []

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        if not isinstance(messages, PromptMessages):
            raise TypeError("ExtractiveFakeGenerator answers prompts built by rag.answer.prompts.Prompts (PromptMessages)")
        self.calls.append(messages)
        if messages.kind == "condense":
            yield messages.question
            return
        q_words = {w for w in re.findall(r"\w+", messages.question.lower()) if len(w) > 3}
        best, best_score = None, 0
        for n, text in enumerate(messages.sources, start=1):
            for sentence in re.split(r"(?<=[.!?])\s+", text):
                score = len(q_words & set(re.findall(r"\w+", sentence.lower())))
                if score > best_score:
                    best, best_score = f"{sentence.strip()} [{n}]", score
        text = best if best else REFUSAL_MARKER
        for word in re.findall(r"\S+\s*", text):
            if cancel is not None and cancel.is_set():
                return
            yield word
