"""Concurrency: questions are answered while another process ingests (readers take no lock), and
two ingests never interleave: the second waits for the first, or is refused with --no-wait."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from rag import RAG, IndexBusyError, Settings, check_index
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .conftest import DATA
from .index_helpers import RAG_CLI, _env, start_worker, wait_for_line, write_articles


def _open(index: Path, embedder=None) -> RAG:
    return RAG.open(settings=Settings(index_dir=index, seeds_dir=None), embedder=embedder or HashingEmbedder(),
                    llm=ExtractiveFakeGenerator(), seed=False)


def test_questions_are_answered_while_another_process_ingests(tmp_path: Path):
    index = tmp_path / "index"
    reader = _open(index)
    reader.add([DATA])
    base = reader.info().articles
    corpus = write_articles(tmp_path / "more.jsonl", 60, "busy")
    hold = tmp_path / "go"
    worker = start_worker(index, corpus, batch=4, hold=hold)
    wait_for_line(worker, "committed")  # one batch in; the worker now holds the ingest lock, paused

    seen = set()
    while True:
        hits = reader.search("avalanche warning", k=3)
        assert hits and hits[0].article.title.startswith("Avalanche")
        answer = reader.ask("What did the avalanche warning say?")
        assert answer.sources and answer.text
        assert reader.search("busy story report", k=3, mode="bm25")  # the other process's articles are visible
        seen.add(reader.info().articles)
        if hold.exists() and worker.poll() is not None:
            break
        if not hold.exists():
            hold.touch()  # questions were answered while the lock was held; let the ingest go on
    assert worker.wait() == 0
    assert min(seen) > base and reader.info().articles == base + 60
    reader.close()
    assert check_index(index).ok


def _chunk_ids(index: Path, tag: str) -> list[int]:
    db = sqlite3.connect(index / "store.sqlite")
    try:
        return [r[0] for r in db.execute(
            "SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id WHERE a.title LIKE ? ORDER BY c.id", (f"{tag} story %",)
        )]
    finally:
        db.close()


def test_two_ingests_are_serialized_never_interleaved(tmp_path: Path):
    index = tmp_path / "index"
    alpha = write_articles(tmp_path / "alpha.jsonl", 24, "alpha")
    beta = write_articles(tmp_path / "beta.jsonl", 24, "beta")
    hold = tmp_path / "go"
    first = start_worker(index, alpha, batch=4, hold=hold)
    wait_for_line(first, "committed")  # holds the ingest lock, paused after its first batch
    pid = first.pid
    second = start_worker(index, beta, batch=4)
    assert second.stderr is not None
    waiting = second.stderr.readline()
    assert f"waiting for another ingest (pid {pid} since" in waiting
    hold.touch()
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    a, b = _chunk_ids(index, "alpha"), _chunk_ids(index, "beta")
    assert len(a) >= 48 and len(b) >= 48
    assert max(a) < min(b)  # every alpha batch committed before any beta batch
    assert check_index(index).problems == []


def test_ingest_with_no_wait_is_refused_clearly(tmp_path: Path):
    index = tmp_path / "index"
    hold = tmp_path / "go"
    first = start_worker(index, write_articles(tmp_path / "a.jsonl", 8, "one"), batch=4, hold=hold)
    wait_for_line(first, "committed")
    refused = start_worker(index, write_articles(tmp_path / "b.jsonl", 8, "two"), no_wait=True)
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == 3
    assert f"another ingest (pid {first.pid} since" in err and "leave out --no-wait" in err
    rag = _open(index)  # in-process too, through the API
    with pytest.raises(IndexBusyError, match=f"pid {first.pid}"):
        rag.add([tmp_path / "b.jsonl"], wait=False)
    hold.touch()
    assert first.wait(timeout=120) == 0
    assert rag.add([tmp_path / "b.jsonl"], wait=False).added  # free again
    rag.close()


@pytest.mark.real_models
def test_minilm_search_while_the_cli_ingests(tmp_path: Path, seed_index: Path, minilm):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    corpus = write_articles(tmp_path / "more.jsonl", 120, "live", sentences=3)
    reader = _open(index, minilm)
    proc = subprocess.Popen([str(RAG_CLI), "--index", str(index), "ingest", str(corpus)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    searches = 0
    while proc.poll() is None or searches == 0:
        hits = reader.search("Where was Lavrov speaking?", k=3, mode="dense")
        assert hits and "Lavrov" in hits[0].text
        searches += 1
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "120 added" in out
    assert reader.info().articles == 121 and searches >= 1
    reader.close()
    assert check_index(index).problems == []
