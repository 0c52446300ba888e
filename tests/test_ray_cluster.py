"""`rag ingest --engine ray --address` against a real, separate Ray cluster process on loopback."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from rag import RAG, Settings
from rag.testing import ExtractiveFakeGenerator

pytest.importorskip("ray")

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ours(temp_dir: Path) -> list[psutil.Process]:
    """Processes of this test's cluster: they name its temp dir on their command line."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any(str(temp_dir) in part for part in p.info["cmdline"] or []):
            found.append(p)
    return found


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A head node in its own process: `ray start --head --block` on 127.0.0.1, in its own temp
    dir. `ray stop` would stop every Ray on the machine, so teardown signals only this one:
    SIGTERM makes the blocking `ray start` stop the processes it started."""
    temp_dir = Path("/tmp") / f"rag-ray-{os.getpid()}-{_free_port()}"  # short: Ray's socket paths have a length limit
    temp_dir.mkdir()
    port = _free_port()
    # Ray's token authentication with a token of this cluster's own (not ~/.ray/auth_token).
    env = {**os.environ, "RAY_TMPDIR": str(temp_dir), "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    output = []
    assert head.stdout is not None
    for line in head.stdout:  # until the node is up (or the command failed)
        output.append(line)
        if "Ray runtime started" in line or "will now block" in line:
            break
    if head.poll() is not None or not any("Ray runtime started" in line for line in output):
        head.kill()
        pytest.fail("ray start failed:\n" + "".join(output))
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        for p in _ours(temp_dir):  # anything the head left behind, by pid (only ours)
            p.kill()
        psutil.wait_procs(_ours(temp_dir), timeout=10)


@pytest.mark.real_models
def test_cli_ingests_on_a_separate_cluster(cluster, data_dir: Path, tmp_path: Path, minilm):
    address, env = cluster
    index = tmp_path / "idx"
    result = subprocess.run(
        [str(BIN / "rag"), "--index", str(index), "ingest", "--engine", "ray", "--address", address,
         "--workers", "1", str(data_dir)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"7 added, 0 updated, 0 duplicates skipped, 0 failed, \d+ chunks", result.stdout), result.stdout

    with RAG.open(settings=Settings(index_dir=index, seeds_dir=None), embedder=minilm, llm=ExtractiveFakeGenerator()) as rag:
        check = rag.check()
        assert check.ok, check
        infos = rag.articles()
        assert len(infos) == 7 and all(a.chunk_count >= 1 for a in infos)
        # Vectors from the cluster's model answer a query as the local model would.
        hits = rag.search("avalanche danger in the mountain valleys", k=3, mode="dense")
        assert hits and hits[0].article.title == "Avalanche warning raised in three valleys"
