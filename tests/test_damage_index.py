"""The index under damage (issue 13, part 3): a missing database next to its manifest, invalid
UTF-8 in stored text and in checksum files, flipped bits in stored vectors and article rows, a
SIGKILL while the database is first created, schema migration of an existing index, and
symlinked lock files. Each fault is detected by `rag check`, never silently used, and repaired
where the data allows it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag import RAG, IndexCorruptError, RagError, Settings, check_index
from rag.index.check import repair_index, schema_tables
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .conftest import DATA, ROOT, SEEDS
from .index_helpers import chunks_by_article, run_cli, write_articles


def _open(index: Path, embedder=None, seeds: Path | None = None) -> RAG:
    return RAG.open(settings=Settings(index_dir=index, seeds_dir=seeds), embedder=embedder or HashingEmbedder(),
                    llm=ExtractiveFakeGenerator(), seed=seeds is not None)


def _indexed(tmp_path: Path, embedder=None) -> Path:
    index = tmp_path / "index"
    rag = _open(index, embedder)
    rag.add([DATA])
    rag.close()
    return index


def _sql(index: Path, sql: str, *params: object) -> list[tuple]:
    db = sqlite3.connect(index / "store.sqlite", isolation_level=None)
    db.text_factory = bytes
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def _codes(report) -> set[str]:
    return {p.code for p in report.errors}


# ---------------------------------------------------------------- the database itself missing


@pytest.mark.parametrize("damage", ["deleted", "emptied", "tables-dropped"])
def test_missing_database_next_to_a_manifest_is_an_error_with_a_recovery(tmp_path: Path, damage: str):
    index = _indexed(tmp_path)
    if damage == "tables-dropped":
        _sql(index, "DROP TABLE chunks_fts")
        _sql(index, "DROP TABLE chunks")
        _sql(index, "DROP TABLE articles")
    else:
        for f in index.glob("store.sqlite*"):
            f.unlink()
        if damage == "emptied":
            (index / "store.sqlite").write_bytes(b"")
    for seeds in (None, SEEDS):  # never opens empty, never re-seeds
        with pytest.raises(IndexCorruptError, match="store.sqlite") as e:
            _open(index, seeds=seeds)
        assert "backup" in str(e.value) and "ingest" in str(e.value)
    assert (index / "store.sqlite").exists() == (damage != "deleted")  # opening created nothing
    report = check_index(index)
    assert not report.ok and "database-missing" in _codes(report), report.text()
    cli = run_cli("--index", str(index), "check")
    assert cli.returncode == 1 and "INCONSISTENT" in cli.stdout and "consistent (" not in cli.stdout, cli.stdout
    repaired = run_cli("--index", str(index), "check", "--repair")
    assert repaired.returncode == 1 and "cannot be repaired automatically" in repaired.stdout, repaired.stdout


_DIE_AT_STATEMENT = """
import os, signal, sqlite3, sys
from pathlib import Path
sys.path.insert(0, {root!r})
n = int(sys.argv[2])
count = 0
class Dying(sqlite3.Connection):
    def _tick(self):
        global count
        count += 1
        if count == n:
            os.kill(os.getpid(), signal.SIGKILL)
    def execute(self, *a, **k):
        self._tick()
        return super().execute(*a, **k)
    def executescript(self, *a, **k):
        self._tick()
        return super().executescript(*a, **k)
real_connect, real_replace = sqlite3.connect, os.replace
sqlite3.connect = lambda *a, **k: real_connect(*a, **{{**k, "factory": Dying}})
def replace(src, dst, *a, **k):  # every rename of the creation is a kill point too
    Dying._tick(None)
    return real_replace(src, dst, *a, **k)
os.replace = replace
from rag import RAG, Settings
from rag.testing import HashingEmbedder
RAG.open(settings=Settings(index_dir=Path(sys.argv[1]), seeds_dir=None), embedder=HashingEmbedder(), seed=False).close()
print("created")
"""


def test_check_requires_every_table_of_the_schema_the_migrations_create(tmp_path: Path):
    built = _indexed(tmp_path)
    tables = {r[0].decode() for r in _sql(built, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    # The list comes from the migrations (feeds and feed_items came with schema 4, after the list was written
    # by hand); the bands are left to their own repairable check, sqlite_sequence is SQLite's own.
    assert schema_tables() == tables - {"minhash_bands", "sqlite_sequence"}
    assert {"meta", "articles", "chunks", "chunks_fts", "feeds"} <= schema_tables()
    for table in sorted(schema_tables() - {"articles"}):  # without articles it is no index at all (above)
        index = tmp_path / table
        shutil.copytree(built, index)
        _sql(index, f"DROP TABLE {table}")
        report = check_index(index)
        (problem,) = [p for p in report.errors if p.code == "database"]
        assert f"'{table}'" in problem.message and not problem.repairable, report.text()
        assert "not an index database" in problem.message
        assert repair_index(index).repaired == []  # nothing is "repaired" around a missing table


def test_sigkill_while_the_database_is_first_created_leaves_an_index_that_opens(tmp_path: Path):
    script = tmp_path / "create.py"
    script.write_text(_DIE_AT_STATEMENT.format(root=str(ROOT)))
    articles = write_articles(tmp_path / "a.jsonl", 4, "new")
    killed = 0
    for n in range(1, 60):  # creating the database runs 40 statements (schema 3)
        index = tmp_path / f"index-{n}"
        proc = subprocess.run([sys.executable, str(script), str(index), str(n)], capture_output=True, text=True, timeout=120)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        killed += 1
        repaired = repair_index(index) if (index / "manifest.json").exists() else None
        assert repaired is None or repaired.ok, repaired.text()
        rag = _open(index)  # opens as a new index (or the repaired one)
        assert rag.add([articles]).added and rag.search("report", k=1)
        rag.close()
        assert check_index(index).ok, check_index(index).text()
    assert killed >= 3 and proc.returncode == 0, (killed, proc.stderr)


def test_database_left_empty_by_an_older_version_killed_while_creating_is_repaired(tmp_path: Path):
    """Older versions wrote the manifest first: a kill then left it beside an empty database.
    No FAISS copy exists, so nothing was ever committed and `check --repair` re-creates it."""
    index = tmp_path / "index"
    _open(index).close()
    for f in index.glob("store.sqlite*"):
        f.unlink()
    (index / "store.sqlite").write_bytes(b"")
    report = check_index(index)
    assert "database-missing" in _codes(report)
    repaired = run_cli("--index", str(index), "check", "--repair")
    assert repaired.returncode == 0 and "re-created" in repaired.stdout, repaired.stdout
    rag = _open(index)
    assert rag.add([DATA]).added
    rag.close()


# ---------------------------------------------------------------- invalid UTF-8


def test_invalid_utf8_byte_in_a_chunk_is_diagnosed_searchable_and_repaired(tmp_path: Path):
    index = _indexed(tmp_path)
    [(chunk_id, article_id, text)] = _sql(index, "SELECT c.id, c.article_id, c.text FROM chunks c JOIN articles a "
                                          "ON a.id = c.article_id WHERE a.title LIKE 'Avalanche%' AND c.ordinal = 0")
    broken = bytearray(text)
    broken[5] = 0xFF  # never valid in UTF-8
    _sql(index, "UPDATE chunks SET text = CAST(? AS TEXT) WHERE id = ?", bytes(broken), chunk_id)

    report = check_index(index)
    assert "text-encoding" in _codes(report), report.text()
    assert f"chunk {chunk_id}" in report.text() and article_id.decode() in report.text()
    cli = run_cli("--index", str(index), "check")
    assert cli.returncode == 1 and "cannot check" not in cli.stdout + cli.stderr and str(chunk_id) in cli.stdout

    rag = _open(index)
    for mode in ("dense", "bm25", "hybrid"):  # every path that reads the chunk's text
        hits = rag.search("avalanche warning", k=5, mode=mode)
        assert any(h.chunk_id == chunk_id for h in hits)
    repaired = rag.check(repair=True)
    rag.close()
    assert repaired.ok and repaired.problems == [], repaired.text()
    assert any("chunk text" in line for line in repaired.repaired)
    assert _sql(index, "SELECT text FROM chunks WHERE id = ?", chunk_id) == [(text,)]


def test_non_utf8_checksum_sidecar_is_diagnosed_and_rebuilt(tmp_path: Path, caplog):
    index = _indexed(tmp_path)
    [sidecar] = index.glob("vectors.*.faiss.sha256")
    sidecar.write_bytes(b"\xff\xfe\x80 not a digest \xc3\x28\n")
    report = check_index(index)
    assert _codes(report) == {"faiss-untrusted"}, report.text()
    rag = _open(index)  # no crash: the copy is not trusted and is rebuilt
    assert rag.search("avalanche warning", k=1)[0].article.title.startswith("Avalanche")
    rag.close()
    assert "not trusted" in caplog.text
    assert check_index(index).problems == []

    sidecar = next(index.glob("vectors.*.faiss.sha256"))
    sidecar.write_bytes(b"\xff" * 70)
    assert repair_index(index).problems == []


# ---------------------------------------------------------------- flipped bits


def _flip_exponent(index: Path, title: str) -> tuple[int, bytes]:
    [(chunk_id, vector)] = _sql(index, "SELECT c.id, c.vector FROM chunks c JOIN articles a ON a.id = c.article_id "
                                "WHERE a.title LIKE ? AND c.ordinal = 0", title + "%")
    values = np.frombuffer(vector, dtype=np.uint32).copy()
    values[np.flatnonzero(np.frombuffer(vector, dtype=np.float32))[0]] ^= 1 << 30  # the exponent's top bit
    _sql(index, "UPDATE chunks SET vector = ? WHERE id = ?", values.tobytes(), chunk_id)
    return chunk_id, vector


def test_flipped_exponent_bit_in_a_stored_vector_is_detected_and_re_embedded(tmp_path: Path):
    index = _indexed(tmp_path)
    chunk_id, original = _flip_exponent(index, "Avalanche")
    report = check_index(index)
    assert "chunk-vector" in _codes(report) and "faiss-mismatch" not in _codes(report), report.text()
    assert f"{chunk_id}" in next(p.message for p in report.errors if p.code == "chunk-vector")

    for f in index.glob("vectors.*"):  # force a rebuild from SQLite: the bad vector must stay out
        f.unlink()
    rag = _open(index)
    assert all(h.score <= 1.001 for h in rag.search("avalanche warning", k=8, mode="dense"))
    rag.close()

    without = repair_index(index)  # no embedder: said so, and the bad vector is still not used
    assert "chunk-vector" in _codes(without) and "embedder" in without.text(), without.text()
    rag = _open(index)
    repaired = rag.check(repair=True)  # the facade has the embedder: re-embeds from the text
    assert repaired.ok and repaired.problems == [], repaired.text()
    assert any("re-embedded 1 chunk" in line for line in repaired.repaired)
    assert _sql(index, "SELECT vector FROM chunks WHERE id = ?", chunk_id) == [(original,)]
    top = rag.search("avalanche warning", k=8, mode="dense")
    assert top[0].article.title.startswith("Avalanche") and all(h.score <= 1.001 for h in top)
    rag.close()


@pytest.mark.real_models
def test_cli_repair_re_embeds_a_damaged_vector_with_the_index_embedder(tmp_path: Path, minilm):
    index = _indexed(tmp_path, minilm)
    chunk_id, original = _flip_exponent(index, "Avalanche")
    checked = run_cli("--index", str(index), "check")
    assert checked.returncode == 1 and str(chunk_id) in checked.stdout, checked.stdout
    repaired = run_cli("--index", str(index), "check", "--repair")
    assert repaired.returncode == 0 and "re-embedded 1 chunk" in repaired.stdout, repaired.stdout + repaired.stderr
    [(vector,)] = _sql(index, "SELECT vector FROM chunks WHERE id = ?", chunk_id)
    # Re-embedded alone rather than in its ingest batch, MiniLM's float sums differ in the last digits.
    assert float(np.frombuffer(vector, np.float32) @ np.frombuffer(original, np.float32)) > 0.999


@pytest.mark.parametrize("column", ["source", "title", "url", "published"])
def test_byte_flip_in_article_metadata_is_detected_and_repaired_by_reingest(tmp_path: Path, column: str):
    index = _indexed(tmp_path)
    [(article_id, value, origin)] = _sql(
        index, f"SELECT id, {column}, origin FROM articles WHERE title LIKE 'Avalanche%'")
    value = bytearray(value or b"x")
    value[0] ^= 0x01
    _sql(index, f"UPDATE articles SET {column} = CAST(? AS TEXT) WHERE id = ?", bytes(value), article_id.decode())
    report = check_index(index)
    assert "article-checksum" in _codes(report), report.text()
    assert article_id.decode() in report.text()
    repaired = repair_index(index)
    assert repaired.ok, repaired.text()
    assert any(origin.decode() in line for line in repaired.repaired)  # says what to ingest again
    rag = _open(index)
    assert rag.add([DATA]).added == [article_id.decode()]
    rag.close()
    assert check_index(index).problems == []


def test_invalid_utf8_in_article_metadata_is_diagnosed_not_a_crash(tmp_path: Path):
    index = _indexed(tmp_path)
    [(article_id,)] = _sql(index, "SELECT id FROM articles WHERE title LIKE 'Avalanche%'")
    _sql(index, "UPDATE articles SET source = CAST(X'C328FF' AS TEXT) WHERE id = ?", article_id.decode())
    report = check_index(index)
    assert {"text-encoding", "article-checksum"} <= _codes(report), report.text()
    rag = _open(index)
    assert len(rag.articles()) == 7 and rag.search("avalanche warning", k=1)
    rag.close()


@pytest.mark.parametrize("damage", ["band-deleted", "key-changed", "stray-row", "table-dropped"])
def test_near_duplicate_bands_that_disagree_with_the_signatures_are_found_and_rebuilt(tmp_path: Path, damage: str):
    index = _indexed(tmp_path)
    bands = sorted(_sql(index, "SELECT article_id, band, key FROM minhash_bands"))
    (article_id, _, _) = bands[0]
    _sql(index, {
        "band-deleted": "DELETE FROM minhash_bands WHERE band = 7",
        "key-changed": "UPDATE minhash_bands SET key = key + 1 WHERE band = 0 AND article_id = CAST(? AS TEXT)",
        "stray-row": "INSERT INTO minhash_bands VALUES ('no-such-article', 0, 1)",
        "table-dropped": "DROP TABLE minhash_bands",
    }[damage], *((article_id,) if damage == "key-changed" else ()))
    report = check_index(index)
    assert _codes(report) == {"minhash-bands"}, report.text()
    assert "--repair rebuilds" in report.text()
    repaired = repair_index(index)
    assert repaired.ok and repaired.problems == [], repaired.text()
    assert any("near-duplicate bands" in r for r in repaired.repaired)
    assert sorted(_sql(index, "SELECT article_id, band, key FROM minhash_bands")) == bands


# ---------------------------------------------------------------- migration


def test_an_index_of_the_previous_schema_is_migrated_with_checksums(tmp_path: Path):
    index = _indexed(tmp_path)
    _sql(index, "ALTER TABLE articles DROP COLUMN checksum")
    _sql(index, "ALTER TABLE chunks DROP COLUMN vector_checksum")
    _sql(index, "DELETE FROM meta WHERE key LIKE 'migration:%'")
    _sql(index, "PRAGMA user_version = 1")
    manifest = json.loads((index / "manifest.json").read_text())
    (index / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 1}))
    _, before, _, _ = chunks_by_article(index)

    rag = _open(index)
    assert rag.search("avalanche warning", k=1)[0].article.title.startswith("Avalanche")
    rag.close()
    assert json.loads((index / "manifest.json").read_text())["schema_version"] == 2
    assert _sql(index, "PRAGMA user_version") == [(4,)]
    assert sorted(k for (k,) in _sql(index, "SELECT key FROM meta WHERE key LIKE 'migration:%'")) == [
        b"migration:2", b"migration:3", b"migration:4"]
    assert _sql(index, "SELECT count(*) FROM chunks WHERE vector_checksum IS NULL") == [(0,)]
    assert chunks_by_article(index)[1] == before
    assert check_index(index).problems == []
    chunk_id, _ = _flip_exponent(index, "Avalanche")  # the computed checksums are real ones
    assert "chunk-vector" in _codes(check_index(index))


def test_an_index_of_schema_2_gets_its_near_duplicate_bands_from_the_stored_signatures(tmp_path: Path):
    devset = ROOT / "eval" / "devset" / "articles.jsonl"  # holds a wire story and its copy
    index = tmp_path / "index"
    rag = _open(index)
    first = rag.add([devset])
    rag.close()
    assert len(first.near_duplicates) == 1
    bands = sorted(_sql(index, "SELECT article_id, band, key FROM minhash_bands"))
    assert len(bands) == 25 * len(first.added)
    _sql(index, "DROP TABLE minhash_bands")  # what schema 2 had
    _sql(index, "DELETE FROM meta WHERE key = 'migration:3'")
    _sql(index, "PRAGMA user_version = 2")
    assert [p.code for p in check_index(index).problems] == ["schema"]  # opening upgrades it

    rag = _open(index)
    rag.close()
    assert _sql(index, "PRAGMA user_version") == [(4,)]
    assert _sql(index, "SELECT count(*) FROM meta WHERE key = 'migration:3'") == [(1,)]
    assert sorted(_sql(index, "SELECT article_id, band, key FROM minhash_bands")) == bands
    assert check_index(index).problems == []

    # The backfilled bands find copies of the old articles: a third copy of the wire story.
    [(copy_id, original_id)] = first.near_duplicates.items()
    rows = [json.loads(line) for line in devset.read_text().splitlines()]
    story = next(r for r in rows if "Skarvik" in r["title"])
    (tmp_path / "third-copy.json").write_text(json.dumps({
        "id": "third-copy", "title": "Skarvik tunnel, the regional paper's version",
        "body": story["body"].replace(" the ", " a ", 2), "published_at": "2024-05-02"}))
    rag = _open(index)
    again = rag.add([tmp_path / "third-copy.json"])
    rag.close()
    assert list(again.near_duplicates.values()) == [original_id] and len(again.added) == 1


# ---------------------------------------------------------------- lock files


@pytest.mark.parametrize("write", ["ingest", "remove"])  # the index's one writer lock, taken by every write
def test_symlinked_lock_file_never_truncates_its_target(tmp_path: Path, write: str):
    index = _indexed(tmp_path)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    (index / "ingest.lock").unlink(missing_ok=True)
    (index / "ingest.lock").symlink_to(precious)
    rag = _open(index)
    with pytest.raises(RagError, match="symbolic link"):
        if write == "ingest":
            rag.add([write_articles(tmp_path / "more.jsonl", 2, "more")])
        else:
            rag.remove(rag.articles()[0].id)
    rag.close()
    assert precious.read_text() == "keep me\n"
    cli = run_cli("--index", str(index), "check", "--repair")
    assert precious.read_text() == "keep me\n" and "Traceback" not in cli.stderr


def test_lock_file_target_outside_is_not_followed_by_check(tmp_path: Path):
    index = _indexed(tmp_path)
    (index / "ingest.lock").unlink(missing_ok=True)
    os.symlink("/nonexistent/secret", index / "ingest.lock")
    assert check_index(index).ok
