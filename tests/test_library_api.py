"""The Library's API over a real index (SQLite, FTS5, FAISS, MiniLM): searching titles *and*
bodies, reading an article's full record, removing it and restoring it (an undo), and asking
about one article only (``AskOptions.article_ids``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag import RAG, Settings
from rag.options import AskOptions
from rag.testing import ExtractiveFakeGenerator

from .conftest import DATA, SEEDS

SEED_TITLE = "Lavrov says Türkiye's Gaza initiative aims at de-escalation"


@pytest.fixture
def library(tmp_path: Path, minilm) -> RAG:
    """The seed article and the two JSONL records, with MiniLM."""
    shutil.copy(DATA / "articles.jsonl", tmp_path / "articles.jsonl")
    rag = RAG.open(settings=Settings(index_dir=tmp_path / "index", seeds_dir=SEEDS), embedder=minilm,
                   llm=ExtractiveFakeGenerator())
    rag.add([tmp_path / "articles.jsonl"])
    yield rag
    rag.close()


def _titles(rag: RAG, search: str) -> list[str]:
    return [a.title for a in rag.articles(search=search)]


def test_search_matches_article_bodies_not_only_titles(library):
    # "Pyongyang" is only in the seed article's text, not in its title, source or author.
    assert _titles(library, "Pyongyang") == [SEED_TITLE]
    assert _titles(library, "pyongyang") == [SEED_TITLE]  # any case
    assert _titles(library, "Pyong") == [SEED_TITLE]  # the last word is matched as typed so far
    assert _titles(library, "Lavrov Pyongyang") == [SEED_TITLE]  # every word, in any passage
    assert _titles(library, "six weeks") == ["Bridge closed for repairs"]
    assert _titles(library, "Pyongyang bridge") == []  # not one article has both
    assert set(_titles(library, "Metro Daily")) == {"Rail strike called off", "Bridge closed for repairs"}  # metadata still
    assert _titles(library, "xyzzy") == []


@pytest.mark.parametrize("typed", ['"', "NEAR(a b", "title:Lavrov", "a OR", "*", "-", "Türkiye's ^", "AND"])
def test_search_reads_fts_syntax_as_plain_words(library, typed):
    library.articles(search=typed)  # no FTS5 syntax error reaches the user


def test_an_article_removed_and_restored_comes_back_whole_and_searchable(library):
    (seed,) = library.articles(search="Pyongyang")
    record = library.article(seed.id)
    assert record is not None and record.id == seed.id and record.title == SEED_TITLE
    assert "Pyongyang" in record.text and record.author == "Elena Teslova" and record.source == "Anadolu Agency (AA)"
    before = library.article_text(seed.id)

    assert library.remove(seed.id) == [seed.id]
    assert library.article(seed.id) is None and library.articles(search="Pyongyang") == []
    assert all(h.article.id != seed.id for h in library.search("Lavrov news conference in Pyongyang", k=5))

    report = library.restore([record])
    assert report.counts.added == 1 and report.counts.failed == 0
    (back,) = library.articles(search="Pyongyang")
    assert (back.id, back.title, back.source, back.author, back.published, back.url, back.origin) == (
        seed.id, seed.title, seed.source, seed.author, seed.published, seed.url, seed.origin)
    assert back.chunk_count == seed.chunk_count and library.article_text(seed.id) == before
    hits = library.search("Lavrov news conference in Pyongyang", k=3, mode="dense")
    assert hits and hits[0].article.id == seed.id  # embedded again: found by meaning too
    assert library.check().ok

    again = library.restore([record])  # a second undo of the same removal adds nothing
    assert again.counts.added == 0 and again.counts.duplicates == 1
    assert len(library.articles()) == 3


def test_retrieval_can_be_limited_to_one_article(library):
    rail = next(a for a in library.articles() if a.title == "Rail strike called off")
    # Unfiltered, the Gaza question finds the seed article first.
    assert library.search("What did Lavrov say about Gaza?", k=3)[0].article.title == SEED_TITLE
    for mode in ("dense", "bm25", "hybrid", "rerank"):
        hits = library.search("What did Lavrov say about Gaza?", k=5, mode=mode, article_ids=[rail.id])
        assert {h.article.id for h in hits} <= {rail.id}, mode
    assert library.search("train drivers pay deal", k=5, mode="bm25", article_ids=[rail.id])[0].article.id == rail.id
    # What an answer reads: only that article's passages.
    found = library.evidence("What did the train drivers do?", AskOptions(article_ids=[rail.id]))
    assert found.retrieved and {h.article.id for h in found.retrieved} == {rail.id}
    assert {h.article.id for h in found.passages} == {rail.id}
    answer = library.ask("What did Lavrov say?", options=AskOptions(article_ids=(rail.id,)))
    assert {h.article.id for h in answer.sources} <= {rail.id}
    # Dates and the article filter together: both apply.
    assert library.search("strike", k=5, since="2025-01-01", article_ids=[rail.id]) == []
