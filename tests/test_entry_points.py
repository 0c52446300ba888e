"""The ways to start rag agree: `rag …` = `python -m rag …`, and `python ui.py` = `rag ui`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path
from typing import IO

import pytest
from click.testing import CliRunner

from rag import cli
from rag.errors import RagError
from rag.serve.address import browser_url, check_port
from rag.settings import Settings

from .conftest import ROOT
from .processes import free_port

UI_FLAGS = ("--host", "--port", "--index", "--api", "--help")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "RAG_SEEDS_DIR": "", "HF_HUB_OFFLINE": "1", **extra}


def test_python_m_rag_is_the_rag_command(tmp_path: Path):
    helped = subprocess.run([sys.executable, "-m", "rag", "--help"], capture_output=True, text=True,
                            env=_env(), cwd=tmp_path, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: python -m rag [OPTIONS] COMMAND")
    for command in ("ask", "chat", "check", "eval", "info", "ingest", "rm", "search", "serve", "ui"):
        assert f"  {command} " in helped.stdout
    info = subprocess.run([sys.executable, "-m", "rag", "--index", str(tmp_path / "idx"), "info"], capture_output=True,
                          text=True, env=_env(), cwd=tmp_path, timeout=600)
    assert info.returncode == 0, info.stderr
    assert f"index:     {tmp_path / 'idx'}" in info.stdout and "articles:  0   chunks: 0" in info.stdout


def test_ui_py_takes_the_flags_of_rag_ui(tmp_path: Path):
    helped = subprocess.run([sys.executable, str(ROOT / "ui.py"), "--help"], capture_output=True, text=True,
                            env=_env(), cwd=tmp_path, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: ui.py [OPTIONS]\n"), helped.stdout  # not "ui.py ui"
    assert all(flag in helped.stdout for flag in UI_FLAGS), helped.stdout
    options = [" ".join(text.split("Options:")[1].split())  # the same options, wrapped to another width
               for text in (helped.stdout, CliRunner().invoke(cli.cli, ["ui", "--help"]).output)]
    assert options[0] == options[1]
    wrong = subprocess.run([sys.executable, str(ROOT / "ui.py"), "--no-such-flag"], capture_output=True, text=True,
                           env=_env(), cwd=tmp_path, timeout=120)
    assert wrong.returncode == 2 and "No such option '--no-such-flag'" in wrong.stderr


@pytest.mark.parametrize("args", [["ui", "--index", "IDX", "--port", "PORT"], ["--index", "IDX", "ui", "--port", "PORT"]])
def test_rag_ui_takes_the_index_before_or_after_ui(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    launched: list[tuple[Settings, dict[str, object]]] = []
    webapp = types.ModuleType("rag.serve.web")  # not the real one: importing Gradio takes seconds
    webapp.launch = lambda settings, **kw: launched.append((settings, kw))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rag.serve.web", webapp)
    port = free_port()
    result = CliRunner().invoke(cli.cli, [{"IDX": str(tmp_path / "IDX"), "PORT": str(port)}.get(a, a) for a in args])
    assert result.exit_code == 0, result.output
    ((settings, kw),) = launched
    assert settings.index_dir == tmp_path / "IDX"
    assert kw == {"host": None, "port": port, "api": False}


@pytest.mark.parametrize("how", ["--port", "RAG_PORT", "--host 0.0.0.0 --port"])
def test_a_busy_port_is_a_clear_error_before_anything_loads(how: str, tmp_path: Path):
    index = tmp_path / "idx"
    with socket.socket() as held:  # another server on the port
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        flags, env = (how.split() + [str(port)], _env()) if how != "RAG_PORT" else ([], _env(RAG_PORT=str(port)))
        for command in ([sys.executable, str(ROOT / "ui.py")], [sys.executable, "-m", "rag", "ui"]):
            done = subprocess.run([*command, *flags, "--index", str(index)], capture_output=True, text=True, env=env,
                                  cwd=tmp_path, timeout=120)
            assert done.returncode != 0, done.stdout
            assert done.stderr.startswith(f"error: port {port} is already in use on "), done.stderr
            assert "--port N, or RAG_PORT=N" in done.stderr and "Traceback" not in done.stderr, done.stderr
            assert done.stdout == ""
            assert not index.exists()  # refused before the index was opened (or the models loaded): ~1.5 s, not ~15


def test_rag_serve_on_a_busy_port_is_the_same_clear_error(tmp_path: Path):
    index = tmp_path / "idx"
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "rag", "--index", str(index), "serve", "--port", str(port)],
                              capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"error: port {port} is already in use on "), done.stderr
    assert "--port N, or RAG_API_PORT=N" in done.stderr
    assert not index.exists()


def test_check_port_names_the_port_and_the_fix():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        for host in ("127.0.0.1", "localhost", "0.0.0.0"):  # Gradio binds 127.0.0.1 first, whatever the host
            with pytest.raises(RagError, match=rf"^port {port} is already in use on .*--port N, or RAG_PORT=N$"):
                check_port(host, port)
        with pytest.raises(RagError, match="--port N, or RAG_API_PORT=N"):
            check_port("127.0.0.1", port, env="RAG_API_PORT")
    check_port("127.0.0.1", port)  # free again once its server is gone
    with pytest.raises(RagError, match=r"cannot listen on 192\.0\.2\.1 port \d+: .*--host"):  # an address not of this machine
        check_port("192.0.2.1", port)


def test_the_printed_address_is_one_a_browser_opens():
    assert browser_url("127.0.0.1", 7860) == "http://127.0.0.1:7860"
    assert browser_url("0.0.0.0", 7860) == "http://localhost:7860"  # listening everywhere, reached here
    assert browser_url("::", 80) == "http://localhost:80"
    assert browser_url("::1", 8000, "/v1") == browser_url("[::1]", 8000, "/v1") == "http://[::1]:8000/v1"


def _printed(proc: subprocess.Popen, log: IO[str], prefix: str, seconds: float = 300) -> str:
    """The first line the process prints that starts with ``prefix`` (waiting for it), or a failure with the log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        log.seek(0)
        if found := [line for line in log.read().splitlines() if line.startswith(prefix)]:
            return found[0]
        time.sleep(0.2)
    log.seek(0)
    pytest.fail(f"no {prefix!r} line (exit {proc.poll()}):\n{log.read()}")


@pytest.mark.real_models
@pytest.mark.parametrize("api", [False, True], ids=["chat", "chat-and-api"])
def test_ui_py_prints_the_url_it_serves_once_it_listens(api: bool, seed_index: Path, tmp_path: Path):
    port = free_port()
    index = tmp_path / "idx"
    shutil.copytree(seed_index, index)
    log = (tmp_path / "ui.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "ui.py"), "--port", str(port), "--index", str(index), *(["--api"] if api else [])],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
        # Loaded in the background; the page does not wait for it. The default model takes seconds
        # to load, and llama-cpp-python silences stdout meanwhile: the line must survive that.
        env=_env(RAG_LLM="smollm2-135m-instruct") if api else _env(),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert _printed(proc, log, "Chat: ") == f"Chat: {url}"
        # Printed once listening: the first request, right after the line, is served.
        with urllib.request.urlopen(f"{url}/", timeout=30) as response:
            assert response.status == 200
            assert "Index: 1 article, " in response.read().decode()  # the index given, not ./index
        assert not (tmp_path / "index").exists()
        if api:
            assert _printed(proc, log, "API: ") == f"API:  {url}/v1"
            with urllib.request.urlopen(f"{url}/v1/articles", timeout=30) as response:
                (article,) = json.load(response)["data"]
            with sqlite3.connect(index / "store.sqlite") as db:
                assert db.execute("SELECT id FROM articles").fetchall() == [(article["id"],)]
        else:
            log.seek(0)
            assert "API:" not in log.read()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
