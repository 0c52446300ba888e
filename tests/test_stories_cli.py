"""`rag brief`, `rag timeline` and `rag related`, run as users run them (a real subprocess, the
real embedder), on the labelled story fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stories_helpers import FIXTURE, ROOT

RAG = [sys.executable, "-m", "rag.cli"]
pytestmark = pytest.mark.real_models


def run(args: list[str], index: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAG_INDEX_DIR": str(index), "RAG_SEEDS_DIR": ""}
    return subprocess.run(RAG + args, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("stories-cli") / "index"
    done = run(["ingest", str(FIXTURE / "articles.jsonl")], index)
    assert done.returncode == 0, done.stderr
    return index


def test_brief_prints_cited_stories_with_outlets_and_dates(index: Path):
    done = run(["brief", "--since", "7d", "--until", "2025-03-09", "--max-stories", "3"], index)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("Briefing 2025-03-03 to 2025-03-09: 3 stories from 30 articles")
    assert "1. Rotterdam" in out and "Northsea Wire, Daily Ledger, Harbour Post, Continental Times · 2025-03-03 to 2025-03-09 · 5 articles" in out
    assert "[1] " in out and "began a 48-hour strike on Monday" in out


def test_brief_json_and_topic(index: Path):
    done = run(["brief", "--since", "2025-03-03", "--until", "2025-03-09", "--topic", "wildfire near Valencia", "--json"], index)
    assert done.returncode == 0, done.stderr
    briefing = json.loads(done.stdout)
    assert briefing["topic"] == "wildfire near Valencia" and briefing["articles"] < 30
    first = briefing["stories"][0]
    assert "Valencia" in first["headline"] and first["citations"] and first["written_by"] == "extractive"


def test_timeline_prints_dated_events_with_where_the_date_came_from(index: Path):
    done = run(["timeline", "Corvel Health data breach"], index)
    assert done.returncode == 0, done.stderr
    assert "Timeline of 'Corvel Health data breach'" in done.stdout
    assert "2025-02-20  (february 20, 2025)" in done.stdout and "(article date)" in done.stdout
    events = json.loads(run(["timeline", "Corvel Health data breach", "--json"], index).stdout)["events"]
    assert [e["date"] for e in events] == sorted(e["date"] for e in events)


def test_related_by_id_prefix(index: Path):
    briefing = json.loads(run(["brief", "--since", "7d", "--until", "2025-03-09", "--json"], index).stdout)
    aid = next(a["article_id"] for s in briefing["stories"] for a in s["articles"] if a["url"].endswith("/peru-quake-toll-rises"))
    done = run(["related", aid[:10]], index)
    assert done.returncode == 0, done.stderr
    assert "Related coverage of: Peru quake death toll rises" in done.stdout
    assert "The same story (3 other articles):" in done.stdout
    assert json.loads(run(["related", aid, "--json"], index).stdout)["article"]["article_id"] == aid


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["brief", "--since", "last tuesday"], "since='last tuesday' is not a date; use YYYY-MM-DD or a span like 7d"),
        (["brief", "--since", "2025-03-09", "--until", "2025-03-01"], "since (2025-03-09) is after until (2025-03-01)"),
        (["related", "nothing-like-this"], "'nothing-like-this' matches no indexed article"),
        (["timeline", " "], "the timeline's subject is empty"),
    ],
)
def test_bad_input_is_one_clear_line(index: Path, args: list[str], message: str):
    done = run(args, index)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
