"""Which FAISS index holds the vectors, by size: exact below a threshold, IVF above it.

Both kinds are keyed by chunk id, support removal (chunks are replaced and deleted) and an id
allow-list (date filters). HNSW is not offered: it cannot remove ids. The IVF index keeps the
vectors uncompressed (IVF-Flat), so the only loss is from the lists it does not visit; ``nprobe``
is set so measured recall@10 against exact search stays >= 0.95 (tests/test_vector_index.py,
benchmarks/search.py). A file is memory-mapped on load: opening a large index costs no copy,
and a mapped index is read-only, so :func:`writable` reloads it before any change.
"""

from __future__ import annotations

import math
import weakref
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

Kind = Literal["exact", "ivf"]
MIN_NPROBE = 16
NPROBE_FRACTION = 0.25  # lists visited per query: recall@10 >= 0.95 at 1M (0.88 at 4%), benchmarks/README.md
RETRAIN_GROWTH = 4  # an IVF is rebuilt once it holds 4x what its list count suits
_MAPPED: weakref.WeakSet[faiss.Index] = weakref.WeakSet()  # faiss objects take no new attributes


def ann_threshold() -> int:
    """Settings.ann_threshold (``RAG_ANN_THRESHOLD``): chunk count from which the approximate index is used."""
    from rag.settings import Settings

    return Settings().ann_threshold


def kind_for(count: int, threshold: int | None = None) -> Kind:
    return "ivf" if count >= (ann_threshold() if threshold is None else threshold) else "exact"


def kind_of(index: faiss.Index) -> Kind:
    return "ivf" if isinstance(faiss.try_extract_index_ivf(index), faiss.IndexIVF) else "exact"


def nlist_for(count: int) -> int:
    """About sqrt(n) lists: training stays a few seconds at 1M vectors on 2 cores."""
    return max(16, int(math.sqrt(max(count, 1))))


def nprobe_for(nlist: int) -> int:
    return min(nlist, max(MIN_NPROBE, math.ceil(nlist * NPROBE_FRACTION)))


def new_exact(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def build(vectors: np.ndarray, ids: np.ndarray, threshold: int | None = None) -> faiss.Index:
    """An index of the right kind for ``len(vectors)`` L2-normalised vectors, filled."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    dim = vectors.shape[1]
    if kind_for(len(vectors), threshold) == "exact":
        index = new_exact(dim)
    else:
        nlist = nlist_for(len(vectors))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        # k-means over a sample: faiss would use at most 256 points per list anyway.
        sample = vectors
        if len(vectors) > 64 * nlist:
            pick = np.random.default_rng(0).choice(len(vectors), 64 * nlist, replace=False)
            sample = vectors[np.sort(pick)]
        index.cp.min_points_per_centroid = 1  # small samples are fine; silence the warning
        index.train(sample)
        index.nprobe = nprobe_for(nlist)
    for start in range(0, len(vectors), 65_536):
        index.add_with_ids(vectors[start : start + 65_536], ids[start : start + 65_536])
    return index


def needs_rebuild(index: faiss.Index, threshold: int | None = None) -> bool:
    """True when the index no longer suits its size: it crossed the threshold (with some
    hysteresis going down, so a few removals do not flip it back and forth), or an IVF grew
    well past the size it was trained for."""
    n = index.ntotal
    limit = ann_threshold() if threshold is None else threshold
    if kind_of(index) == "exact":
        return n >= limit
    ivf = faiss.extract_index_ivf(index)
    return n < limit // 2 or n > RETRAIN_GROWTH * max(ivf.nlist**2, 1)


def contents(index: faiss.Index, with_vectors: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(chunk ids, their vectors) held by either kind, in storage order; the vectors are None
    when not asked for or when the index does not keep them exactly (only Flat storage does)."""
    if kind_of(index) == "exact":
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        if not with_vectors:
            return ids, None
        inner = faiss.downcast_index(index.index)
        return ids, (inner.reconstruct_n(0, inner.ntotal) if isinstance(inner, faiss.IndexFlat) else None)
    ivf = faiss.extract_index_ivf(index)
    lists, flat = ivf.invlists, isinstance(faiss.downcast_index(ivf), faiss.IndexIVFFlat)
    ids_of, vecs_of = [], []
    for n in range(ivf.nlist):
        size = lists.list_size(n)
        if size:
            ids_of.append(faiss.rev_swig_ptr(lists.get_ids(n), size).copy())
            if with_vectors and flat:  # IVF-Flat stores each vector's float32 bytes as its code
                codes = faiss.rev_swig_ptr(lists.get_codes(n), size * lists.code_size)
                vecs_of.append(np.frombuffer(codes.copy(), dtype=np.float32).reshape(size, ivf.d))
    ids = np.concatenate(ids_of).astype(np.int64) if ids_of else np.zeros(0, dtype=np.int64)
    if not (with_vectors and flat):
        return ids, None
    return ids, np.concatenate(vecs_of) if vecs_of else np.zeros((0, ivf.d), dtype=np.float32)


def search(
    index: faiss.Index, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the ``k`` nearest vectors, only among ``allowed`` ids when given.

    With an allow-list, an IVF visits more lists, in proportion to how few ids are allowed,
    so about as many allowed candidates are scanned as without a filter (and recall holds)."""
    queries = np.ascontiguousarray(queries.reshape(-1, index.d), dtype=np.float32)
    k = max(1, min(k, index.ntotal))
    sel = faiss.IDSelectorBatch(allowed) if allowed is not None else None
    if kind_of(index) == "ivf":
        ivf = faiss.extract_index_ivf(index)
        nprobe = ivf.nprobe or nprobe_for(ivf.nlist)
        if allowed is not None and index.ntotal:
            share = max(len(allowed) / index.ntotal, 1e-9)
            nprobe = min(ivf.nlist, math.ceil(nprobe / share))
        params: faiss.SearchParameters = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)
    else:
        params = faiss.SearchParameters(sel=sel) if sel is not None else None
    scores, ids = index.search(queries, k, params=params)
    return scores, ids


def save(index: faiss.Index, path: Path) -> None:
    """Write ``index`` to ``path`` (the caller renames it into place)."""
    faiss.write_index(index, str(path))


def load(path: Path, mmap: bool = True) -> faiss.Index:
    """Read an index; memory-mapped (read-only) by default, so a large index opens at once."""
    if not mmap:
        index = faiss.read_index(str(path))
    else:
        with path.open("rb") as f:
            ivf_file = f.read(2) == b"Iw"  # the fourcc of every IVF index type
        # IVF: inverted lists mapped; exact: the flat codes mapped in place.
        flags = faiss.IO_FLAG_MMAP if ivf_file else faiss.IO_FLAG_MMAP_IFC
        index = faiss.read_index(str(path), flags | faiss.IO_FLAG_READ_ONLY)
    if kind_of(index) == "ivf":
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = nprobe_for(ivf.nlist)
    if mmap:
        _MAPPED.add(index)
    return index


def is_mapped(index: faiss.Index) -> bool:
    return index in _MAPPED


def writable(index: faiss.Index, path: Path) -> faiss.Index:
    """``index`` itself, or a private in-memory copy read from ``path`` when it is memory-mapped
    (writing into a read-only mapping would crash the process)."""
    if not is_mapped(index):
        return index
    return load(path, mmap=False)
