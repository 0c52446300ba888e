"""The conversations file: ``conversations.sqlite`` beside the index (its own database, so a
rebuilt or repaired index keeps them and an index copied without it is the same index).

Every change is one SQLite transaction (WAL), so a crash keeps either the old or the new state,
never half a turn. ``PRAGMA user_version`` holds the schema number; newer files are refused.
Each call opens its own short connection: the web app's threads never share one, and nothing
stays open after a call (an index can be moved or deleted as soon as the app is done)."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from rag.conversations.records import Conversation, ConversationSummary, Feedback, Turn, answer_from_record, answer_record
from rag.errors import RagError
from rag.index.files import write_error
from rag.results import Answer

FILENAME = "conversations.sqlite"
LOCAL_USER = ""  # no login: one local user (a login name is never empty, so it cannot collide)
TITLE_CHARS = 80  # a title made from the first question is cut here, at a word
MAX_TITLE_CHARS = 200

_SCHEMA_1 = """
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX conversations_by_user ON conversations (user, updated_at);
CREATE TABLE turns (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,            -- rag.conversations.records.answer_record, as JSON
    filter_note TEXT NOT NULL DEFAULT '',
    asked_at TEXT NOT NULL,
    feedback TEXT CHECK (feedback IN ('up', 'down')),
    feedback_at TEXT,
    PRIMARY KEY (conversation_id, position)
);
"""
MIGRATIONS: dict[int, str] = {1: _SCHEMA_1}
SCHEMA_VERSION = max(MIGRATIONS)


class ConversationNotFound(RagError):
    """No conversation with that id belongs to this user (another user's is not found either)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def title_from(question: str) -> str:
    """The first question, on one line, cut at a word to ``TITLE_CHARS``."""
    words = " ".join(question.split())
    if len(words) <= TITLE_CHARS:
        return words or "Untitled conversation"
    return words[:TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"


class ConversationStore:
    """The conversations of every user of one index; :meth:`of` gives one user's."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / FILENAME

    def of(self, user: str | None = None) -> Conversations:
        """``user``'s conversations (None or "": the local user of an app without a login)."""
        return Conversations(self, user or LOCAL_USER)

    @contextmanager
    def connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection for one call; ``write`` runs it in one immediate transaction."""
        writable = os.access(self.path.parent, os.W_OK)
        if write and not writable:
            raise RagError(f"index {self.path.parent} is read-only: conversations cannot be saved there")
        if not self.path.exists() and not write:  # nothing saved yet: a read makes no file
            db = sqlite3.connect(":memory:")
        elif writable:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        else:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=10, isolation_level=None)
        try:
            if write:
                db.execute("PRAGMA foreign_keys = ON")
                self._migrate(db)
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            else:
                self._check_version(db)
                yield db
        except sqlite3.DatabaseError as e:  # a full disk is said as such; anything else is a damaged file
            raise write_error(self.path, e) or RagError(
                f"{self.path}: {e}; move the file aside to start a new conversations file") from None
        finally:
            db.close()

    def _check_version(self, db: sqlite3.Connection) -> int:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise RagError(f"{self.path} has schema {version}; this version of rag reads up to {SCHEMA_VERSION}. Upgrade rag.")
        return version

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Create or upgrade the tables, in one transaction (another process may be doing the same:
        the version is read again once the write lock is held)."""
        if self._check_version(db) == SCHEMA_VERSION:
            return
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            for number in range(self._check_version(db) + 1, SCHEMA_VERSION + 1):
                for statement in filter(str.strip, MIGRATIONS[number].split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


class Conversations:
    """One user's conversations. Every call that names a conversation checks it is this user's:
    an id from another user is :class:`ConversationNotFound`, the same as an id that never was."""

    def __init__(self, store: ConversationStore, user: str) -> None:
        self.store = store
        self.user = user

    def list(self) -> list[ConversationSummary]:
        """This user's conversations, the most recently changed first."""
        with self.store.connect() as db:
            if not _has_tables(db):
                return []
            rows = db.execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at, count(t.position) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation_id = c.id WHERE c.user = ? GROUP BY c.id "
                "ORDER BY c.updated_at DESC, c.rowid DESC", (self.user,)).fetchall()
        return [ConversationSummary(r[0], r[1], _time(r[2]), _time(r[3]), r[4]) for r in rows]

    def get(self, conversation_id: str) -> Conversation:
        with self.store.connect() as db:
            row = self._row(db, conversation_id)
            turns = db.execute(
                "SELECT position, answer, asked_at, feedback, filter_note FROM turns WHERE conversation_id = ? "
                "ORDER BY position", (conversation_id,)).fetchall()
        try:
            loaded = [Turn(p, answer_from_record(json.loads(a)), _time(t), f, n) for p, a, t, f, n in turns]
        except (ValueError, KeyError, TypeError) as e:
            raise RagError(f"conversation {conversation_id} in {self.store.path} cannot be read: {e}") from None
        return Conversation(conversation_id, self.user, row[0], _time(row[1]), _time(row[2]), loaded)

    def all(self) -> list[Conversation]:
        """Every conversation of this user, with its turns, newest first."""
        return [self.get(s.id) for s in self.list()]

    def create(self, title: str) -> ConversationSummary:
        """A new, empty conversation called ``title``."""
        title, now, cid = _clean_title(title), _now(), uuid.uuid4().hex
        with self.store.connect(write=True) as db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)", (cid, self.user, title, now, now))
        return ConversationSummary(cid, title, _time(now), _time(now), 0)

    def save(self, conversation_id: str | None, answers: Sequence[Answer], filter_notes: Sequence[str] = ()) -> str:
        """Keep the saved conversation equal to a chat's ``answers`` (the answers in order): new
        answers at the end are appended, and a changed last answer (regenerated) replaces the
        saved one (its feedback goes with it). A chat that no longer matches what is saved (another
        tab added turns meanwhile, or the conversation was deleted) is saved as a new
        conversation, so nothing is lost. Returns the id the chat is saved under ("" for no answers)."""
        if not answers:
            return conversation_id or ""
        notes = [*filter_notes, *[""] * len(answers)][: len(answers)]
        records = [answer_record(a) for a in answers]
        with self.store.connect(write=True) as db:
            saved = self._saved_records(db, conversation_id) if conversation_id else None
            if saved is None:
                conversation_id, now = uuid.uuid4().hex, _now()
                db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)",
                           (conversation_id, self.user, title_from(answers[0].question), now, now))
                saved = []
            if records == saved[: len(records)]:
                return conversation_id or ""  # nothing new (a regenerate that was stopped keeps the saved answer)
            keep = len(saved)
            if keep == len(records) and keep and saved[:-1] == records[:-1] and saved[-1] != records[-1]:
                keep -= 1  # regenerated
            elif saved != records[:keep]:
                return self._save_copy(db, conversation_id or "", records, notes)
            if keep == len(records):
                return conversation_id or ""
            db.execute("DELETE FROM turns WHERE conversation_id = ? AND position >= ?", (conversation_id, keep))
            self._insert(db, conversation_id or "", records, notes, keep)
        return conversation_id or ""

    def rename(self, conversation_id: str, title: str) -> None:
        title = _clean_title(title)
        with self.store.connect(write=True) as db:
            self._row(db, conversation_id)
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def delete(self, conversation_id: str) -> None:
        """Delete the conversation and its turns, feedback included."""
        with self.store.connect(write=True) as db:
            self._row(db, conversation_id)
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def set_feedback(self, conversation_id: str, position: int, feedback: Feedback | None) -> None:
        """Thumbs up ("up"), down ("down") or neither (None) on the answer at ``position``."""
        if feedback not in ("up", "down", None):
            raise RagError(f"feedback must be 'up', 'down' or None, not {feedback!r}")
        with self.store.connect(write=True) as db:
            self._row(db, conversation_id)
            changed = db.execute("UPDATE turns SET feedback = ?, feedback_at = ? WHERE conversation_id = ? AND position = ?",
                                 (feedback, _now() if feedback else None, conversation_id, position)).rowcount
            if not changed:
                raise RagError(f"conversation {conversation_id} has no answer {position + 1}")

    # ------------------------------------------------------------ helpers

    def _row(self, db: sqlite3.Connection, conversation_id: str) -> tuple[str, str, str]:
        row = db.execute("SELECT title, created_at, updated_at FROM conversations WHERE id = ? AND user = ?",
                         (conversation_id, self.user)).fetchone() if _has_tables(db) else None
        if row is None:
            raise ConversationNotFound(f"no conversation {conversation_id!r} (it may have been deleted)")
        return row

    def _saved_records(self, db: sqlite3.Connection, conversation_id: str) -> list[dict[str, object]] | None:
        if db.execute("SELECT 1 FROM conversations WHERE id = ? AND user = ?", (conversation_id, self.user)).fetchone() is None:
            return None
        rows = db.execute("SELECT answer FROM turns WHERE conversation_id = ? ORDER BY position", (conversation_id,))
        return [json.loads(r[0]) for r in rows]

    def _save_copy(self, db: sqlite3.Connection, original: str, records: list[dict[str, object]], notes: list[str]) -> str:
        title = db.execute("SELECT title FROM conversations WHERE id = ?", (original,)).fetchone()[0]
        cid, now = uuid.uuid4().hex, _now()
        db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)", (cid, self.user, _clean_title(f"{title} (copy)"), now, now))
        self._insert(db, cid, records, notes, 0)
        return cid

    @staticmethod
    def _insert(db: sqlite3.Connection, cid: str, records: list[dict[str, object]], notes: list[str], start: int) -> None:
        now = _now()
        db.executemany("INSERT INTO turns (conversation_id, position, question, answer, filter_note, asked_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       [(cid, i, str(records[i]["question"]), json.dumps(records[i], ensure_ascii=False), notes[i], now)
                        for i in range(start, len(records))])
        db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, cid))


def _has_tables(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'conversations'").fetchone() is not None


def _clean_title(title: str) -> str:
    title = " ".join((title or "").split())
    if not title:
        raise RagError("a conversation's title cannot be empty")
    if len(title) > MAX_TITLE_CHARS:
        raise RagError(f"a title is at most {MAX_TITLE_CHARS} characters (this one has {len(title)})")
    return title

