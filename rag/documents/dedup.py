"""Near-duplicate articles (the same wire story republished with small edits), found with
MinHash signatures over word 5-grams (datasketch); the LSH lookup over stored signatures is
rag.index.near_duplicates."""

from __future__ import annotations

import re

import numpy as np

NUM_PERM = 128
THRESHOLD = 0.5  # Jaccard of 5-word shingles: lightly edited wire copies measured 0.6-0.7, unrelated stories ~0
_SEED = 7
_SCHEME = "affine32"  # stored signatures must be re-read with the scheme that made them


def shingles(text: str, n: int = 5) -> set[bytes]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < n:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


def signature(text: str) -> np.ndarray:
    """MinHash signature of ``text`` (uint64 array of NUM_PERM values)."""
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=_SEED, scheme=_SCHEME)
    m.update_batch(list(shingles(text)))
    return np.asarray(m.hashvalues, dtype=np.uint64)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.mean(a == b))
