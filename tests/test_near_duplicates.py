"""Near-duplicate lookup through the LSH bands stored in SQLite (rag.index.near_duplicates): the same
decisions as the in-memory datasketch LSH it replaced, and no memory per indexed article."""

from __future__ import annotations

import random
import sqlite3
import tracemalloc
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.documents.articles import Article
from rag.documents.chunking import Chunk, ChunkerSettings
from rag.documents.dedup import NUM_PERM, THRESHOLD, signature, similarity
from rag.index.near_duplicates import BANDS, ROWS, NearDuplicates, band_keys
from rag.index.store import DATABASE, ArticleUpdate, Store
from rag.ingest import driver as ingest
from rag.ingest.driver import commit_all
from rag.results import IngestReport

DIM = 8
_WORDS = [f"{a}{b}" for a in ("har", "vel", "tor", "mik", "sun", "dra", "pol", "ken")
          for b in ("bor", "dan", "ett", "ix", "om", "ul", "ar", "en")]


def _store(directory: Path) -> Store:
    return Store.open(directory, "near-dup-test", DIM, ChunkerSettings())


def _update(article: Article, sig: np.ndarray | None = None) -> ArticleUpdate:
    vector = np.zeros((1, DIM), dtype=np.float32)
    vector[0, sum(article.key.encode()) % DIM] = 1.0
    chunk = Chunk(article.id, 0, 0, len(article.text), article.text)
    return ArticleUpdate(article, [chunk], vector, minhash=signature(article.text) if sig is None else sig)


def _story(rng: random.Random, words: int = 120) -> list[str]:
    return [rng.choice(_WORDS) for _ in range(words)]


def _edited(rng: random.Random, story: list[str], edits: int) -> list[str]:
    """A wire copy: ``edits`` words replaced (0-3 keep it a copy, ~30 make it a different story)."""
    out = list(story)
    for _ in range(edits):
        out[rng.randrange(len(out))] = rng.choice(_WORDS)
    return out


def _corpus(seed: int) -> tuple[list[Article], list[Article]]:
    """Two runs of articles: stories, light copies, copies of copies, identical bodies under other
    titles (equal signatures: ties), heavy rewrites (no copies), and in the second run copies of
    first-run stories and changed versions of first-run ids."""
    rng = random.Random(seed)
    stories = [_story(rng) for _ in range(12)]

    def articles(run: str, n: int) -> list[Article]:
        out = []
        for i in range(n):
            base = rng.choice(stories)
            kind = rng.random()
            body = base if kind < 0.15 else _edited(rng, base, rng.choice([1, 2, 3, 4, 8, 30, 60]))
            if kind > 0.85:
                body = _story(rng)  # unrelated
            out.append(Article(title=f"{run} {i}", text=" ".join(body), key=f"id:{run}-{i}"))
        return out

    first = articles("a", 60)
    second = articles("b", 60)
    # changed versions of first-run articles (same id, new text), some early, some late
    for i in (3, 17, 40):
        second.insert(i, Article(title=f"a {i} updated", text=" ".join(_edited(rng, rng.choice(stories), 2)),
                                 key=f"id:a-{i}"))
    return first, second


# ---------------------------------------------------------------- the reference: the in-memory LSH


class _InMemoryNearDuplicates:
    """rag.documents.dedup.NearDuplicates as it was before the bands moved to SQLite, with one change:
    candidates are visited in descending id order, so of equally similar ones the smallest id
    wins (datasketch returns a set, whose order changes with PYTHONHASHSEED)."""

    def __init__(self) -> None:
        from datasketch import MinHashLSH

        self.lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
        self.signatures: dict[str, np.ndarray] = {}

    @staticmethod
    def _minhash(sig: np.ndarray):
        from datasketch import MinHash

        return MinHash(num_perm=NUM_PERM, seed=7, hashvalues=sig, scheme="affine32")

    def add(self, article_id: str, sig: np.ndarray) -> None:
        if article_id in self.signatures:
            self.lsh.remove(article_id)
        self.signatures[article_id] = sig
        self.lsh.insert(article_id, self._minhash(sig))

    def query(self, sig: np.ndarray) -> set[str]:
        return set(self.lsh.query(self._minhash(sig)))

    def find(self, sig: np.ndarray, exclude: str | None = None) -> str | None:
        best, best_sim = None, THRESHOLD
        for candidate in sorted(self.query(sig), reverse=True):
            if candidate == exclude:
                continue
            sim = similarity(sig, self.signatures[candidate])
            if sim >= best_sim:
                best, best_sim = candidate, sim
        return best


def _reference_commit_all(updates: Iterable[ArticleUpdate], store: Store, batch: int) -> dict[str, str]:
    """The old commit path: every stored signature loaded into memory, then marked batch by batch."""
    db = sqlite3.connect(store.directory / DATABASE)
    near = _InMemoryNearDuplicates()
    for aid, data in db.execute("SELECT id, minhash FROM articles WHERE minhash IS NOT NULL"):
        near.add(aid, np.frombuffer(data, dtype=np.uint64))
    db.close()
    marks: dict[str, str] = {}
    updates = list(updates)
    for start in range(0, len(updates), batch):
        out, roots = [], {}
        for u in updates[start : start + batch]:
            original = near.find(u.minhash, exclude=u.article.id)
            root = (roots.get(original) or store.duplicate_root(original)) if original else None
            roots[u.article.id] = root or u.article.id
            out.append(replace(u, duplicate_of=root))
            near.add(u.article.id, u.minhash)
        store.commit(out)
        marks.update({u.article.id: u.duplicate_of for u in out if u.duplicate_of})
    return marks


def _duplicate_of(store: Store) -> dict[str, str | None]:
    return {a.id: a.duplicate_of for a in store.articles()}


# ---------------------------------------------------------------- same decisions


def test_banding_is_datasketchs():
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    assert (lsh.b, lsh.r) == (BANDS, ROWS)
    assert [b for b, _ in band_keys(signature("a short text of several words"))] == list(range(BANDS))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_decisions_match_the_in_memory_lsh(tmp_path: Path, monkeypatch, seed: int):
    monkeypatch.setattr(ingest, "COMMIT_BATCH", 7)  # copies within a batch and across batches
    first, second = _corpus(seed)
    new, old = _store(tmp_path / "new"), _store(tmp_path / "old")
    reports = []
    for run in (first, second):
        report = IngestReport()
        commit_all([_update(a) for a in run], new, report, set())
        reports.append(report.near_duplicates)
        assert _reference_commit_all([_update(a) for a in run], old, batch=7) == report.near_duplicates
        assert _duplicate_of(new) == _duplicate_of(old)
    assert len(reports[0]) >= 20 and len(reports[1]) >= 20, reports  # the corpus does have copies
    assert len(set(reports[1].values())) >= 5

    # The candidates themselves are the LSH's, for every indexed signature (and the ties exist).
    reference = _InMemoryNearDuplicates()
    db = sqlite3.connect(tmp_path / "new" / DATABASE)
    stored = {aid: np.frombuffer(data, dtype=np.uint64) for aid, data in db.execute("SELECT id, minhash FROM articles")}
    db.close()
    for aid, sig in stored.items():
        reference.add(aid, sig)
    finder = NearDuplicates(new)
    for sig in stored.values():
        assert set(finder.candidates(sig)) == reference.query(sig)
    assert len({s.tobytes() for s in stored.values()}) < len(stored)  # equal signatures: ties were decided
    new.close()
    old.close()


def test_an_article_marked_in_this_batch_shadows_its_stored_version(tmp_path: Path):
    rng = random.Random(5)
    story, other = _story(rng), _story(rng)
    store = _store(tmp_path / "i")
    store.commit([_update(Article(title="x", text=" ".join(story), key="id:x"))])
    finder = NearDuplicates(store)
    x = store.articles()[0].id
    assert finder.find(signature(" ".join(_edited(rng, story, 2)))) == x
    finder.add(x, signature(" ".join(other)))  # x changed to another story, not yet committed
    assert finder.find(signature(" ".join(_edited(rng, story, 2)))) is None
    assert finder.find(signature(" ".join(_edited(rng, other, 2)))) == x
    assert finder.find(signature(" ".join(_edited(rng, other, 2))), exclude=x) is None
    store.close()


# ---------------------------------------------------------------- memory


def _random_updates(rng: np.random.Generator, start: int, n: int) -> list[ArticleUpdate]:
    out = []
    for i in range(start, start + n):
        a = Article(title=f"t{i}", text=f"article number {i}", key=f"id:{i}")
        out.append(_update(a, rng.integers(0, 2**32, NUM_PERM, dtype=np.uint64)))
    return out


def _commit_peak(directory: Path, indexed: int, added: int) -> int:
    """Python heap peak (tracemalloc) of committing ``added`` articles into an index of ``indexed``."""
    rng = np.random.default_rng(indexed)
    store = _store(directory)
    for start in range(0, indexed, 1000):
        store.commit(_random_updates(rng, start, min(1000, indexed - start)))
    todo = _random_updates(rng, indexed, added)
    commit_all(_random_updates(rng, 10**6, 1), store, IngestReport(), set())  # first-use imports and caches
    tracemalloc.start()
    try:
        commit_all(todo, store, IngestReport(), set())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        store.close()


def test_commit_path_holds_no_memory_per_indexed_article(tmp_path: Path, monkeypatch):
    """The old path loaded every stored signature into an in-memory LSH (~9 KB per indexed
    article: +27 MB here); now the peak does not depend on how many articles are indexed."""
    assert not hasattr(Store, "signatures")
    monkeypatch.setattr(ingest, "COMMIT_BATCH", 64)
    small = _commit_peak(tmp_path / "small", 300, 200)
    large = _commit_peak(tmp_path / "large", 3300, 200)
    # A fifth of the 3 MB the 3,000 extra signatures alone take, let alone an LSH of them.
    assert large - small < 3000 * NUM_PERM * 8 / 5, f"{small / 1e6:.2f} MB vs {large / 1e6:.2f} MB"


def test_marking_reads_bands_not_every_signature(tmp_path: Path):
    store = _store(tmp_path / "i")
    store.commit(_random_updates(np.random.default_rng(0), 0, 500))
    seen: list[Sequence[tuple[int, int]]] = []
    real = store.band_matches
    store.band_matches = lambda keys: seen.append(keys) or real(keys)  # type: ignore[method-assign]
    commit_all(_random_updates(np.random.default_rng(1), 500, 10), store, IngestReport(), set())
    assert len(seen) == 10 and all(len(k) == BANDS for k in seen)
    store.close()
