"""Hybrid retrieval, near-duplicate collapsing and the evidence budget."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from rag import RAG, RagError
from rag.answer.evidence import select_evidence
from rag.answer.retrieval import collapse_copies, fuse, query_terms
from rag.documents.dedup import signature, similarity
from rag.results import ArticleInfo, Hit
from rag.testing import HashingEmbedder

from .conftest import DATA, ROOT, SEEDS

DEVSET_ARTICLES = ROOT / "eval" / "devset" / "articles.jsonl"


def test_reciprocal_rank_fusion_hand_computed():
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    bm25 = [(3, 12.0), (4, 9.0), (1, 1.0)]
    fused = fuse([dense, bm25], k=4)
    # 1: 1/61 + 1/63; 3: 1/63 + 1/61 (tie, lower id first); 2: 1/62; 4: 1/62
    assert [cid for cid, _ in fused] == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 63)
    assert fuse([dense, []], k=2) == [(1, pytest.approx(1 / 61)), (2, pytest.approx(1 / 62))]


def test_query_terms_drop_stopwords():
    assert query_terms("What did Türkiye propose for the Israel-Palestine conflict?") == [
        "türkiye", "propose", "israel", "palestine", "conflict"
    ]


def test_modes_find_keyword_and_meaning(fake_rag: RAG):
    fake_rag.add([DATA, SEEDS])
    for mode in ("dense", "bm25", "hybrid", "rerank"):
        hits = fake_rag.search("guarantor system Israel-Palestine", k=3, mode=mode)
        assert "guarantor system" in hits[0].text, mode
    with pytest.raises(RagError, match="unknown retrieval mode"):
        fake_rag.search("x", mode="magic")  # type: ignore[arg-type]


def _rows() -> dict[str, dict]:
    return {json.loads(line)["id"]: json.loads(line) for line in DEVSET_ARTICLES.read_text().splitlines()}


def test_wire_copies_are_near_duplicates_and_other_stories_are_not():
    rows = _rows()
    copy = similarity(signature(rows["a10-skarvik-tunnel"]["body"]), signature(rows["a12-skarvik-tunnel-record"]["body"]))
    follow_up = similarity(signature(rows["a02-storm-ardis"]["body"]), signature(rows["a03-storm-ardis-toll"]["body"]))
    assert copy >= 0.5 > follow_up


def test_near_duplicates_are_marked_at_ingest_and_collapsed_in_results(fake_rag: RAG):
    report = fake_rag.add([DEVSET_ARTICLES])
    assert len(report.near_duplicates) == 1
    [(copy_id, original_id)] = report.near_duplicates.items()
    infos = {a.id: a for a in fake_rag.articles()}
    assert infos[copy_id].duplicate_of == original_id
    assert "Skarvik" in infos[original_id].title or "Skarvik" in infos[copy_id].title
    for mode in ("dense", "bm25", "hybrid", "rerank"):
        hits = fake_rag.search("Skarvik rail tunnel opening length", k=10, mode=mode)
        stories = {h.article.id for h in hits} & {copy_id, original_id}
        assert len(stories) == 1, mode  # one copy of the story, not both


def test_collapse_keeps_the_best_ranked_copy():
    def info(aid: str, dup: str | None = None) -> ArticleInfo:
        return ArticleInfo(aid, aid, None, None, None, None, "", 1, "", dup)

    hits = [Hit(1, info("b", "a"), 0, 0, 1, "x", 3), Hit(2, info("a"), 0, 0, 1, "x", 2),
            Hit(3, info("b", "a"), 1, 1, 2, "y", 1), Hit(4, info("c"), 0, 0, 1, "z", 0)]
    assert [h.chunk_id for h in collapse_copies(hits)] == [1, 3, 4]


def test_evidence_fits_the_budget_and_keeps_offsets(fake_rag: RAG):
    fake_rag.add([SEEDS])
    hits = fake_rag.search("How many days of national mourning did Türkiye declare?", k=5)
    emb = fake_rag.embedder
    for budget in (40, 120, 320):
        passages = select_evidence("How many days of national mourning did Türkiye declare?", hits, emb, budget,
                                   article_text=fake_rag.article_text)
        used = sum(emb.count_tokens(p.text) for p in passages)
        assert passages and (used <= budget or len(passages) == 1)
        text = fake_rag.article_text(passages[0].article.id)
        for p in passages:
            assert text[p.start : p.end] == p.text
    assert "three days of national mourning" in select_evidence(
        "How many days of national mourning did Türkiye declare?", hits, emb, 40)[0].text
    whole = sum(emb.count_tokens(h.text) for h in hits)
    assert sum(emb.count_tokens(p.text) for p in select_evidence("mourning", hits, emb, 120)) < whole / 2


def test_one_article_cannot_fill_the_context(tmp_path: Path):
    emb = HashingEmbedder()
    long = ArticleInfo("long", "Long", None, None, None, date(2024, 1, 1), "", 1, "")
    short = ArticleInfo("short", "Short", None, None, None, date(2024, 1, 1), "", 1, "")
    long_text = " ".join(f"The harbour reopened after storm number {i}." for i in range(12))
    hits = [Hit(1, long, 0, 0, len(long_text), long_text, 1.0),
            Hit(2, short, 0, 0, 40, "The harbour stayed closed for one ferry.", 0.5)]
    passages = select_evidence("harbour reopened storm", hits, emb, budget_tokens=60, per_article=2)
    assert {p.article.id for p in passages} == {"long", "short"}


# ---------------------------------------------------------------- ranking levers (issue #12)


def test_recency_prior_reweights_and_never_filters() -> None:
    from datetime import date

    from rag.answer.retrieval import Ranking, recency_factor

    today = date(2024, 3, 1)
    r = Ranking(recency_half_life_days=30, recency_weight=2.0, today=today)
    assert recency_factor(today, r) == pytest.approx(3.0)
    assert recency_factor(date(2024, 1, 31), r) == pytest.approx(2.0)  # one half-life: half the bonus
    assert recency_factor(date(2019, 1, 1), r) == pytest.approx(1.0, abs=1e-9)  # old: unchanged, never zero
    assert recency_factor(None, r) == 1.0 and recency_factor(date(2024, 3, 9), r) == 1.0  # undated, future
    assert recency_factor(today, Ranking(today=today)) == 1.0  # off by default in a bare Ranking


def test_recency_prior_lifts_the_recent_story_of_two_similar_ones(fake_rag) -> None:
    import json

    def article(i: str, published: str, extra: str) -> dict:  # two different stories, not copies
        return {"id": i, "title": "Harbour strike talks", "published_at": published,
                "body": f"Dock workers at the Velmora harbour continued their strike over pay on Monday. {extra}"}

    path = fake_rag.settings.index_dir.parent / "two.jsonl"
    path.write_text(json.dumps(article("old", "2021-05-01", "The union said talks with the port authority had failed again and no date was set.")) + "\n"
                    + json.dumps(article("new-ish", "2024-02-20", "Ferries to the islands were cancelled and shops ran short of fresh fruit by Friday.")) + "\n")
    fake_rag.add([path])
    question = "Are the Velmora dock workers still on strike?"
    plain = fake_rag.with_settings(recency_weight=0.0).search(question, k=2, today="2024-03-01")
    recent = fake_rag.search(question, k=2, today="2024-03-01")
    assert len({h.article.id for h in plain}) == 2
    assert recent[0].article.published.isoformat() == "2024-02-20"
    assert recent[0].score > recent[1].score


def test_article_ranking_keeps_one_passage_per_article(fake_rag, data_dir) -> None:
    fake_rag.add([data_dir])
    hits = fake_rag.with_settings(passages_per_article=1).search("Lavrov Gaza Türkiye initiative", k=5)
    ids = [h.article.id for h in hits]
    assert len(ids) == len(set(ids))
    every = fake_rag.with_settings(passages_per_article=0).search("Lavrov Gaza Türkiye initiative", k=50)
    ranked = fake_rag.with_settings(passages_per_article=1).search("Lavrov Gaza Türkiye initiative", k=50)
    # Nothing is lost (an article's further passages come last), and every article's best passage comes first.
    assert {h.chunk_id for h in ranked} == {h.chunk_id for h in every}
    n = len({h.article.id for h in every})
    assert len({h.article.id for h in ranked[:n]}) == n


def test_with_settings_shares_the_index_and_refuses_index_settings(fake_rag) -> None:
    from rag import RagError

    view = fake_rag.with_settings(top_k=3, recency_weight=0.0)
    assert view.store is fake_rag.store and view.settings.top_k == 3
    with pytest.raises(RagError, match="cannot change on an open index"):
        fake_rag.with_settings(chunk_tokens=64)
