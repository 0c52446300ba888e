"""Ingestion on Ray Data (`--engine ray`) against the local engine, on a small local Ray cluster."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rag import RAG, Settings
from rag.index.store import DATABASE
from rag.ingest.engines import ray as ray_ingest
from rag.results import FileResult, Location
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .conftest import DATA, ROOT, SEEDS

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    """One small local cluster for the module; ingest_on_ray reuses it instead of starting its own."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture
def corpus(data_dir: Path) -> Path:
    """tests/data + seeds/ + the dev set (it has a near-duplicate pair), a copy of one file
    (an exact duplicate), and files that fail in different ways."""
    shutil.copytree(SEEDS, data_dir / "0-seeds")  # first, so the dev set's copy of it is the duplicate
    shutil.copy(ROOT / "eval" / "devset" / "articles.jsonl", data_dir / "devset.jsonl")
    shutil.copy(data_dir / "briefing.md", data_dir / "briefing-copy.md")
    (data_dir / "broken.json").write_text('{"title": "cut')
    (data_dir / "mixed.jsonl").write_text('{"title": "A line", "body": "Only this record has text."}\nnot json\n')
    (data_dir / "empty.txt").write_text("   \n")
    (data_dir / "notes.docx").write_bytes(b"PK\x03\x04")
    (data_dir / "latin1.txt").write_bytes("Café owners in Zürich protest\n\nCafé owners in Zürich protested on Monday against new fees.".encode("latin-1"))
    return data_dir


def _open(index: Path, embedder) -> RAG:
    return RAG.open(settings=Settings(index_dir=index, seeds_dir=None), embedder=embedder, llm=ExtractiveFakeGenerator())


def _chunks(index: Path) -> dict[str, list[tuple[int, int, int, str, np.ndarray]]]:
    """Every article's chunks as (ordinal, start, end, text, vector), read straight from SQLite."""
    db = sqlite3.connect(index / DATABASE)
    out: dict[str, list] = {}
    for aid, ordinal, start, end, text, vector in db.execute(
        "SELECT article_id, ordinal, start, end, text, vector FROM chunks ORDER BY article_id, ordinal"
    ):
        out.setdefault(aid, []).append((ordinal, start, end, text, np.frombuffer(vector, dtype=np.float32)))
    db.close()
    return out


def _files(report) -> dict[str, tuple[str, int, int, int, list[str]]]:
    return {p: (f.status, f.added, f.updated, f.duplicates, f.failures, f.warnings) for p, f in report.files.items()}


@pytest.mark.real_models
def test_ray_and_local_engines_build_the_same_index(ray_cluster, corpus: Path, tmp_path: Path, minilm):
    with _open(tmp_path / "local", minilm) as local:
        local_report = local.add([corpus])
        local_articles = local.articles()
    with _open(tmp_path / "ray", minilm) as on_ray:
        ray_report = on_ray.add([corpus], engine="ray", workers=2)
        ray_articles = on_ray.articles()
        ray_hits = on_ray.search("Skarvik tunnel breakthrough", k=5, mode="dense")
    with _open(tmp_path / "local", minilm) as local:
        local_hits = local.search("Skarvik tunnel breakthrough", k=5, mode="dense")

    assert local_report.engine == "local" and ray_report.engine == "ray"
    # The same report: articles, duplicates, near-duplicates, and every failure per file.
    assert len(local_report.added) >= 20 and local_report.chunks > 40
    assert ray_report.added == local_report.added
    assert ray_report.duplicates == local_report.duplicates and any("briefing" in d for d in ray_report.duplicates)
    assert ray_report.near_duplicates == local_report.near_duplicates and ray_report.near_duplicates
    assert ray_report.failed == local_report.failed and len(ray_report.failed) == 4
    assert ray_report.warnings == local_report.warnings and any("latin1.txt" in w.path for w in ray_report.warnings)
    assert _files(ray_report) == _files(local_report)
    assert _files(ray_report)[str(corpus / "mixed.jsonl")] == ("partly failed", 1, 0, 0, ["line 2: invalid JSON (Expecting value at column 1)"], [])
    assert ray_report.chunks == local_report.chunks

    # The same articles, with the same metadata (file-based ids and origins included).
    def strip(infos):
        return [(a.id, a.title, a.source, a.url, a.author, a.published, a.origin, a.chunk_count, a.duplicate_of) for a in infos]

    assert strip(ray_articles) == strip(local_articles)
    seed = next(a for a in ray_articles if a.origin == str(corpus / "0-seeds" / "000_bd667ab957f22f49.txt"))
    assert seed.source == "Anadolu Agency (AA)" and seed.author == "Elena Teslova"  # from the sidecar

    # The same chunks, and vectors equal up to float noise (other batches, other thread counts).
    local_chunks, ray_chunks = _chunks(tmp_path / "local"), _chunks(tmp_path / "ray")
    assert local_chunks.keys() == ray_chunks.keys() == {a.id for a in local_articles}
    for aid, chunks in local_chunks.items():
        assert [c[:4] for c in ray_chunks[aid]] == [c[:4] for c in chunks]
        assert np.allclose(np.stack([c[4] for c in ray_chunks[aid]]), np.stack([c[4] for c in chunks]), atol=1e-5)
    # And the FAISS copies answer alike.
    assert [(h.article.id, h.ordinal) for h in ray_hits] == [(h.article.id, h.ordinal) for h in local_hits]
    assert np.allclose([h.score for h in ray_hits], [h.score for h in local_hits], atol=1e-5)


def test_reingest_on_ray_embeds_nothing_and_changes_replace(ray_cluster, data_dir: Path, tmp_path: Path):
    with _open(tmp_path / "idx", HashingEmbedder()) as rag:
        first = rag.add([data_dir], engine="ray", workers=1)
        assert first.engine == "ray" and len(first.added) == 7 and not first.failed
        before = rag.info().chunks

        again = rag.add([data_dir], engine="ray", workers=1)
        assert (again.added, again.updated, again.chunks) == ([], [], 0)
        assert len(again.duplicates) == 7 and rag.info().chunks == before

        md = data_dir / "briefing.md"
        md.write_text(md.read_text() + "\nA late paragraph: the council will vote again in spring.\n")
        changed = rag.add([md], engine="ray", workers=1)
        assert len(changed.updated) == 1 and not changed.added
        assert rag.info().articles == 7
        assert "vote again in spring" in rag.article_text(changed.updated[0])


def test_progress_on_ray_counts_articles(ray_cluster, data_dir: Path, tmp_path: Path):
    calls: list[tuple[int, int]] = []
    with _open(tmp_path / "idx", HashingEmbedder()) as rag:
        rag.add([data_dir], engine="ray", workers=1, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 7) and calls[-1] == (7, 7)


def test_without_ray_the_cli_says_so_and_ingests_locally(monkeypatch, data_dir: Path, tmp_path: Path, minilm):
    from rag import cli

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    monkeypatch.setattr("rag.api.load_embedder", lambda *a, **k: minilm)
    result = CliRunner().invoke(
        cli.cli, ["--index", str(tmp_path / "idx"), "ingest", "--engine", "ray", "--workers", "2", str(data_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "Ray is not installed" in result.stderr and "pip install 'rag[ray]'" in result.stderr
    assert "ingesting with the local engine instead" in result.stderr
    assert "7 added, 0 updated, 0 duplicates skipped, 0 failed" in result.stdout


def test_without_ray_the_api_warns_and_ingests_locally(monkeypatch, caplog, data_dir: Path, fake_rag: RAG):
    monkeypatch.setitem(sys.modules, "ray", None)
    with caplog.at_level(logging.WARNING, logger="rag.api"):
        report = fake_rag.add([data_dir], engine="ray")
    assert report.engine == "local" and len(report.added) == 7
    assert "Ray is not installed" in caplog.text and "rag[ray]" in caplog.text


def test_ray_options_need_the_ray_engine(tmp_path: Path):
    from rag import cli

    result = CliRunner().invoke(cli.cli, ["--index", str(tmp_path / "idx"), "ingest", "--workers", "2", str(tmp_path)])
    assert result.exit_code == 2 and "--address and --workers only apply with --engine ray" in result.output


def test_unknown_engine_is_a_clear_error(fake_rag: RAG, data_dir: Path):
    from rag.errors import RagError

    with pytest.raises(RagError, match="unknown ingest engine 'spark'"):
        fake_rag.add([data_dir], engine="spark")  # type: ignore[arg-type]


def _archive(target: Path, n: int, padding: int = 0) -> Path:
    """``n`` distinct short articles, one JSON file each; ``padding`` bytes of a field the loader
    ignores make the files big while the articles stay small."""
    target.mkdir()
    for i in range(n):
        record = {
            "id": f"story-{i}", "title": f"Council {i} votes on the harbour budget",
            "body": f"The council of district {i} approved a harbour budget of {1000 + 37 * i} crowns on Monday. "
                    f"Member {i % 7} voted against, citing the cost of dredging berth {i % 11}.",
            "attachment": "x" * padding,
        }
        (target / f"{i:04d}.json").write_text(json.dumps(record))
    return target


def test_ray_driver_holds_a_bounded_window_of_the_archive(ray_cluster, monkeypatch, tmp_path: Path):
    """Files are read, parsed, embedded and committed a window at a time: the driver's Python
    heap never holds the whole archive's bytes (it held all of them, and all articles, before)."""
    monkeypatch.setattr(ray_ingest, "PARSE_BATCH", 2)
    archive = _archive(tmp_path / "archive", 60, padding=400_000)
    total = sum(f.stat().st_size for f in archive.iterdir())
    # A small file cap: reading a file briefly allocates a buffer of the cap (25 MB by default).
    settings = Settings(index_dir=tmp_path / "idx", seeds_dir=None, max_file_bytes=1_000_000)
    with RAG.open(settings=settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator()) as rag:
        rag.add([DATA / "briefing.md"], engine="ray", workers=1)  # imports the code a commit needs (20 MB)
        tracemalloc.start()
        try:
            report = rag.add([archive], engine="ray", workers=1)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(report.added) == 60 and not report.failed
        assert rag.check().ok
    # 1 worker x 2 calls in flight x 2 files of 400 KB, and their serialised copies: a few MB.
    assert peak < total / 4, f"driver heap peaked at {peak / 1e6:.1f} MB for a {total / 1e6:.1f} MB archive"


def test_on_ray_the_report_is_bounded_and_locations_typed_as_locally(ray_cluster, monkeypatch, tmp_path: Path):
    """The Ray engine goes through the same driver: exact counts, the first few entries kept, every
    file's whole result handed to ``on_file`` once, and record locations as values."""
    monkeypatch.setattr("rag.results.REPORT_KEEPS", 3)
    monkeypatch.setattr(ray_ingest, "PARSE_BATCH", 4)  # several windows
    archive = _archive(tmp_path / "archive", 20)
    (archive / "lines.jsonl").write_text('{"title": "Ferry", "body": "The ferry ran late again on Tuesday."}\n{\n')
    results: dict[str, list[FileResult]] = {"ray": [], "local": []}
    with _open(tmp_path / "ray", HashingEmbedder()) as rag:
        on_ray = rag.add([archive], engine="ray", workers=1, on_file=results["ray"].append)
    with _open(tmp_path / "local", HashingEmbedder()) as rag:
        local = rag.add([archive], on_file=results["local"].append)
    assert on_ray.counts == local.counts and (on_ray.counts.added, on_ray.counts.files, on_ray.counts.failed) == (21, 21, 1)
    assert len(on_ray.added) == 3 and on_ray.added == local.added and not on_ray.complete
    assert on_ray.failed == local.failed and on_ray.failed[0].location == Location(str(archive / "lines.jsonl"), line=2)
    by_path = {name: sorted(found, key=lambda r: r.path) for name, found in results.items()}
    assert by_path["ray"] == by_path["local"] and len(by_path["ray"]) == 21


class _DiesOnce(HashingEmbedder):
    """The hashing embedder, in a worker that is SIGKILLed (as by the OOM killer) during its
    ``after``-th embedding call across the cluster; every call records the worker's pid."""

    def __init__(self, state: Path, after: int) -> None:
        super().__init__()
        self.state = state
        self.after = after

    def embed(self, texts, progress=None):
        with (self.state / "calls").open("a") as f:
            f.write(f"{os.getpid()}\n")
        calls = len((self.state / "calls").read_text().split())
        if calls >= self.after:
            try:
                os.close(os.open(self.state / "killed", os.O_CREAT | os.O_EXCL))  # only the first time
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().embed(texts, progress)


def test_a_worker_killed_mid_ingest_is_restarted_and_the_index_is_whole(ray_cluster, monkeypatch, tmp_path: Path):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    monkeypatch.setattr(ray_ingest, "EMBED_BATCH", 4)
    monkeypatch.setattr("rag.ingest.driver.COMMIT_BATCH", 8)  # several commits, some before the kill
    archive = _archive(tmp_path / "archive", 40)
    state = tmp_path / "state"
    state.mkdir()
    # 6 calls go out at once (2 workers x 2, + 8 / 4 for a commit batch); the 8th only after 2
    # results (8 articles) were taken and committed: the worker dies with articles in the index.
    with _open(tmp_path / "idx", _DiesOnce(state, after=9)) as rag:
        report = rag.add([archive], engine="ray", workers=2)
        assert (state / "killed").exists()
        pids = (state / "calls").read_text().split()
        assert len(set(pids)) == 3, pids  # two workers, and the one Ray restarted

        assert len(report.added) == 40 and not report.failed and not report.duplicates
        assert rag.check().ok
        infos = rag.articles()
        assert len(infos) == 40 and all(a.chunk_count >= 1 for a in infos)
        again = rag.add([archive], engine="ray", workers=2)
        assert (again.added, again.updated, again.chunks, len(again.duplicates)) == ([], [], 0, 40)
    # Every article whole: the same chunks (and vectors) as the local engine writes.
    with _open(tmp_path / "local", HashingEmbedder()) as local:
        local.add([archive])
    ray_chunks, local_chunks = _chunks(tmp_path / "idx"), _chunks(tmp_path / "local")
    assert ray_chunks.keys() == local_chunks.keys()
    for aid, chunks in local_chunks.items():
        assert [c[:4] for c in ray_chunks[aid]] == [c[:4] for c in chunks]
        assert np.allclose(np.stack([c[4] for c in ray_chunks[aid]]), np.stack([c[4] for c in chunks]))
