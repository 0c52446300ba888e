"""The `rag` command, run as users run it (a real subprocess, real models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DATA, ROOT

RAG = [sys.executable, "-m", "rag.cli"]


def run(args: list[str], index: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "RAG_INDEX_DIR": str(index), **env}
    return subprocess.run(RAG + args, capture_output=True, text=True, env=environ, timeout=600, cwd=ROOT)


@pytest.mark.real_models
def test_ingest_info_search_rm(tmp_path: Path):
    index = tmp_path / "idx"
    bad = tmp_path / "bad.json"
    bad.write_text('{"title": "cut')
    result = run(["ingest", str(DATA), str(bad)], index)
    assert result.returncode == 0, result.stderr
    assert "7 added, 0 updated, 0 duplicates skipped, 1 failed" in result.stdout
    assert f"failed: {bad}: invalid JSON" in result.stderr
    assert "chunk" in result.stderr  # the progress bar

    info = run(["info", "--articles"], index)
    assert "articles:  7" in info.stdout and "all-MiniLM-L6-v2 (dim 384)" in info.stdout
    assert "Council approves new tram line" in info.stdout

    search = run(["search", "avalanche warning level", "-k", "2"], index)
    assert search.returncode == 0
    assert "Avalanche warning raised in three valleys" in search.stdout.splitlines()[0]

    article_id = next(line.split()[0] for line in info.stdout.splitlines() if "tram line" in line)
    removed = run(["rm", article_id], index)
    assert f"removed 1 article(s): {article_id}" in removed.stdout
    assert "articles:  6" in run(["info"], index).stdout

    missing = run(["rm", "no-such-article"], index)
    assert missing.returncode == 2 and "error: no indexed article matches 'no-such-article'" in missing.stderr


@pytest.mark.real_models
def test_ask_streams_an_answer_with_sources(tmp_path: Path):
    index = tmp_path / "idx"
    result = run(["ask", "How many days of national mourning did Türkiye declare?"], index, RAG_LLM="smollm2-135m-instruct")
    assert result.returncode == 0, result.stderr
    assert "Sources:" in result.stdout
    as_json = run(["ask", "--json", "What did Lavrov say about Brazil?"], index, RAG_LLM="smollm2-135m-instruct")
    data = json.loads(as_json.stdout)
    assert data["refused"] is True and data["citations"] == []


def test_bad_model_name_is_a_clear_error(tmp_path: Path):
    result = run(["--llm", "no-such-model", "ask", "Where?"], tmp_path / "idx", RAG_EMBEDDER="all-MiniLM-L6-v2")
    assert result.returncode == 2
    assert "error: LLM 'no-such-model' is neither a bundled model" in result.stderr


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:3]]
    assert blocks[0].endswith("python ui.py")
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == blocks[1]


def test_a_bad_setting_in_the_environment_is_named_without_a_traceback(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "RAG_EMBED_DTYPE": "fp8", "RAG_SEEDS_DIR": ""}
    r = subprocess.run([sys.executable, "-m", "rag", "--index", str(tmp_path / "i"), "info"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "RAG_EMBED_DTYPE" in r.stderr and "bfloat16" in r.stderr
