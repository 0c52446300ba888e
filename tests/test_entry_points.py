"""The ways to start rag agree: `rag …` = `python -m rag …`, and `python ui.py` = `rag ui`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag import cli
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
    assert all(flag in helped.stdout for flag in UI_FLAGS), helped.stdout
    options = [" ".join(text.split("Options:")[1].split())  # the same options, wrapped to another width
               for text in (helped.stdout, CliRunner().invoke(cli.cli, ["ui", "--help"]).output)]
    assert options[0] == options[1]
    wrong = subprocess.run([sys.executable, str(ROOT / "ui.py"), "--no-such-flag"], capture_output=True, text=True,
                           env=_env(), cwd=tmp_path, timeout=120)
    assert wrong.returncode == 2 and "No such option '--no-such-flag'" in wrong.stderr


@pytest.mark.parametrize("args", [["ui", "--index", "IDX", "--port", "8123"], ["--index", "IDX", "ui", "--port", "8123"]])
def test_rag_ui_takes_the_index_before_or_after_ui(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    launched: list[tuple[Settings, dict[str, object]]] = []
    webapp = types.ModuleType("rag.serve.web")  # not the real one: importing Gradio takes seconds
    webapp.launch = lambda settings, **kw: launched.append((settings, kw))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rag.serve.web", webapp)
    result = CliRunner().invoke(cli.cli, [str(tmp_path / a) if a == "IDX" else a for a in args])
    assert result.exit_code == 0, result.output
    ((settings, kw),) = launched
    assert settings.index_dir == tmp_path / "IDX"
    assert kw == {"host": None, "port": 8123, "api": False}


@pytest.mark.real_models
def test_ui_py_serves_the_chat_on_the_given_port_and_index(tmp_path: Path):
    port = free_port()
    index = tmp_path / "idx"
    log = (tmp_path / "ui.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "ui.py"), "--port", str(port), "--index", str(index)],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
        env=_env(RAG_LLM="smollm2-135m-instruct"),  # loaded in the background; the page does not wait for it
    )
    try:
        status, deadline = None, time.monotonic() + 300
        while status is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    status = response.status
            except OSError:
                time.sleep(0.5)
        log.seek(0)
        assert status == 200, log.read()
        assert index.is_dir() and any(index.iterdir())  # the index given, not ./index
        assert not (tmp_path / "index").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
