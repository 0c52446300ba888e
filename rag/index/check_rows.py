"""`rag check` on the rows themselves: bytes that are not UTF-8, article rows and stored vectors
that differ from their checksums (rag.index.migrations), vectors that are not finite unit vectors,
near-duplicate bands that are not their article's; and the repairs that need no re-ingest: a
chunk's text re-derived from its article, a vector re-embedded from its text (the bands are
recomputed from the signatures by rag.index.check)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from rag.documents.articles import Article
from rag.documents.chunking import embedding_text
from rag.documents.dedup import NUM_PERM
from rag.index import migrations
from rag.index.near_duplicates import band_keys

if TYPE_CHECKING:
    from rag.index.check import CheckReport, Problem
    from rag.models.embedding import Embedder

_TEXT_COLUMNS = ("id", "title", "text", "source", "url", "author", "published", "origin", "duplicate_of")


def _short(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" … (+{len(items) - n} more)" if len(items) > n else "")


def _label(raw: bytes | None) -> str:
    return migrations.lenient_text(raw or b"")[:60]


def check_articles(db: sqlite3.Connection, report: CheckReport) -> None:
    """Articles whose bytes are not UTF-8, or that differ from their checksum."""
    cols = ", ".join(migrations.ARTICLE_COLUMNS)
    bad_text: list[str] = []
    damaged: list[tuple[str, str]] = []  # (id, origin)
    for row in db.execute(f"SELECT {cols}, checksum FROM articles"):
        values, recorded = row[:-1], row[-1]
        article = migrations.lenient_text(values[0])
        named = dict(zip(migrations.ARTICLE_COLUMNS, values, strict=True))
        for column in _TEXT_COLUMNS:
            try:
                (named[column] or b"").decode("utf-8")
            except UnicodeDecodeError as e:
                bad_text.append(f"article {article} ('{_label(named['title'])}'): {column} at byte {e.start}")
        if recorded is None or migrations.lenient_text(recorded) != migrations.row_checksum(values):
            damaged.append((article, _label(named["origin"])))
    if bad_text:
        report.add("text-encoding", f"{len(bad_text)} article field(s) hold bytes that are not UTF-8: {_short(bad_text)}",
                   items=())
    if damaged:
        report.add("article-checksum", f"{len(damaged)} article row(s) differ from their checksum (damaged on disk): "
                   f"{_short([f'{i} ({o})' for i, o in damaged])}; --repair removes them, then ingest their files again",
                   items=tuple(i for i, _ in damaged))


def check_chunk_text(db: sqlite3.Connection, report: CheckReport) -> None:
    bad = []
    for chunk_id, article_id, text in db.execute("SELECT id, article_id, text FROM chunks"):
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as e:
            bad.append((chunk_id, f"chunk {chunk_id} of article {migrations.lenient_text(article_id)} (byte {e.start})"))
    if bad:
        report.add("text-encoding", f"{len(bad)} chunk(s) hold bytes that are not UTF-8: {_short([b for _, b in bad])}; "
                   "--repair re-derives their text from the article", items=tuple(str(i) for i, _ in bad))


def check_vectors(db: sqlite3.Connection, dim: int, report: CheckReport) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(every chunk id, the ids of sound vectors, those vectors), all sorted by id."""
    all_ids, good_ids, good, bad = [], [], [], []
    for chunk_id, article_id, data, recorded in db.execute(
        "SELECT id, article_id, vector, vector_checksum FROM chunks ORDER BY id"
    ):
        all_ids.append(chunk_id)
        why = None
        if len(data) != dim * 4:
            why = f"{len(data)} bytes, not {dim} float32 values"
        elif recorded is None or migrations.lenient_text(recorded) != migrations.vector_checksum(data):
            why = "differs from its checksum"
        elif migrations.bad_vectors(np.frombuffer(data, dtype=np.float32)[None, :])[0]:
            why = "not a finite unit vector"
        if why:
            bad.append((chunk_id, f"chunk {chunk_id} of article {migrations.lenient_text(article_id)}: {why}"))
        else:
            good_ids.append(chunk_id)
            good.append(np.frombuffer(data, dtype=np.float32))
    if bad:
        report.add("chunk-vector", f"{len(bad)} stored vector(s) are damaged ({_short([b for _, b in bad])}); they are "
                   "left out of search, and --repair re-embeds them from their text (with the index's embedder)",
                   items=tuple(str(i) for i, _ in bad))
    vectors = np.stack(good) if good else np.zeros((0, dim), dtype=np.float32)
    return np.array(all_ids, dtype=np.int64), np.array(good_ids, dtype=np.int64), vectors


def check_bands(db: sqlite3.Connection, report: CheckReport) -> None:
    """Every article with a signature has exactly its bands in ``minhash_bands``, and no other
    rows are there: a missing band hides copies of the article, a stray one finds a removed one."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name='minhash_bands'").fetchone():
        report.add("minhash-bands", "the near-duplicate table minhash_bands is missing, so copies of indexed articles "
                   "go unnoticed; --repair rebuilds it from the stored signatures")
        return
    wrong = []
    for article_id, data in db.execute("SELECT id, minhash FROM articles"):
        sig = migrations.signature_of(data)
        stored = db.execute("SELECT band, key FROM minhash_bands WHERE article_id=CAST(? AS TEXT) ORDER BY band", (article_id,)).fetchall()
        if stored != (band_keys(sig) if sig is not None else []):
            wrong.append(migrations.lenient_text(article_id))
    stray = db.execute(
        "SELECT count(*) FROM minhash_bands b WHERE NOT EXISTS "
        "(SELECT 1 FROM articles a WHERE a.id = b.article_id AND length(a.minhash) = ?)", (NUM_PERM * 8,)
    ).fetchone()[0]
    if wrong or stray:
        what = [f"{len(wrong)} article(s) with other bands: {_short(wrong)}"] if wrong else []
        what += [f"{stray} row(s) of no article with a signature"] if stray else []
        report.add("minhash-bands", f"the near-duplicate bands disagree with the signatures ({'; '.join(what)}), so "
                   "copies may be missed or misattributed; --repair rebuilds them from the stored signatures",
                   items=tuple(wrong))


def check_rows(db: sqlite3.Connection, dim: int | None, report: CheckReport) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Every row-level check, reading the raw bytes (so damage is named, not an exception)."""
    factory = db.text_factory
    db.text_factory = bytes
    try:
        check_articles(db, report)
        check_chunk_text(db, report)
        check_bands(db, report)
        if dim is None:
            ids = np.array([r[0] for r in db.execute("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)
            return ids, ids, None
        return check_vectors(db, dim, report)
    finally:
        db.text_factory = factory


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def repair_rows(
    db: sqlite3.Connection, problems: list[Problem], embedder: Embedder | None,
    load_embedder: Callable[[], Embedder] | None, notes: list[str],
) -> list[str]:
    """Inside the caller's write transaction: re-derive damaged chunk texts from their articles,
    then re-embed damaged vectors from those texts."""
    done = []
    rederive = sorted({int(i) for p in problems if p.code in ("chunk-text", "text-encoding") for i in p.items})
    if rederive:
        db.executemany(
            "UPDATE chunks SET text = (SELECT substr(a.text, chunks.start + 1, chunks.end - chunks.start) "
            "FROM articles a WHERE a.id = chunks.article_id) WHERE id = ?", [(i,) for i in rederive])
        done.append(f"re-derived the chunk text of {len(rederive)} chunk(s) from their articles")
    damaged = sorted({int(i) for p in problems if p.code == "chunk-vector" for i in p.items})
    rows = [r for i in damaged for r in db.execute(
        "SELECT c.id, c.text, a.title, a.published FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id = ?",
        (i,))]
    if rows and embedder is None and load_embedder is not None:
        try:
            embedder = load_embedder()
        except Exception as e:  # an embedder that cannot load leaves the vectors out of search, as before
            notes.append(f"could not load the index's embedder ({e})")
    if rows and embedder is None:
        notes.append(f"{len(rows)} damaged vector(s) were not re-embedded: that needs the index's embedder "
                     "(`rag check --repair` loads it; from Python, RAG.check(repair=True))")
        return done
    if rows:
        assert embedder is not None
        texts = [embedding_text(Article(title=t, text="", key="", published=_date(p)), c) for _, c, t, p in rows]
        vectors = np.ascontiguousarray(embedder.embed(texts), dtype=np.float32)
        updates = [(v.tobytes(), migrations.vector_checksum(v.tobytes()), r[0]) for r, v in zip(rows, vectors, strict=True)]
        db.executemany("UPDATE chunks SET vector = ?, vector_checksum = ? WHERE id = ?", updates)
        done.append(f"re-embedded {len(rows)} chunk(s) from their text")
    return done
