"""The real thing: MiniLM embeddings, FAISS, and llama.cpp with both bundled models."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import RAG, Answer, Settings

pytestmark = pytest.mark.real_models


def test_llama_cpp_build_generates_text(smollm):
    # The default llama.cpp build segfaults here on the first generation (AMX); ours must not.
    pieces = list(smollm.stream([{"role": "user", "content": "Name a colour."}], max_tokens=16, temperature=0.0))
    assert len(pieces) > 1 and "".join(pieces).strip()


def test_a_stopped_or_abandoned_stream_frees_the_shared_model(smollm):
    import threading

    story = [{"role": "user", "content": "Write a long story about a harbour."}]
    cancel = threading.Event()
    pieces = []
    for piece in smollm.stream(story, max_tokens=200, temperature=0.0, cancel=cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()  # the Stop button
    assert len(pieces) == 3 and not smollm._lock.locked()
    # A consumer that just stops reading: closing its stream (from another thread, as Gradio
    # may) releases the model too.
    stream = smollm.stream(story, max_tokens=200, temperature=0.0)
    next(stream)
    assert smollm._lock.locked()
    closer = threading.Thread(target=stream.close)
    closer.start()
    closer.join()
    assert not smollm._lock.locked()
    assert list(smollm.stream([{"role": "user", "content": "Name a colour."}], max_tokens=8, temperature=0.0))


def test_real_embedder_retrieves_the_passage(seed_index: Path, minilm, smollm):
    rag = RAG.open(settings=Settings(index_dir=seed_index, seeds_dir=None), embedder=minilm, llm=smollm)
    hits = rag.search("guarantor system for the Israel-Palestine conflict", k=3)
    assert "guarantor system" in hits[0].text
    assert hits[0].score > hits[-1].score
    assert rag.info().embedder == "all-MiniLM-L6-v2" and rag.info().dim == 384
    rag.close()


def test_tiny_model_streams_a_checked_answer(seed_index: Path, minilm, smollm):
    rag = RAG.open(settings=Settings(index_dir=seed_index, seeds_dir=None), embedder=minilm, llm=smollm)
    events = list(rag.stream("How many days of national mourning did Türkiye declare?"))
    answer = events[-1]
    assert isinstance(answer, Answer)
    assert any(isinstance(e, str) for e in events[:-1])
    assert answer.sources and answer.raw_text
    # Whatever the tiny model says, the pipeline returns either cited words or the refusal.
    assert answer.refused or (answer.citations and all(1 <= c.n <= len(answer.sources) for c in answer.citations))
    assert answer.timings["first_token_s"] > 0
    rag.close()


@pytest.fixture(scope="module")
def qwen_rag(seed_index: Path, minilm, qwen):
    rag = RAG.open(settings=Settings(index_dir=seed_index, seeds_dir=None), embedder=minilm, llm=qwen)
    yield rag
    rag.close()


def _cites_fact(answer: Answer, *facts: str) -> bool:
    """The answer states one of the facts and cites a passage quoting it."""
    text = answer.text.lower()
    quotes = " ".join(c.quote.lower() for c in answer.citations)
    return any(f in text and f in quotes for f in facts)


@pytest.mark.parametrize(
    ("question", "facts"),
    [
        ("Where was Lavrov speaking?", ("pyongyang",)),
        ("What did Türkiye propose for the Israel-Palestine conflict?", ("guarantor system", "two-state solution")),
        ("How many days of national mourning did Türkiye declare?", ("three days",)),
    ],
)
def test_default_model_answers_the_seed_questions_with_citations(qwen_rag: RAG, question: str, facts: tuple[str, ...]):
    answer = qwen_rag.ask(question)
    assert not answer.refused, answer
    assert _cites_fact(answer, *facts), (answer.text, [c.quote for c in answer.citations])
    for c in answer.citations:
        article = qwen_rag.article_text(c.article.id)
        assert article[c.quote_start : c.quote_end] == c.quote


def test_default_model_declines_what_the_articles_do_not_say(qwen_rag: RAG):
    answer = qwen_rag.ask("What did Lavrov say about Brazil?")
    assert answer.refused
    assert answer.text == qwen_rag.prompts.refusal
    assert answer.citations == []


def test_default_model_follow_up_uses_the_history(qwen_rag: RAG):
    first = qwen_rag.ask("Where was Lavrov speaking?")
    answer = qwen_rag.ask("And what did he say about Iran?", history=[("Where was Lavrov speaking?", first.text)])
    assert answer.standalone_question and "Lavrov" in answer.standalone_question
    assert "iran" in answer.text.lower() and answer.citations
