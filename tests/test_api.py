"""The public API end to end with the fast fakes (the real models are in test_real_models.py)."""

from __future__ import annotations

import pytest

from rag import RAG, Answer, RagError

from .conftest import DATA, SEEDS


@pytest.fixture
def rag(fake_rag: RAG) -> RAG:
    fake_rag.add([DATA, SEEDS])
    return fake_rag


def test_stream_yields_pieces_then_the_final_answer(rag: RAG):
    events = list(rag.stream("How many days of national mourning did Türkiye declare?"))
    assert all(isinstance(e, str) for e in events[:-1]) and len(events) > 2
    answer = events[-1]
    assert isinstance(answer, Answer)
    assert "three days of national mourning" in answer.text
    [citation] = answer.citations
    assert "three days of national mourning" in citation.quote
    text = rag.article_text(citation.article.id)
    assert text[citation.quote_start : citation.quote_end] == citation.quote
    assert answer.timings["total_s"] >= answer.timings["retrieval_s"] > 0


def test_ask_and_sources_are_sentences_with_offsets(rag: RAG):
    answer = rag.ask("What did Ankara propose as a guarantor system?")
    assert "guarantor system" in answer.text and not answer.refused
    for source in answer.sources:
        assert rag.article_text(source.article.id)[source.start : source.end] == source.text


def test_unknown_entity_is_declined_without_calling_the_model(rag: RAG):
    calls_before = len(rag.generator.calls)
    answer = rag.ask("What did Lavrov say about Brazil?")
    assert answer.refused and answer.citations == []
    assert "Brazil" in answer.notes[0]
    assert len(rag.generator.calls) == calls_before


def test_each_refusal_names_the_check_that_refused(rag: RAG):
    assert rag.ask("What did Lavrov say about Brazil?").refused_by == "coverage"
    assert rag.ask("How many days of national mourning did Türkiye declare?").refused_by is None
    assert rag.ask("Where was Lavrov speaking?", since="2030-01-01").refused_by == "empty"
    assert rag.ask("What did Lavrov say about Brazil?").to_dict()["refused_by"] == "coverage"


def test_the_coverage_guard_can_be_switched_off_for_measurement(rag: RAG):
    """With guard_coverage off the model is asked; its own "not in sources" is the refusal."""
    unguarded = rag.with_settings(guard_coverage=False)
    calls_before = len(rag.generator.calls)
    answer = unguarded.ask("What did Lavrov say about Brazil?")
    assert len(rag.generator.calls) == calls_before + 1
    assert answer.refused_by != "coverage"


def test_evidence_is_what_the_model_would_read_without_asking_it(rag: RAG):
    calls_before = len(rag.generator.calls)
    found = rag.evidence("How many days of national mourning did Türkiye declare?")
    assert len(rag.generator.calls) == calls_before
    assert found.retrieved and found.passages and found.date_note is None
    assert any("three days of national mourning" in p.text for p in found.passages)
    assert sum(rag.embedder.count_tokens(p.text) for p in found.passages) <= rag.settings.context_tokens + 64
    answer = rag.ask("How many days of national mourning did Türkiye declare?")
    assert [p.text for p in answer.sources] == [p.text for p in found.passages]
    dated = rag.evidence("What happened in Ankara in October 2023?")
    assert dated.date_note and "2023-10-01" in dated.date_note


def test_question_options_are_one_object_or_the_same_keywords(rag: RAG):
    from rag import AskOptions

    options = AskOptions(k=2, mode="bm25", since="2023-10-01")
    by_object = rag.ask("What did Ankara propose as a guarantor system?", None, options)
    by_keywords = rag.ask("What did Ankara propose as a guarantor system?", k=2, mode="bm25", since="2023-10-01")
    assert by_object.text == by_keywords.text and len(by_object.sources) == len(by_keywords.sources)
    assert options.with_changes(k=3).k == 3 and options.k == 2
    with pytest.raises(TypeError, match="unknown question options: top"):
        rag.ask("What did Ankara propose?", top=3)
    chunks = rag.evidence("How many days of national mourning did Türkiye declare?", evidence="chunks")
    assert [h.text for h in chunks.passages] == [h.text for h in chunks.retrieved][: len(chunks.passages)]


def test_follow_up_is_condensed_with_the_history(rag: RAG):
    history = [("Where was Lavrov speaking?", "In Pyongyang [1].")]
    answer = rag.ask("And what did he say about Iran?", history=history)
    condense_call = rag.generator.calls[-2]
    assert "Where was Lavrov speaking?" in condense_call[0]["content"]
    assert answer.question == "And what did he say about Iran?"


def test_empty_index_and_date_range_decline(fake_rag: RAG):
    answer = fake_rag.ask("Where was Lavrov speaking?")
    assert answer.refused and "no passage" in answer.notes[0]
    fake_rag.add([SEEDS])
    assert fake_rag.ask("Where was Lavrov speaking?", since="2030-01-01").refused


def test_whole_chunk_evidence_mode(rag: RAG):
    rag.settings = rag.settings.model_copy(update={"evidence": "chunks", "context_tokens": 2000})
    answer = rag.ask("How many days of national mourning did Türkiye declare?")
    assert any(len(s.text) > 300 for s in answer.sources)
    assert "three days" in answer.text


def test_empty_question_is_an_error(rag: RAG):
    with pytest.raises(RagError, match="empty"):
        rag.ask("   ")


def test_question_vectors_are_cached_until_cleared(fake_rag):
    fake_rag.search("harbour strike")
    assert "harbour strike" in fake_rag._cached_embedder._vectors
    fake_rag.clear_caches()
    assert not fake_rag._cached_embedder._vectors
