"""Embedders: a small protocol, the sentence-transformers implementation, and a fake for tests."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

# Nothing may be fetched from a model hub: every model comes from a local folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (so inner product = cosine)."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, on the CPU."""

    def __init__(self, name: str, folder: str, batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self._tokenizer = self._model.tokenizer
        self._lock = threading.Lock()  # the torch module is shared by UI users
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ValueError(f"embedder {name} does not declare its dimension")
        self.dim = int(dim)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.tokenize(text))

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps each batch's padding small.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            with self._lock:
                vecs = self._model.encode(
                    [texts[i] for i in idx],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            out[idx] = vecs
            if progress:
                progress(len(idx))
        return out


class HashingEmbedder:
    """Deterministic bag-of-words embedder for fast unit tests: no model, same text → same vector."""

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


def load_embedder(name_or_path: str, batch_size: int = 32) -> Embedder:
    from .models import resolve_embedder

    name, folder = resolve_embedder(name_or_path)
    return SentenceTransformerEmbedder(name, str(folder), batch_size=batch_size)
