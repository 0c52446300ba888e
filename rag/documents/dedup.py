"""Near-duplicate articles (the same wire story republished with small edits), found with
MinHash signatures over word 5-grams (datasketch); the LSH lookup over stored signatures is
rag.index.near_duplicates."""

from __future__ import annotations

import re
from itertools import islice

import numpy as np

NUM_PERM = 128
THRESHOLD = 0.5  # Jaccard of 5-word shingles: lightly edited wire copies measured 0.6-0.7, unrelated stories ~0
_SEED = 7
_SCHEME = "affine32"  # stored signatures must be re-read with the scheme that made them
# Shingles hashed per call: datasketch builds a shingles x NUM_PERM uint64 matrix per call, so one
# call over a 130 KB article held 27 MB (a 1 MB one, 200 MB); the minimum over slices is the same.
SHINGLE_BATCH = 2048


def shingles(text: str, n: int = 5) -> set[bytes]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < n:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


def signature(text: str) -> np.ndarray:
    """MinHash signature of ``text`` (uint64 array of NUM_PERM values)."""
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=_SEED, scheme=_SCHEME)
    todo = iter(shingles(text))
    while batch := list(islice(todo, SHINGLE_BATCH)):
        m.update_batch(batch)
    return np.asarray(m.hashvalues, dtype=np.uint64)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.mean(a == b))
