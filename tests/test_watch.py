"""`rag watch`: a real watchfiles watcher on a temporary folder, the real MiniLM embedder, FAISS
and SQLite. Files appear, change, go; a bad one gives its per-file error; the watch stops cleanly."""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path

import pytest

from rag import RAG, Settings
from rag.feeds.watch import WatchBatch, watch
from rag.index.check import check_index
from rag.testing import ExtractiveFakeGenerator

pytestmark = pytest.mark.real_models

ORCHARD = ("Orchard growers in the Ebro valley lost a third of their apricot blossom to a late frost on Sunday night.\n"
           "The regional farm office said insurance claims would be paid within six weeks.")
ORCHARD_EDITED = ORCHARD.replace("a third", "half") + "\nA second frost is forecast for Thursday."
TRAMS = "The city of Zaragoza will add twelve new trams to its single line by 2027, the council said on Friday."


class Watcher:
    """``watch`` in a thread; each batch arrives on a queue."""

    def __init__(self, rag: RAG, folder: Path) -> None:
        self.batches: queue.Queue[WatchBatch] = queue.Queue()
        self.stop = threading.Event()
        ready = threading.Event()
        self.error: BaseException | None = None

        def run() -> None:
            try:
                watch(rag, folder, self.batches.put, stop=self.stop, debounce_ms=300, on_ready=ready.set)
            except BaseException as e:  # surfaced by the test
                self.error = e
                ready.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(60), "the watcher did not start"
        self.initial = self.next()

    def next(self, timeout: float = 30) -> WatchBatch:
        assert self.error is None, self.error
        return self.batches.get(timeout=timeout)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the watcher did not stop"


@pytest.fixture
def rag(tmp_path: Path, minilm):
    rag = RAG.open(settings=Settings(index_dir=tmp_path / "index", seeds_dir=None), embedder=minilm, llm=ExtractiveFakeGenerator())
    yield rag
    rag.close()


def test_files_added_changed_and_removed_follow_the_folder(rag: RAG, tmp_path: Path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "trams.txt").write_text("Zaragoza orders new trams\n\n" + TRAMS)
    w = Watcher(rag, folder)
    try:
        assert len(w.initial.ingest.added) == 1  # what was there already goes in first

        (folder / "orchard.txt").write_text("Frost hits Ebro orchards\n\n" + ORCHARD)
        added = w.next()
        assert len(added.ingest.added) == 1 and added.ingest.failed == []
        [orchard] = [a for a in rag.articles() if a.title == "Frost hits Ebro orchards"]
        assert orchard.origin == str((folder / "orchard.txt").resolve())
        assert rag.search("How much blossom did the frost destroy?", k=1)[0].article.id == orchard.id

        (folder / "orchard.txt").write_text("Frost hits Ebro orchards\n\n" + ORCHARD_EDITED)
        changed = w.next()
        assert changed.ingest.updated == [orchard.id] and not changed.ingest.added
        assert "half of their apricot blossom" in (rag.article_text(orchard.id) or "")

        (folder / "orchard.txt").unlink()
        gone = w.next()
        assert gone.removed == [orchard.id] and gone.gone == [str((folder / "orchard.txt").resolve())]
        assert [a.title for a in rag.articles()] == ["Zaragoza orders new trams"]
        assert check_index(rag.store.directory).problems == []
    finally:
        w.close()


def test_a_bad_file_gives_its_per_file_error_and_the_watch_goes_on(rag: RAG, tmp_path: Path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    w = Watcher(rag, folder)
    try:
        (folder / "broken.json").write_text('{"title": "Half a record", "text": ')
        bad = w.next()
        [failure] = bad.ingest.failed
        assert failure.path.endswith("broken.json") and "invalid JSON" in failure.reason
        assert bad.ingest.files[failure.path].status == "failed"

        # Records: a file that loses one loses its article; the other stays.
        records = [{"id": "trams", "title": "Trams", "text": TRAMS}, {"id": "orchard", "title": "Frost", "text": ORCHARD}]
        (folder / "wire.jsonl").write_text("\n".join(json.dumps(r) for r in records))
        assert len(w.next().ingest.added) == 2
        (folder / "wire.jsonl").write_text(json.dumps(records[0]))
        shrunk = w.next()
        assert len(shrunk.removed) == 1 and [a.title for a in rag.articles()] == ["Trams"]
    finally:
        w.close()


def test_files_that_went_while_nobody_watched_are_removed_at_start(rag: RAG, tmp_path: Path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "trams.txt").write_text("Zaragoza orders new trams\n\n" + TRAMS)
    (folder / "orchard.txt").write_text("Frost hits Ebro orchards\n\n" + ORCHARD)
    rag.add([folder.resolve()])
    (folder / "orchard.txt").unlink()
    w = Watcher(rag, folder)
    w.close()
    assert len(w.initial.removed) == 1 and [a.title for a in rag.articles()] == ["Zaragoza orders new trams"]
