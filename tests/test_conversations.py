"""Saved conversations (rag.conversations): the real SQLite file beside a real index, answers
made by the pipeline over the seed article (with the instant fakes of rag.testing)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from rag import RAG, Settings
from rag.conversations import ConversationNotFound, articles_jsonl, evaluation_jsonl, markdown
from rag.conversations.records import answer_from_record, answer_record
from rag.conversations.store import FILENAME, SCHEMA_VERSION, title_from
from rag.errors import RagError
from rag.evaluation import Evaluator, open_eval_index
from rag.evaluation.questions import load_questions
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .conftest import SEEDS

MOURNING = "How many days of national mourning did Türkiye declare?"
IRAN = "What did Lavrov say about Iran?"


@pytest.fixture
def rag(tmp_path: Path):
    rag = RAG.open(settings=Settings(index_dir=tmp_path / "index", seeds_dir=SEEDS), embedder=HashingEmbedder(),
                   llm=ExtractiveFakeGenerator())
    yield rag
    rag.close()


@pytest.fixture
def answers(rag: RAG):
    first = rag.ask(MOURNING)
    second = rag.ask(IRAN, history=[(first.question, first.text)])
    refused = rag.ask("What did Lavrov say about Brazil?")
    assert first.citations and not first.refused and refused.refused
    return first, second, refused


def test_an_answer_comes_back_equal_from_its_record(answers):
    for answer in answers:
        record = json.loads(json.dumps(answer_record(answer)))
        assert answer_from_record(record) == answer
    with pytest.raises(ValueError, match="newer"):
        answer_from_record({**answer_record(answers[0]), "version": 99})


def test_save_list_rename_delete_and_reopen(rag: RAG, answers, tmp_path: Path):
    first, second, _ = answers
    chats = rag.conversations.of(None)
    assert chats.list() == [] and not (rag.store.directory / FILENAME).exists()  # a read makes no file
    cid = chats.save(None, [first])
    assert (rag.store.directory / FILENAME).is_file()
    assert chats.save(cid, [first, second]) == cid  # the next answer is appended
    assert chats.save(cid, [first, second]) == cid  # saving the same chat again changes nothing
    other = chats.save(None, [second])
    listed = chats.list()
    assert [c.id for c in listed] == [other, cid]  # newest first
    assert listed[1].title == MOURNING and listed[1].turns == 2

    chats.rename(cid, "  Mourning\nin Türkiye ")
    assert chats.get(cid).title == "Mourning in Türkiye"
    with pytest.raises(RagError, match="cannot be empty"):
        chats.rename(cid, "   ")
    chats.delete(other)
    with pytest.raises(ConversationNotFound):
        chats.get(other)
    rag.close()

    # Reopened (a restart): the conversation, its answers and their sources are all there.
    again = RAG.open(settings=Settings(index_dir=tmp_path / "index", seeds_dir=SEEDS), embedder=HashingEmbedder(),
                     llm=ExtractiveFakeGenerator())
    saved = again.conversations.of("").get(cid)
    again.close()
    assert saved.title == "Mourning in Türkiye" and saved.answers == [first, second]
    assert [t.position for t in saved.turns] == [0, 1] and saved.turns[0].feedback is None


def test_one_user_never_sees_or_changes_another_users_conversation(rag: RAG, answers):
    alice, bob, local = rag.conversations.of("alice"), rag.conversations.of("bob"), rag.conversations.of(None)
    cid = alice.save(None, [answers[0]])
    assert bob.list() == [] and local.list() == []
    for act in (lambda: bob.get(cid), lambda: bob.rename(cid, "mine"), lambda: bob.delete(cid),
                lambda: bob.set_feedback(cid, 0, "down"), lambda: local.get(cid)):
        with pytest.raises(ConversationNotFound):
            act()
    # Saving onto another user's id starts bob's own conversation; alice's is untouched.
    assert bob.save(cid, [answers[1]]) != cid
    assert alice.get(cid).answers == [answers[0]] and alice.get(cid).title == MOURNING


def test_regenerated_last_answer_replaces_the_saved_one(rag: RAG, answers):
    first, second, _ = answers
    chats = rag.conversations.of("editor")
    cid = chats.save(None, [first, second])
    chats.set_feedback(cid, 1, "up")
    again = rag.with_settings(temperature=0.8).ask(IRAN, history=[(first.question, first.text)])
    assert chats.save(cid, [first, again]) == cid
    turns = chats.get(cid).turns
    assert [t.answer for t in turns] == [first, again] and turns[1].feedback is None  # the rating was of the old words


def test_a_chat_that_no_longer_matches_is_saved_as_a_copy(rag: RAG, answers):
    first, second, refused = answers
    chats = rag.conversations.of(None)
    cid = chats.save(None, [first, second])
    copy = chats.save(cid, [first, refused, second])  # another tab changed the conversation meanwhile
    assert copy != cid and chats.get(cid).answers == [first, second]
    assert chats.get(copy).answers == [first, refused, second] and chats.get(copy).title == f"{MOURNING} (copy)"
    chats.delete(cid)
    assert chats.save(cid, [first]) not in (cid, "")  # deleted meanwhile: saved anew


def test_feedback_is_stored_with_the_answer(rag: RAG, answers):
    chats = rag.conversations.of(None)
    cid = chats.save(None, list(answers[:2]))
    chats.set_feedback(cid, 0, "up")
    chats.set_feedback(cid, 1, "down")
    chats.set_feedback(cid, 1, None)
    assert [t.feedback for t in chats.get(cid).turns] == ["up", None]
    with pytest.raises(RagError, match="no answer 3"):
        chats.set_feedback(cid, 2, "up")
    with pytest.raises(RagError, match="feedback must be"):
        chats.set_feedback(cid, 0, "meh")  # type: ignore[arg-type]


def test_markdown_export_has_the_sources(rag: RAG, answers):
    first, second, refused = answers
    chats = rag.conversations.of(None)
    cid = chats.save(None, [first, second, refused])
    text = markdown(chats.get(cid))
    article = first.citations[0].article
    assert text.startswith(f"# {MOURNING}\n")
    assert f"## {MOURNING}" in text and "## What did Lavrov say about Iran?" in text
    assert f"1. [{article.title}](<{article.url}>)" in text or f"1. {article.title}" in text
    assert article.source and article.source in text and article.published and article.published.isoformat() in text
    quote = first.citations[0].quote.strip()
    assert f"   > {' '.join(quote.split())[:40]}" in text.replace("\\", "")
    assert "[1]" in text and "No answer:" in text  # the refusal says so


def test_markdown_keeps_article_markup_as_text(rag: RAG, tmp_path: Path):
    evil = tmp_path / "evil.txt"
    evil.write_text("Zanzibar <img src=x onerror=alert(1)> harvest\nThe Zanzibar clove harvest doubled this year, farmers said.\n")
    rag.add([evil])
    answer = rag.ask("What happened to the Zanzibar clove harvest?")
    chats = rag.conversations.of(None)
    text = markdown(chats.get(chats.save(None, [answer])))
    # Backslash-escaped, so a Markdown viewer shows the tag as text (CommonMark: "\\<" is a literal "<").
    assert not re.search(r"(?<!\\)<img", text) and "\\<img src=x onerror=alert(1)\\>" in text


def test_rated_answers_export_as_an_evaluation_set(rag: RAG, answers, tmp_path: Path):
    first, second, refused = answers
    chats = rag.conversations.of(None)
    cid = chats.save(None, [first, second, refused])
    chats.save(None, [first])  # not rated: not exported
    chats.set_feedback(cid, 0, "up")
    chats.set_feedback(cid, 1, "down")
    chats.set_feedback(cid, 2, "up")
    path = tmp_path / "feedback.jsonl"
    path.write_text(evaluation_jsonl(chats.all()), encoding="utf-8")
    questions, problems = load_questions(path)
    assert problems == []
    liked, disliked, unanswerable = questions
    assert liked.question == MOURNING and liked.type == "factoid"
    assert liked.answers == (first.text.replace(" [1]", "").replace("[1]", "").strip(),) and "[" not in liked.answers[0]
    assert liked.evidence == tuple(sorted({c.article.id for c in first.citations}))
    assert disliked.type == "disliked" and disliked.answers == () and not disliked.unanswerable
    assert disliked.history == ((first.question, first.text),)
    assert unanswerable.unanswerable and unanswerable.type == "unanswerable"
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert raw[1]["disliked_answer"] == second.text and raw[1]["feedback"] == "down"
    assert all(r["question_date"] == chats.get(cid).turns[0].asked_at.date().isoformat() for r in raw)

    # With the articles the answers were given, the set runs as `rag eval` runs it: the liked
    # answer's evidence is the article it cited, found by retrieval in the evaluation index.
    articles = tmp_path / "articles.jsonl"
    articles.write_text(articles_jsonl(chats.all(), rag.article_text), encoding="utf-8")
    assert json.loads(articles.read_text(encoding="utf-8").splitlines()[0])["text"] == rag.article_text(liked.evidence[0])
    settings = Settings(index_dir=tmp_path / "unused", cache_dir=tmp_path / "cache", seeds_dir=None)
    with open_eval_index(articles, settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator()) as evaluated:
        report = Evaluator(evaluated, questions, modes=["bm25"], answer=False).run(progress=False)
    assert report.records[0]["retrieval"]["bm25"]["hits@1"] == 1.0


def test_titles_are_cut_at_a_word():
    long = "What did the foreign minister say about " + "the very long list of things " * 5
    title = title_from(long)
    assert len(title) <= 81 and title.endswith("…") and not title.endswith(" …")
    assert title_from("  two\nlines ") == "two lines"


def test_a_newer_or_damaged_file_is_a_clear_error(rag: RAG, answers):
    chats = rag.conversations.of(None)
    chats.save(None, [answers[0]])
    path = rag.store.directory / FILENAME
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RagError, match="Upgrade rag"):
        chats.list()
    path.write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    with pytest.raises(RagError, match="move the file aside"):
        chats.list()
    assert rag.ask(MOURNING).citations  # the index itself is untouched


def test_a_read_only_index_lists_but_does_not_save(rag: RAG, answers, monkeypatch: pytest.MonkeyPatch):
    chats = rag.conversations.of(None)
    cid = chats.save(None, [answers[0]])
    # A read-only mount, as os.access reports it (root can write a chmod 555 directory, not a ro mount).
    from rag.conversations import store

    monkeypatch.setattr(store.os, "access", lambda path, mode: False)
    assert [c.id for c in chats.list()] == [cid] and chats.get(cid).answers == [answers[0]]
    with pytest.raises(RagError, match="read-only"):
        chats.save(None, [answers[1]])


def test_cli_lists_and_exports(rag: RAG, answers, tmp_path: Path):
    import os
    import subprocess
    import sys

    from .conftest import ROOT

    first, second, _ = answers
    chats = rag.conversations.of("editor")
    cid = chats.save(None, [first, second])
    chats.set_feedback(cid, 0, "up")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "RAG_INDEX_DIR": str(rag.store.directory)}
        return subprocess.run([sys.executable, "-m", "rag.cli", "conversations", *args], capture_output=True, text=True,
                              env=env, timeout=120, cwd=ROOT)

    assert run("list").stdout.strip() == "no saved conversations"  # the local user's: none
    listed = run("list", "--user", "editor")
    assert listed.returncode == 0 and cid[:12] in listed.stdout and MOURNING in listed.stdout
    exported = run("export", cid[:6], "--user", "editor")
    assert exported.returncode == 0 and exported.stdout.startswith(f"# {MOURNING}")
    out, articles = tmp_path / "feedback.jsonl", tmp_path / "articles.jsonl"
    done = run("export", "--eval", "--user", "editor", "-o", str(out), "--articles", str(articles))
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["id"] for line in articles.read_text(encoding="utf-8").splitlines()] == [first.sources[0].article.id]
    questions, problems = load_questions(out)
    assert problems == [] and [q.question for q in questions] == [MOURNING]
    missing = run("export", "nope", "--user", "editor")
    assert missing.returncode == 2 and "'nope' matches no conversation" in missing.stderr
    assert "no rated answers" in run("export", "--eval").stderr


def test_turn_starts_follow_the_chat():
    from rag.serve.conversation_handlers import turn_starts

    chat = [{"role": "user"}, {"role": "assistant"}, {"role": "user"}, {"role": "assistant"}, {"role": "assistant"}]
    assert turn_starts(chat[:2], 1, []) == [1]  # the first answer
    assert turn_starts(chat, 2, [1]) == [1, 3]  # the next (a standalone-question note, then the answer)
    assert turn_starts(chat, 2, [1, 3]) == [1, 3]  # regenerated in place
    assert turn_starts(chat, 1, [1]) == [1]  # the last answer was stopped: not a turn
    assert turn_starts(chat, 1, [1, 3]) == [1]  # a regenerate that was stopped
