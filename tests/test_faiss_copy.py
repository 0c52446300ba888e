"""The FAISS file is rewritten on a geometric schedule, not at every commit (issue #13: a long
ingest rewrote the whole, growing file after each batch, quadratic I/O), and a copy that is
behind the database is caught up from SQLite on open: after a SIGKILL between commits, after
removed and replaced articles, on a read-only index, in IVF as in exact indexes, and after
`rag check --repair` re-embedded a vector in place. `rag check` accepts a copy that is only
behind and still catches one whose vectors differ from SQLite's."""

from __future__ import annotations

import shutil
import signal
import sqlite3
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag import RAG, Settings, check_index
from rag.index import vectors as vector_index
from rag.index.files import write_digest
from rag.ingest import driver
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .conftest import DATA
from .index_helpers import Mounts, chunks_by_article, start_worker, write_articles

QUERIES = ["harbour council report", "storm ferry", "glacier tram election", "vaccine hospital budget", "canal lighthouse"]


def _open(index: Path, embedder=None) -> RAG:
    return RAG.open(settings=Settings(index_dir=index, seeds_dir=None), embedder=embedder or HashingEmbedder(),
                    llm=ExtractiveFakeGenerator(), seed=False)


def _dense(rag: RAG, queries: list[str] = QUERIES, k: int = 10) -> list[list[tuple[int, float]]]:
    return [[(h.chunk_id, h.score) for h in rag.search(q, k=k, mode="dense")] for q in queries]


def _rebuilt(index: Path, tmp_path: Path, embedder=None) -> list[list[tuple[int, float]]]:
    """What a fresh rebuild from SQLite answers: a copy of the index without its FAISS files."""
    fresh = tmp_path / "rebuilt"
    shutil.copytree(index, fresh)
    for f in fresh.glob("vectors.*"):
        f.unlink()
    rag = _open(fresh, embedder)
    try:
        return _dense(rag)
    finally:
        rag.close()


def _copy_generation(index: Path) -> int:
    [copy] = index.glob("vectors.*.faiss")
    return int(copy.name.split(".")[1])


def _stored(index: Path) -> dict[int, bytes]:
    db = sqlite3.connect(index / "store.sqlite")
    try:
        return {i: v for i, v in db.execute("SELECT id, vector FROM chunks")}
    finally:
        db.close()


def _held(rag: RAG) -> dict[int, bytes]:
    """The chunk ids and vectors the opened index searches, as stored bytes."""
    assert rag.store._index is not None
    ids, vectors = vector_index.contents(rag.store._index)
    assert vectors is not None
    return {int(i): v.tobytes() for i, v in zip(ids, vectors, strict=True)}


def _killed_between_commits(index: Path, path: Path, commits: int, batch: int = 4, remove: tuple[str, ...] = ()) -> None:
    """An ingest (after removing ``remove``) in another process, SIGKILLed right after its N-th commit."""
    worker = start_worker(index, path, batch=batch, die_at=f"between-commits:{commits}", remove=remove)
    _out, err = worker.communicate(timeout=300)
    assert worker.returncode == -signal.SIGKILL, err


# ---------------------------------------------------------------- linear writes


def test_bytes_written_to_faiss_files_stay_linear_over_sixty_commits(tmp_path: Path, monkeypatch):
    written: list[int] = []
    real_write = faiss.write_index

    def counting(index, path):  # type: ignore[no-untyped-def]
        real_write(index, path)
        written.append(Path(path).stat().st_size)

    monkeypatch.setattr(faiss, "write_index", counting)
    monkeypatch.setattr(driver, "COMMIT_BATCH", 2)
    path = write_articles(tmp_path / "articles.jsonl", 120, "linear", sentences=4)  # one chunk each
    index = tmp_path / "index"
    rag = _open(index)
    rag.add([path])
    assert rag.store.generation == 60
    rag.close()
    final = (index / f"vectors.{_copy_generation(index)}.faiss").stat().st_size
    assert _copy_generation(index) == 60  # closing wrote what the last commits changed
    # Every commit rewriting the file wrote ~30x the final file (the sum of 60 growing files);
    # a geometric schedule writes a few times it, in a handful of writes.
    assert sum(written) < 4 * final, (sum(written), final, len(written))
    assert len(written) <= 12, written
    report = check_index(index)
    assert report.ok and report.problems == [], report.text()
    rag = _open(index)
    assert _dense(rag) == _rebuilt(index, tmp_path)
    rag.close()


# ---------------------------------------------------------------- a copy behind the database


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_sigkill_between_commits_reopen_answers_as_a_fresh_rebuild(tmp_path: Path, monkeypatch, kind: str):
    if kind == "ivf":  # the worker inherits it: the index is IVF from its first commit
        monkeypatch.setenv("RAG_ANN_THRESHOLD", "20")
    path = write_articles(tmp_path / "articles.jsonl", 48, "behind")
    index = tmp_path / "index"
    _killed_between_commits(index, path, commits=7)
    articles, _, n_chunks, _ = chunks_by_article(index)
    assert len(articles) == 28  # 7 whole batches of 4
    assert _copy_generation(index) < 7  # the file is behind what SQLite committed

    before = check_index(index)
    assert before.ok and before.problems == [], before.text()
    assert before.faiss_generation == _copy_generation(index) and before.generation == 7
    assert any("behind the database" in n for n in before.notes), before.text()

    rag = _open(index)  # another process than the one killed
    assert vector_index.kind_of(rag.store._index) == kind
    assert _held(rag) == _stored(index)  # exactly SQLite's chunks, with exactly its vectors
    # (An IVF this small has 16 lists and probes them all, so it too answers exactly.)
    assert _dense(rag) == _rebuilt(index, tmp_path)
    rag.close()
    assert check_index(index).ok

    worker = start_worker(index, path, batch=4)  # resuming completes it
    _out, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    assert len(chunks_by_article(index)[0]) == 48
    after = check_index(index)
    assert after.ok and after.problems == [] and after.faiss_generation == after.generation, after.text()


def test_removed_and_replaced_articles_are_caught_up_and_ids_are_never_reused(tmp_path: Path):
    first = write_articles(tmp_path / "v1.jsonl", 24, "ids")
    index = tmp_path / "index"
    worker = start_worker(index, first, batch=8)
    assert worker.communicate(timeout=300) and worker.returncode == 0  # closed: the file is current
    before = _stored(index)
    top = max(before)
    db = sqlite3.connect(index / "store.sqlite")
    [(newest, title)] = db.execute("SELECT a.id, a.title FROM chunks c JOIN articles a ON a.id = c.article_id "
                                   "WHERE c.id = ?", (top,)).fetchall()  # it holds the highest chunk id
    db.close()

    # The same ids, new text for four of them: replaced (their old chunks removed, new ones added);
    # the removed article is not in the file again.
    second = write_articles(tmp_path / "v2.jsonl", 24, "ids", seed=1)
    lines = first.read_text().splitlines()
    lines[:4] = second.read_text().splitlines()[:4]
    lines = [line for line in lines if f'"title": "{title}"' not in line]
    changed = tmp_path / "changed.jsonl"
    changed.write_text("\n".join(lines) + "\n")
    _killed_between_commits(index, changed, commits=2, batch=4, remove=(newest,))  # the removal, then one batch

    after = _stored(index)
    added = sorted(set(after) - set(before))
    assert added and min(added) > top  # AUTOINCREMENT: the removed article's ids are not handed out again
    assert set(before) - set(after)  # old chunks went
    assert _copy_generation(index) < check_index(index).generation  # the file is behind

    report = check_index(index)
    assert report.ok and report.problems == [], report.text()
    rag = _open(index)
    assert _held(rag) == after
    assert _dense(rag) == _rebuilt(index, tmp_path)
    assert newest not in {a.id for a in rag.articles()}
    rag.close()


@pytest.fixture
def mounts():
    m = Mounts()
    yield m
    m.close()


def test_read_only_index_with_a_copy_behind_searches_without_writing(tmp_path: Path, mounts: Mounts):
    index = tmp_path / "index"
    rag = _open(index)
    rag.add([DATA])
    rag.close()
    _killed_between_commits(index, write_articles(tmp_path / "more.jsonl", 1, "more", sentences=4), commits=1, batch=1)
    assert _copy_generation(index) < check_index(index).generation
    want = _rebuilt(index, tmp_path)
    files = {p.name: p.stat().st_mtime_ns for p in index.iterdir()}

    view = mounts.read_only_view(index, tmp_path / "ro")
    rag = _open(view)
    assert rag.store.read_only
    assert _dense(rag) == want
    assert _held(rag) == _stored(index)
    rag.close()
    assert check_index(view).ok
    assert {p.name: p.stat().st_mtime_ns for p in index.iterdir()} == files  # nothing written


# ---------------------------------------------------------------- rag check on a copy behind


def test_check_accepts_a_copy_behind_and_catches_a_wrong_vector_in_it(tmp_path: Path):
    path = write_articles(tmp_path / "articles.jsonl", 32, "check")
    index = tmp_path / "index"
    _killed_between_commits(index, path, commits=4)  # the file is written at commits 1, 2, 3 and 5
    report = check_index(index)
    assert report.ok and report.problems == [] and report.faiss_generation < report.generation, report.text()

    # A vector in the copy that differs from SQLite's, with a checksum that matches the bytes:
    # only comparing with the stored vectors shows it.
    [copy] = index.glob("vectors.*.faiss")
    held = faiss.read_index(str(copy))
    ids, vectors = vector_index.contents(held)
    victim = int(ids[3])
    held.remove_ids(np.array([victim], dtype=np.int64))
    held.add_with_ids(vectors[4:5], np.array([victim], dtype=np.int64))  # another chunk's vector under its id
    faiss.write_index(held, str(copy))
    write_digest(copy, of=copy)

    report = check_index(index)
    assert not report.ok and {p.code for p in report.errors} == {"faiss-mismatch"}, report.text()
    assert str(victim) in report.text()
    repaired = _open(index).check(repair=True)
    assert repaired.ok and repaired.problems == [], repaired.text()
    assert repaired.faiss_generation == repaired.generation


# ---------------------------------------------------------------- a repair changes vectors in place


@pytest.mark.real_models
def test_a_vector_repaired_in_place_reaches_a_process_with_an_older_index(tmp_path: Path, minilm):
    index = tmp_path / "index"
    live = _open(index, minilm)
    live.add([DATA])
    live.add([write_articles(tmp_path / "more.jsonl", 1, "more", sentences=4)])  # held in memory, file behind
    assert _copy_generation(index) < live.store.generation
    db = sqlite3.connect(index / "store.sqlite", isolation_level=None)
    [(chunk_id, vector)] = db.execute("SELECT id, vector FROM chunks ORDER BY id LIMIT 1").fetchall()
    values = np.frombuffer(vector, dtype=np.uint32).copy()
    values[0] ^= 1 << 30  # a flipped exponent bit on disk
    db.execute("UPDATE chunks SET vector = ? WHERE id = ?", (values.tobytes(), chunk_id))
    db.close()

    other = _open(index, minilm)  # another RAG repairs: it re-embeds the vector (alone, so its last digits differ)
    repaired = other.check(repair=True)
    other.close()
    assert any("re-embedded 1 chunk" in line for line in repaired.repaired), repaired.text()
    stored = _stored(index)
    assert stored[chunk_id] != vector  # the test is only meaningful if the re-embedding differs

    for f in index.glob("vectors.*"):  # even with no copy written by the repair (a full disk),
        f.unlink()
    live.store.refresh()  # the live process must not catch up its own older index: its vector is stale
    assert _held(live) == stored
    live.close()
    assert check_index(index).problems == []
