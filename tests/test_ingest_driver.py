"""The one ingest driver (rag.ingest.driver) behind the Engine protocol: record locations as typed
values, a report whose memory is bounded while its counts stay exact, the same report however
an engine windows the archive, and the index's one writer lock."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from rag import RAG, Settings
from rag.documents.articles import Article
from rag.index.store import ArticleUpdate
from rag.ingest.driver import ingest
from rag.ingest.engines import Engine, Progress
from rag.ingest.engines.local import LocalEngine
from rag.ingest.formats import LoadResult, iter_files, load_file
from rag.results import FileResult, IngestReport, Location
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .conftest import ROOT, SEEDS
from .index_helpers import start_worker, wait_for_line, write_articles


def _open(index: Path) -> RAG:
    return RAG.open(settings=Settings(index_dir=index, seeds_dir=None), embedder=HashingEmbedder(),
                    llm=ExtractiveFakeGenerator(), seed=False)


@pytest.fixture
def mixed(data_dir: Path) -> Path:
    """tests/data, the seeds and the dev set (it has a near-duplicate pair), an exact copy, and
    files failing whole or per record."""
    shutil.copytree(SEEDS, data_dir / "0-seeds")
    shutil.copy(ROOT / "eval" / "devset" / "articles.jsonl", data_dir / "devset.jsonl")
    shutil.copy(data_dir / "briefing.md", data_dir / "briefing-copy.md")
    (data_dir / "mixed.jsonl").write_text('{"title": "A line", "body": "Only this record has text."}\nnot json\n')
    (data_dir / "list.json").write_text(json.dumps([{"title": "Kept", "body": "The first record has a body."}, {"title": "No body"}]))
    (data_dir / "broken.json").write_text('{"title": "cut')
    (data_dir / "notes.docx").write_bytes(b"PK\x03\x04")
    return data_dir


def test_record_locations_reach_the_report_as_values(fake_rag: RAG, mixed: Path):
    report = fake_rag.add([mixed])
    where = {f.location: f.reason for f in report.failed}
    assert where[Location(str(mixed / "mixed.jsonl"), line=2)].startswith("invalid JSON")
    assert where[Location(str(mixed / "list.json"), record=1)].startswith("record has no text")
    assert Location(str(mixed / "broken.json")) in where
    # Shown as they always were, and labelled per file from the value, not by re-parsing text.
    assert {f.path for f in report.failed} >= {f"{mixed / 'mixed.jsonl'}:2", f"{mixed / 'list.json'}[1]"}
    assert report.files[str(mixed / "list.json")].failures == ["record 1: record has no text (expected one of: text, body, content)"]
    assert report.files[str(mixed / "list.json")].status == "partly failed"


class _FileAtATime:
    """The local stages, one file per window (as a streaming engine delivers them)."""

    name = "file-at-a-time"

    def __init__(self, embedder: HashingEmbedder) -> None:
        self.local = LocalEngine(embedder)

    def running(self, chunker):  # type: ignore[no-untyped-def]
        return self.local.running(chunker)

    def load(self, paths: Iterable[str | Path], max_bytes: int, follow_symlinks: bool) -> Iterator[LoadResult]:
        skipped: list = []
        for path in iter_files(paths, follow_symlinks, skipped):
            if skipped:
                yield LoadResult(failures=list(skipped))
                skipped.clear()
            yield load_file(path, max_bytes)

    def embed(self, planned: Iterable[list[Article]], commit_batch: int, progress: Progress | None) -> Iterator[ArticleUpdate]:
        for window in planned:
            yield from self.local.embed([window], commit_batch, None)


def _whole(report: IngestReport) -> tuple:
    files = {p: (f.status, f.added, f.updated, f.duplicates, f.failures, f.warnings) for p, f in report.files.items()}
    return (report.added, report.updated, report.duplicates, report.failed, report.warnings, report.near_duplicates,
            files, report.chunks, report.counts)


def test_the_driver_reports_alike_whatever_the_engines_windows(tmp_path: Path, mixed: Path, monkeypatch):
    monkeypatch.setattr("rag.ingest.driver.COMMIT_BATCH", 3)  # commits that cut across files
    reports = []
    for name, make in (("local", LocalEngine), ("windowed", _FileAtATime)):
        with _open(tmp_path / name) as rag:
            engine: Engine = make(rag.embedder)
            reports.append(ingest([mixed], rag.store, engine, rag.settings.max_file_bytes))
            assert rag.check().ok
    local, windowed = reports
    assert windowed.engine == "file-at-a-time" and local.engine == "local"
    assert _whole(windowed) == _whole(local)
    assert local.duplicates and local.near_duplicates and len(local.failed) == 4 and local.complete


def test_the_report_keeps_a_bounded_sample_and_exact_counts(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("rag.results.REPORT_KEEPS", 4)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(30):
        (folder / f"{i:02d}.json").write_text(json.dumps({"id": f"s{i}", "title": f"Story {i}", "body": f"Harbour vote number {i} passed."}))
    for i in range(6):
        (folder / f"bad{i}.json").write_text("{")
    (folder / "mixed.jsonl").write_text('{"title": "A line", "body": "Only this record has text."}\nnot json\n')
    seen: list[FileResult] = []
    with _open(tmp_path / "index") as rag:
        report = rag.add([folder], on_file=seen.append)
        again = rag.add([folder], on_file=None)
    c = report.counts
    assert (c.added, c.updated, c.duplicates, c.failed, c.files) == (31, 0, 0, 7, 37)
    assert len(report.added) == len(report.failed) == len(report.files) == 4 and not report.complete
    assert report.summary().startswith("31 added, 0 updated, 0 duplicates skipped, 7 failed")
    # Every file's whole result went to on_file once, when it was done.
    assert len(seen) == 37 and len({r.path for r in seen}) == 37
    by_name = {Path(r.path).name: r for r in seen}
    assert by_name["mixed.jsonl"].added == 1 and by_name["mixed.jsonl"].failures[0].startswith("line 2: invalid JSON")
    assert by_name["bad5.json"].status == "failed" and by_name["29.json"].status == "added"
    assert (again.counts.duplicates, len(again.duplicates), again.counts.added) == (31, 4, 0)


def test_a_removal_waits_for_a_running_ingest_under_the_one_lock(tmp_path: Path):
    index = tmp_path / "index"
    with _open(index) as rag:
        [first] = rag.add([write_articles(tmp_path / "one.jsonl", 1, "first")]).added
    hold = tmp_path / "go"
    worker = start_worker(index, write_articles(tmp_path / "more.jsonl", 12, "more"), batch=4, hold=hold)
    wait_for_line(worker, "committed")  # the other process is mid-ingest, holding the lock
    rag = _open(index)
    removed: list[list[str]] = []
    remover = threading.Thread(target=lambda: removed.append(rag.remove(first)))
    remover.start()
    remover.join(timeout=3)
    assert remover.is_alive() and not removed  # waits: no write slips between the ingest's batches
    hold.touch()
    assert worker.wait(timeout=120) == 0
    remover.join(timeout=60)
    assert removed == [[first]] and rag.info().articles == 12
    rag.close()
    assert not (index / ".lock").exists()  # one lock file: the store takes no lock of its own


def _long_archive(folder: Path, n: int, sentences: int = 400) -> Path:
    """``n`` distinct articles of random words (so no near-duplicates), one JSON file each."""
    import random

    rng = random.Random(n)
    words = [f"{a}{b}" for a in "bcdfghklmnprstvz" for b in ("ar", "en", "ix", "ol", "um", "ey")]
    folder.mkdir()
    for i in range(n):
        body = " ".join(" ".join(rng.choice(words) for _ in range(12)).capitalize() + "." for _ in range(sentences))
        (folder / f"{i:03d}.json").write_text(json.dumps({"id": f"long-{i}", "title": f"Long report {i}", "body": body}))
    return folder


_MEASURE_INGEST = """
import json, sys, tracemalloc
from pathlib import Path
import rag.ingest.driver, rag.ingest.engines.local
from rag import RAG, Settings
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder
rag.ingest.engines.local.WINDOW_FILES = rag.ingest.driver.COMMIT_BATCH = 8
folder, index, first = map(Path, sys.argv[1:])
# A small file cap: reading a file briefly allocates a buffer of the cap (25 MB by default).
settings = Settings(index_dir=index, seeds_dir=None, max_file_bytes=1_000_000)
calls = []
with RAG.open(settings=settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator(), seed=False) as r:
    r.add([first])  # imports the code a commit needs
    tracemalloc.start()
    report = r.add([folder], progress=lambda done, of: calls.append((done, of)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"peak": peak, "calls": calls, "chunks": report.chunks, "added": report.counts.added,
                      "failed": len(report.failed), "ok": r.check().ok}))
"""


def test_the_local_engine_holds_a_bounded_window_of_the_archive(tmp_path: Path):
    """The local engine streams as the Ray engine does: files are loaded ``WINDOW_FILES`` at a time
    and the next window only once this one is committed, so the Python heap of an ingest peaks
    alike for an archive four times the size (it held every article and its chunks before).
    Each ingest is measured in a fresh process: tracemalloc counts every thread's allocations,
    and threads other tests leave behind in this one would be counted too."""
    import subprocess
    import sys

    runs = {}
    for n in (40, 160):
        folder = _long_archive(tmp_path / f"archive-{n}", n, sentences=120)  # ~6 KB articles
        out = subprocess.run([sys.executable, "-c", _MEASURE_INGEST, str(folder), str(tmp_path / f"index-{n}"),
                              str(ROOT / "tests" / "data" / "briefing.md")], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-3000:]
        runs[n] = json.loads(out.stdout.strip().splitlines()[-1])
        assert (runs[n]["added"], runs[n]["failed"], runs[n]["ok"]) == (n, 0, True)
    small, big = runs[40]["peak"], runs[160]["peak"]
    assert big < 1.25 * small, f"the heap peaked at {small / 1e6:.1f} MB for 40 articles, {big / 1e6:.1f} MB for 160"
    # Progress counts chunks; the total grows a window at a time and ends at every chunk embedded.
    calls, chunks = [tuple(c) for c in runs[160]["calls"]], runs[160]["chunks"]
    assert calls[-1] == (chunks, chunks) and calls[0][1] < chunks
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(calls, calls[1:]))


def test_a_long_articles_signature_is_hashed_in_slices(monkeypatch):
    """MinHash over a long article: datasketch builds a shingles x permutations matrix per call, so
    the shingles go in slices (one call over a 130 KB article held 27 MB), with the same signature."""
    import random
    import tracemalloc

    import numpy as np
    from datasketch import MinHash

    from rag.documents import dedup

    rng = random.Random(5)
    words = [f"w{i}" for i in range(400)]
    text = " ".join(rng.choice(words) for _ in range(26_000))  # ~26,000 distinct 5-word shingles, ~130 KB
    whole = MinHash(num_perm=dedup.NUM_PERM, seed=dedup._SEED, scheme=dedup._SCHEME)
    whole.update_batch(list(dedup.shingles(text)))
    dedup.signature("warm up the import")
    tracemalloc.start()
    try:
        sliced = dedup.signature(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(sliced, np.asarray(whole.hashvalues, dtype=np.uint64))
    assert peak < 12e6, f"a signature of a 130 KB article peaked at {peak / 1e6:.1f} MB"
