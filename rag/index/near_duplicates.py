"""Which indexed article is this one a copy of? The LSH index of the MinHash signatures
(``rag.documents.dedup``) kept in the index's SQLite (table ``minhash_bands``), so an ingest holds only the
articles of the batch it is marking, not every article indexed: the in-memory datasketch LSH it
replaces held 7.8 KB per indexed article (tracemalloc), plus the 1 KB signature read to fill it,
loaded again at the start of every ingest.

The banding is datasketch's ``MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)``: ``BANDS``
bands of ``ROWS`` signature values; two articles are candidates when any band is equal, and a
candidate is a copy when its estimated Jaccard similarity reaches the threshold. The most similar
wins; of equally similar ones, the smallest id (datasketch's set order left that to chance). A
band is stored as a 64-bit hash of its values, and a candidate is kept only if a band is really
equal, so a hash collision cannot change a decision.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from rag.documents.dedup import THRESHOLD, similarity

if TYPE_CHECKING:
    from rag.index.store import Store

# datasketch's _optimal_param(THRESHOLD, NUM_PERM, 0.5, 0.5); tests/test_near_duplicates.py
# checks they still agree (BANDS * ROWS = 125: the last 3 of the 128 values are in no band).
BANDS = 25
ROWS = 5


def _bands(sig: np.ndarray) -> np.ndarray:
    """The signature's bands, one row each (BANDS x ROWS)."""
    return np.asarray(sig, dtype=np.uint64)[: BANDS * ROWS].reshape(BANDS, ROWS)


def band_keys(sig: np.ndarray) -> list[tuple[int, int]]:
    """(band number, key) of each band of ``sig``: the rows of ``minhash_bands`` for one article."""
    out = []
    for band, values in enumerate(_bands(sig)):
        digest = hashlib.blake2b(values.astype("<u8").tobytes(), digest_size=8, person=b"rag-lsh").digest()
        out.append((band, int.from_bytes(digest, "little", signed=True)))  # SQLite INTEGER is signed
    return out


def shares_band(a: np.ndarray, b: np.ndarray) -> bool:
    """True when the LSH makes ``a`` and ``b`` candidates: some band is equal in both."""
    return bool((_bands(a) == _bands(b)).all(axis=1).any())


class NearDuplicates:
    """The copy-finder of one ingest: the indexed articles through ``store``'s band table, plus
    the articles :meth:`add`-ed since the last :meth:`committed` (marked but not yet written;
    one of them shadows an indexed article with its id, as the new text replaces the old)."""

    def __init__(self, store: Store, threshold: float = THRESHOLD) -> None:
        self.store = store
        self.threshold = threshold
        self._pending: dict[str, np.ndarray] = {}
        self._pending_keys: dict[tuple[int, int], set[str]] = {}

    def add(self, article_id: str, sig: np.ndarray) -> None:
        self._pending[article_id] = sig
        for key in band_keys(sig):
            self._pending_keys.setdefault(key, set()).add(article_id)

    def committed(self) -> None:
        """The pending articles are in the store now: forget them."""
        self._pending.clear()
        self._pending_keys.clear()

    def candidates(self, sig: np.ndarray) -> dict[str, np.ndarray]:
        """Every article sharing a band with ``sig`` (what ``MinHashLSH.query`` returns), with its signature."""
        keys = band_keys(sig)
        found = {aid: s for aid, s in self.store.band_matches(keys) if aid not in self._pending}
        found.update((aid, self._pending[aid]) for key in keys for aid in self._pending_keys.get(key, ()))
        return {aid: s for aid, s in found.items() if shares_band(sig, s)}  # a key collision is no candidate

    def find(self, sig: np.ndarray, exclude: str | None = None) -> str | None:
        """The most similar article at or above the threshold, if any (the smallest id of equals)."""
        best, best_sim = None, self.threshold
        for candidate, other in sorted(self.candidates(sig).items()):
            if candidate == exclude:
                continue
            sim = similarity(sig, other)
            if sim > best_sim or (sim == best_sim and best is None):
                best, best_sim = candidate, sim
        return best
