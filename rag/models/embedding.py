"""Embedders: a small protocol, the sentence-transformers implementation, and a fake for tests."""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from rag.settings import Settings

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


Backend = Literal["torch", "int8"]
# A query or a few sentences run on one thread: they gain nothing from splitting the work, and
# two torch threads stall each other whenever llama.cpp (or another user) holds the other core
# (measured 5x slower per query on 2 busy cores).
SMALL_INPUT = 16
BACKENDS: tuple[Backend, ...] = ("torch", "int8")


def _quantize_int8(model: Any) -> None:
    """Dynamic int8 quantization of the transformer's Linear layers, in place: about 1.5-2x
    faster on CPU (see benchmarks/README.md for its Hits@10 on the dev set)."""
    import torch

    module = model[0]
    quantize = getattr(torch.ao.quantization, "quantize_dynamic")
    with warnings.catch_warnings():  # torch suggests torchao, which is not installed
        warnings.simplefilter("ignore")
        module.model = quantize(module.model, {torch.nn.Linear}, dtype=torch.qint8)


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, on the CPU, kept loaded.

    ``backend`` is ``torch`` (the default) or ``int8`` (dynamically quantized). The torch backend
    computes in bfloat16 where the CPU does bf16 natively (AVX512-BF16/AMX; ``RAG_EMBED_DTYPE``
    overrides): 1.75x faster here, and its vectors match float32's to cosine 0.99995, so an
    index built either way is searched either way."""

    def __init__(self, name: str, folder: str, batch_size: int = 32, backend: Backend = "torch") -> None:
        from sentence_transformers import SentenceTransformer

        if backend not in BACKENDS:
            raise ValueError(f"unknown embedder backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        # The backend is part of the name, so an index records it and is not silently searched
        # with the other backend's (slightly different) vectors.
        self.name = name if backend == "torch" else f"{name}+{backend}"
        self.batch_size = batch_size
        self.backend = backend
        self.threads = Settings().embed_threads or os.cpu_count() or 1
        self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self.dtype = "float32"
        if backend == "int8":
            _quantize_int8(self._model)
        elif _use_bf16():
            import torch

            self._model.to(torch.bfloat16)
            self.dtype = "bfloat16"
        self._tokenizer = self._model.tokenizer
        self._lock = threading.Lock()  # the torch module is shared by UI users
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ValueError(f"embedder {name} does not declare its dimension")
        self.dim = int(dim)

    def count_tokens(self, text: str) -> int:
        # The fast tokenizer's truncation/padding state is shared with encode(): unlocked, a
        # concurrent user's count could corrupt an embedding batch (seen under load).
        with self._lock:
            return len(self._tokenizer.tokenize(text))

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting all texts by length keeps each batch's padding small: a batch costs as much
        # as its longest text. Measured 2.3x faster than batches taken in document order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            with self._lock, _inference_mode(), _torch_threads(1 if len(texts) <= SMALL_INPUT else self.threads):
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
        if self.dtype != "float32":  # normalised in bf16: renormalise at full precision
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


class CachingEmbedder:
    """Remembers the vectors and token counts of recent texts (LRU, ``max_items``).

    Answering embeds the sentences of the retrieved passages for every question; in a chat the
    same articles come back turn after turn, and the question itself was just embedded for the
    search. Vectors are deterministic, so a cache hit is exact."""

    def __init__(self, inner: Embedder, max_items: int = 20_000) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.max_items = max_items
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._tokens: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()
            self._tokens.clear()

    def _remember(self, cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        cache[key] = value
        if len(cache) > self.max_items:
            cache.popitem(last=False)

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        with self._lock:
            cached = {t: self._vectors[t] for t in texts if t in self._vectors}
            for t in cached:
                self._vectors.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in cached))
        if missing:
            fresh = self.inner.embed(missing)
            with self._lock:
                for t, v in zip(missing, fresh):
                    cached[t] = v
                    self._remember(self._vectors, t, v)
        if progress:
            progress(len(texts))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([cached[t] for t in texts])

    def count_tokens(self, text: str) -> int:
        with self._lock:
            if (n := self._tokens.get(text)) is not None:
                self._tokens.move_to_end(text)
                return n
        n = self.inner.count_tokens(text)
        with self._lock:
            self._remember(self._tokens, text, n)
        return n


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


def _use_bf16() -> bool:
    """Settings.embed_dtype (``RAG_EMBED_DTYPE``): ``float32``, ``bfloat16``, or ``auto`` (bf16 when
    the CPU has it natively; emulated bf16 is slower than float32)."""
    choice = Settings().embed_dtype
    if choice != "auto":
        return choice == "bfloat16"
    try:
        flags = next((ln for ln in open("/proc/cpuinfo") if ln.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _inference_mode():  # type: ignore[no-untyped-def]
    import torch

    return torch.inference_mode()  # no autograd bookkeeping at all


def load_embedder(
    name_or_path: str, batch_size: int = 32, backend: Backend | None = None, cache_dir: Path | None = None
) -> Embedder:
    """The embedder for a bundled name or local folder. ``backend`` comes from the argument, a
    ``+int8`` suffix on the name (as an index records it), ``RAG_EMBED_BACKEND``, or is torch."""
    from rag.models.registry import resolve_embedder

    base, plus, suffix = name_or_path.rpartition("+")
    if plus and suffix in BACKENDS:
        name_or_path, backend = base, backend or suffix  # type: ignore[assignment]
    name, folder = resolve_embedder(name_or_path, cache_dir)
    chosen = backend or Settings().embed_backend
    return SentenceTransformerEmbedder(name, str(folder), batch_size=batch_size, backend=chosen)  # type: ignore[arg-type]
