"""A read-only index and a full disk (issue 13, part 3), on real filesystems: a read-only bind
mount (root ignores file modes, a read-only mount it cannot) and a 2 MB tmpfs. Search on a
read-only index works and writes are refused clearly; a full disk ends in a clear error, loses
nothing committed, and never kills the process (no traceback, no SIGBUS)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from rag import RAG, RagError, Settings, check_index
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .conftest import DATA
from .index_helpers import RAG_CLI, Mounts, _env, run_cli, write_articles


def _open(index: Path, embedder=None) -> RAG:
    return RAG.open(settings=Settings(index_dir=index, seeds_dir=None), embedder=embedder or HashingEmbedder(),
                    llm=ExtractiveFakeGenerator(), seed=False)


@pytest.fixture
def mounts():
    m = Mounts()
    yield m
    m.close()


@pytest.mark.parametrize("faiss_copy", ["present", "missing"])
def test_search_on_a_read_only_index_works_and_writes_are_refused(tmp_path: Path, mounts: Mounts, faiss_copy: str):
    source = tmp_path / "index"
    rag = _open(source)
    rag.add([DATA])
    titles = [h.article.title for h in rag.search("avalanche warning", k=3)]
    rag.close()
    if faiss_copy == "missing":  # it must be rebuilt in memory, without writing it
        for f in source.glob("vectors.*"):
            f.unlink()
    files = sorted(p.name for p in source.iterdir())
    view = mounts.read_only_view(source, tmp_path / "ro")

    rag = _open(view)
    assert [h.article.title for h in rag.search("avalanche warning", k=3)] == titles
    for mode in ("dense", "bm25", "hybrid"):
        assert rag.search("avalanche warning", k=3, mode=mode)
    assert rag.ask("What about the avalanche warning?").sources  # the whole answer path reads only
    assert len(rag.articles()) == 7
    with pytest.raises(RagError, match="read-only"):
        rag.add([write_articles(tmp_path / "more.jsonl", 2, "more")])
    with pytest.raises(RagError, match="read-only"):
        rag.remove(rag.articles()[0].id)
    rag.close()
    report = check_index(view)
    assert report.ok, report.text()
    cli = run_cli("--index", str(view), "check")
    assert cli.returncode == 0 and "consistent" in cli.stdout and "Traceback" not in cli.stderr, cli.stdout + cli.stderr
    repair = run_cli("--index", str(view), "check", "--repair")
    assert "Traceback" not in repair.stderr
    assert sorted(p.name for p in source.iterdir()) == files


def test_new_index_in_a_read_only_place_is_a_clear_error(tmp_path: Path, mounts: Mounts):
    (tmp_path / "empty").mkdir()
    view = mounts.read_only_view(tmp_path / "empty", tmp_path / "ro")
    with pytest.raises(RagError, match="read-only"):
        _open(view / "index")
    with pytest.raises(RagError, match="read-only"):
        _open(view)


def test_full_disk_is_a_clear_error_and_loses_nothing_committed(tmp_path: Path, mounts: Mounts):
    disk = mounts.small_disk(tmp_path / "disk", "2m")
    index = disk / "index"
    rag = _open(index)
    assert rag.add([DATA]).added
    kept = {a.id for a in rag.articles()}
    with pytest.raises(RagError, match="disk is full") as e:
        for n in range(40):  # fill the disk
            rag.add([write_articles(tmp_path / f"big-{n}.jsonl", 60, f"big{n}", sentences=30)])
            kept = {a.id for a in rag.articles()}
    assert "free some space" in str(e.value).lower()
    rag.close()
    report = check_index(index)
    assert report.ok, report.text()
    rag = _open(index)  # opens on the full disk, with what was committed
    assert kept <= {a.id for a in rag.articles()}
    assert rag.search("avalanche warning", k=1)[0].article.title.startswith("Avalanche")
    rag.close()


@pytest.mark.real_models
def test_cli_on_a_full_disk_and_a_read_only_index_prints_errors_not_tracebacks(tmp_path: Path, mounts: Mounts, minilm):
    disk = mounts.small_disk(tmp_path / "disk", "3m")
    index = disk / "index"
    rag = _open(index, minilm)
    rag.add([DATA])
    rag.close()
    filler = disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False)  # until full
    big = write_articles(tmp_path / "big.jsonl", 200, "full", sentences=30)
    proc = subprocess.run([str(RAG_CLI), "--index", str(index), "ingest", str(big)], capture_output=True, text=True,
                          timeout=600, env=_env())
    assert proc.returncode == 2 and proc.returncode != -signal.SIGBUS, proc.stderr
    assert "error:" in proc.stderr and "disk is full" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    filler.unlink()
    assert run_cli("--index", str(index), "check").returncode == 0

    view = mounts.read_only_view(index, tmp_path / "ro")
    search = run_cli("--index", str(view), "search", "avalanche warning")
    assert search.returncode == 0 and "Avalanche" in search.stdout, search.stderr
    ingest = run_cli("--index", str(view), "ingest", str(DATA))
    assert ingest.returncode == 2 and "read-only" in ingest.stderr and "Traceback" not in ingest.stderr, ingest.stderr
