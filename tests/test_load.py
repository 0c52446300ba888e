"""Concurrent chat users against the real app on loopback (benchmarks/chat_load.py, small N).

Each user's question matches only their own article, so an answer, source or history entry
that went to the wrong session is detectable; the benchmark runs the same code with larger N."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.real_models


def _load_driver() -> ModuleType:
    # By path: pysbd installs a top-level package called "benchmarks" that would shadow ours.
    spec = importlib.util.spec_from_file_location("chat_load", ROOT / "benchmarks" / "chat_load.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["chat_load"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


chat_load = _load_driver()


def _still_answers(url: str, user) -> None:  # type: ignore[no-untyped-def]
    """After the load, a fresh session still gets its own article back."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    result = client.predict(user.turns()[0][0], [], 1, "", api_name="/answer")
    client.close()
    assert user.town in json.dumps(result["sources"], ensure_ascii=False)


def test_users_never_share_an_article_mark():
    users = [chat_load.User.make(n) for n in range(chat_load.MAX_USERS)]
    marks = [m for u in users for m in u.marks()]
    assert len(set(marks)) == len(marks)
    assert not [(a, b) for a in marks for b in marks if a != b and a in b]
    with pytest.raises(ValueError):
        chat_load.run_load("http://127.0.0.1:1", chat_load.MAX_USERS + 1)


def test_crossed_answers_are_detected(minilm, tmp_path: Path):
    """The detector itself, on a real chat: user b's session is clean for b and crossed for a."""
    from gradio_client import Client

    with chat_load.serve("fake", embedder=minilm) as url:
        a, b = chat_load.User.make(0), chat_load.User.make(1)
        chat_load.upload_articles(url, [a, b], tmp_path)
        client = Client(url, verbose=False)
        question = b.turns()[0][0]
        chat, sources, _ = client.predict(question, [], chat_load._chat_default_llm(url, None), 1, "", "", "hybrid", api_name="/ask")
        client.close()
        assert b.permit in chat_load._text(chat[-1])
        assert chat_load.crossed_marks(b, [a, b], [question], chat, sources) == []
        crossed = chat_load.crossed_marks(a, [a, b], [a.turns()[0][0]], chat, sources)
        assert b.town in crossed and b.permit in crossed and "history" in crossed
        # And a run that cannot finish in time reports failures instead of hanging or raising.
        late = chat_load.run_load(url, users=2, questions=2, timeout=0.01, upload=False)
        assert late.answered == 0 and late.failed == 4 and late.errors


def test_six_users_two_turns_with_minilm_and_fake_llm(minilm, tmp_path: Path):
    with chat_load.serve("fake", embedder=minilm) as url:
        report = chat_load.run_load(url, users=6, questions=2, timeout=240, server_pid=os.getpid(), workdir=tmp_path)
        print(report.summary())
        assert report.questions == 12
        assert report.answered == 12 and report.failed == 0, report.errors
        assert report.crossed == 0, report.errors
        # The extractive fake quotes the sentence: every answer holds its user's own fact.
        assert report.correct == 12, report.errors
        assert 0 < report.p50_s <= report.p95_s and report.peak_rss_mb
        _still_answers(url, chat_load.User.make(5))


def test_three_users_with_smollm(minilm, smollm, tmp_path: Path):
    with chat_load.serve("smollm2-135m-instruct", embedder=minilm, generator=smollm) as url:
        report = chat_load.run_load(url, users=3, questions=2, timeout=600, server_pid=os.getpid(), workdir=tmp_path)
        print(report.summary())
        assert report.answered == 6 and report.failed == 0, report.errors
        assert report.crossed == 0, report.errors
        _still_answers(url, chat_load.User.make(2))


def test_answer_checks_give_the_same_stems_from_many_threads():
    """Found by the load test: a shared snowball stemmer mixed up concurrent users' words."""
    import threading

    from rag.text import content_words

    texts = [f"The {w} councils were proposing vetoes and approvals number {i}" for i, w in
             enumerate(["harbour", "generational", "relational", "conditional", "operational", "rationalisation"])]
    expected = [content_words(t) for t in texts]
    wrong: list[object] = []

    def work(k: int) -> None:
        for i in range(400):
            n = (i + k) % len(texts)
            try:
                if content_words(texts[n]) != expected[n]:
                    wrong.append(n)
            except Exception as e:  # noqa: BLE001 - a crash is as wrong as a bad stem
                wrong.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
