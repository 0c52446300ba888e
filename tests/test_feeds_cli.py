"""`rag feeds`, `rag sync` and `rag watch`, run as users run them (real subprocesses, the real
embedder, a feed server on 127.0.0.1)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import ROOT
from .feed_server import FeedServer, Route, article_page, rss

pytestmark = pytest.mark.real_models
CLI = [sys.executable, "-m", "rag.cli"]
STORY = [
    "The port of Valmora will stay closed to cruise ships on Sundays from June, the harbour master announced.",
    "Residents had complained that up to three ships a day crowded the old town's narrow streets.",
]


def _env(index: Path) -> dict[str, str]:
    return {**os.environ, "RAG_INDEX_DIR": str(index), "RAG_SEEDS_DIR": "", "RAG_FEED_HOST_INTERVAL": "0"}


def run(args: list[str], index: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(CLI + args, capture_output=True, text=True, env=_env(index), timeout=300, cwd=ROOT)


def test_feeds_add_list_sync_and_rm(tmp_path: Path):
    server = FeedServer()
    try:
        server.routes["/news/cruise"] = Route(article_page("Cruise ships banned on Sundays", STORY))
        server.routes["/news/gone"] = Route(b"", status=404)
        server.routes["/port.rss"] = Route(rss("Port News", [
            {"title": "No cruise ships on Sundays", "link": server.url("/news/cruise"), "guid": "cruise", "description": "…"},
            {"title": "A story that went", "link": server.url("/news/gone"), "guid": "gone", "description": "…"},
        ]), content_type="application/rss+xml", etag='"p1"')
        index = tmp_path / "index"
        url = server.url("/port.rss")

        added = run(["feeds", "add", url], index)
        assert added.returncode == 0, added.stderr
        assert f"added feed 1: {url}" in added.stdout
        again = run(["feeds", "add", url, "ftp://example.org/x.rss"], index)
        assert "already subscribed: feed 1" in again.stdout
        assert again.returncode == 2 and "only http(s) URLs and local file paths" in again.stderr
        assert "never synced" in run(["feeds", "list"], index).stdout

        synced = run(["sync"], index)
        assert synced.returncode == 0, synced.stderr
        assert "1 feed synced (0 failed): 1 added, 0 updated, 0 already indexed, 1 item failed" in synced.stdout
        assert f"failed: {server.url('/news/gone')}: HTTP 404 Not Found" in synced.stderr
        listed = run(["feeds", "list"], index).stdout
        assert "(Port News)" in listed and ": updated" in listed
        search = run(["search", "cruise ships Sundays", "-k", "1"], index)
        assert "No cruise ships on Sundays" in search.stdout

        removed = run(["feeds", "rm", "1", "--articles"], index)
        assert removed.returncode == 0 and f"removed feed 1: {url} and 1 article(s)" in removed.stdout
        assert "articles:  0" in run(["info"], index).stdout
    finally:
        server.close()


def _put(path: Path, text: str) -> None:
    """Write whole, then rename into place: one event however loaded the machine (hidden files are not watched)."""
    tmp = path.with_name("." + path.name)
    tmp.write_text(text)
    tmp.rename(path)


def _lines(stream, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def test_watch_ingests_a_new_file_and_ctrl_c_stops_it_cleanly(tmp_path: Path):
    folder, index = tmp_path / "inbox", tmp_path / "index"
    folder.mkdir()
    proc = subprocess.Popen(CLI + ["watch", str(folder), "--debounce", "200"], env=_env(index), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=_lines, args=(proc.stderr, err), daemon=True).start()
    seen_err: list[str] = []

    def wait_err(text: str) -> None:
        while not any(text in line for line in seen_err):
            seen_err.append(err.get(timeout=180))

    try:
        wait_err("watching")
        assert "0 added" in out.get(timeout=180)  # the initial batch: an empty folder
        _put(folder / "cruise.txt", "Cruise ships banned on Sundays\n\n" + " ".join(STORY))
        assert "1 added, 0 updated, 0 duplicates skipped, 0 failed" in out.get(timeout=180)
        _put(folder / "broken.json", "{not json")
        assert "0 added, 0 updated, 0 duplicates skipped, 1 failed" in out.get(timeout=180)
        wait_err("broken.json: invalid JSON")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        wait_err("stopped watching")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not any("Traceback" in line for line in seen_err)
    info = run(["info", "--articles"], index)
    assert "Cruise ships banned on Sundays" in info.stdout


def test_a_sync_killed_midway_leaves_the_feed_as_it_was(tmp_path: Path, minilm):
    from rag import RAG, Settings, feeds
    from rag.index.check import check_index
    from rag.testing import ExtractiveFakeGenerator

    server = FeedServer()
    try:
        server.routes["/news/cruise"] = Route(article_page("Cruise ships banned on Sundays", STORY))
        server.routes["/news/slow"] = Route(article_page("Harbour fees rise", [STORY[1], STORY[0]]), delay=120)
        server.routes["/port.rss"] = Route(rss("Port News", [
            {"title": "No cruise ships on Sundays", "link": server.url("/news/cruise"), "guid": "cruise", "description": "…"},
            {"title": "Harbour fees rise", "link": server.url("/news/slow"), "guid": "slow", "description": "…"},
        ]), content_type="application/rss+xml", etag='"p1"')
        index = tmp_path / "index"

        def open_index() -> RAG:
            return RAG.open(settings=Settings(index_dir=index, seeds_dir=None, feed_host_interval=0.0), embedder=minilm,
                            llm=ExtractiveFakeGenerator())

        rag = open_index()
        feeds.add(rag, server.url("/port.rss"))
        rag.close()
        proc = subprocess.Popen(CLI + ["sync"], env={**_env(index), "RAG_FEED_TIMEOUT": "300"}, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 180
            while not server.requests_for("/news/slow") and time.time() < deadline:
                time.sleep(0.1)
            assert server.requests_for("/news/slow"), "the sync never reached the slow page"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)

        rag = open_index()
        [feed] = feeds.feeds(rag)
        assert (feed.etag, feed.last_sync, feed.last_status) == (None, None, None)  # as if never synced
        assert rag.articles() == [] and check_index(index).problems == []
        server.routes["/news/slow"].delay = 0
        report = feeds.sync(rag)
        assert len(report.added) == 2 and not report.errors
        rag.close()
    finally:
        server.close()
