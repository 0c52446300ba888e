"""Helpers shared by the crash-safety and concurrency tests: generated articles, worker
processes, and a direct look at what the index holds."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).resolve().parent / "ingest_worker.py"
RAG_CLI = Path(sys.executable).with_name("rag")

_WORDS = ["harbour", "council", "river", "bridge", "tram", "election", "budget", "museum", "festival", "storm", "ferry", "school", "hospital", "market", "railway", "airport", "library", "stadium", "parliament", "minister", "mayor", "union", "strike", "factory", "forest", "glacier", "drought", "harvest", "vaccine", "satellite", "telescope", "reactor", "pipeline", "tunnel", "canal", "lighthouse"]


def write_articles(path: Path, n: int, tag: str, sentences: int = 24, seed: int = 0) -> Path:
    """A JSONL file of ``n`` articles with ids ``<tag>-0000``…; ~24 sentences give 2-3 chunks each."""
    rng = random.Random(f"{tag}-{seed}")
    with path.open("w") as f:
        for i in range(n):
            body = " ".join(
                f"The {rng.choice(_WORDS)} {rng.choice(_WORDS)} report {tag} {i} part {s} mentions "
                f"{rng.choice(_WORDS)} and {rng.choice(_WORDS)}."
                for s in range(sentences)
            )
            f.write(json.dumps({
                "id": f"{tag}-{i:04d}", "title": f"{tag} story {i}", "body": body,
                "source": f"{tag} wire", "published_at": f"2024-03-{1 + i % 28:02d}",
            }) + "\n")
    return path


def start_worker(index: Path, *paths: Path, batch: int = 8, die_at: str | None = None, hold: Path | None = None,
                 no_wait: bool = False, remove: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    args = [sys.executable, str(WORKER), str(index), *map(str, paths), "--batch", str(batch)]
    args += [a for ref in remove for a in ("--remove", ref)]
    if die_at:
        args += ["--die-at", die_at]
    if hold:
        args += ["--hold", str(hold)]
    if no_wait:
        args.append("--no-wait")
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _env() -> dict[str, str]:
    env = dict(os.environ, RAG_SEEDS_DIR="", PYTHONUNBUFFERED="1")
    env.pop("RAG_INDEX_DIR", None)
    return env


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RAG_CLI), *args], capture_output=True, text=True, timeout=timeout, env=_env(), check=False)


def wait_for_line(proc: subprocess.Popen[str], prefix: str) -> str:
    """Read the worker's stdout until a line starting with ``prefix`` (fails if it exits first)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"worker exited ({proc.wait()}) before printing {prefix!r}: {proc.stderr.read() if proc.stderr else ''}")


def chunks_by_article(index: Path) -> tuple[list[str], dict[str, list[str]], int, int]:
    """(article ids, chunk texts per article in order, chunk count, FTS row count), read directly."""
    db = sqlite3.connect(index / "store.sqlite")
    try:
        articles = [r[0] for r in db.execute("SELECT id FROM articles ORDER BY id")]
        chunks: dict[str, list[str]] = {}
        for article_id, text in db.execute("SELECT article_id, text FROM chunks ORDER BY article_id, ordinal"):
            chunks.setdefault(article_id, []).append(text)
        n_chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        n_fts = db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
    finally:
        db.close()
    return articles, chunks, n_chunks, n_fts


def generation(index: Path) -> int:
    if not (index / "store.sqlite").exists():
        return -1
    db = sqlite3.connect(index / "store.sqlite", timeout=30)
    try:
        row = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
    except sqlite3.OperationalError:  # schema not created yet
        return -1
    finally:
        db.close()
    return int(row[0]) if row else -1


# ---------------------------------------------------------------- real read-only and full filesystems


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


class Mounts:
    """Real read-only views and small filesystems (root only; tests skip elsewhere). Root ignores
    file modes, so a read-only bind mount is what makes files truly unwritable."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []

    def read_only_view(self, source: Path, target: Path) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        if not (_mount("--bind", str(source), str(target)) and _mount("-o", "remount,ro,bind", str(target))):
            _umount(target)
            import pytest

            pytest.skip("needs root to bind-mount a read-only view")
        self.mounted.append(target)
        return target

    def small_disk(self, target: Path, size: str = "2m") -> Path:
        target.mkdir(parents=True, exist_ok=True)
        if not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)):
            import pytest

            pytest.skip("needs root to mount a small tmpfs")
        self.mounted.append(target)
        return target

    def close(self) -> None:
        for path in reversed(self.mounted):
            _umount(path)
