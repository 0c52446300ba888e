"""Briefings, timelines and related coverage (rag.stories) on the labelled fixture, through the
Python API with the real MiniLM embedder; the small pure parts with plain inputs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from rag import RAG
from rag.errors import RagError
from rag.evaluation.stories import briefing_support, evaluate_stories, quote_holds, timeline_support
from rag.results import ArticleInfo
from rag.stories.grouping import copy_groups
from rag.stories.names import article_names, name_overlap
from rag.stories.results import Quote
from rag.stories.sentences import candidates, unsupported
from rag.stories.spans import period
from rag.stories.timeline import event_date
from tests.stories_helpers import FIXTURE, article_id, fixture_rag, labels

WEEK = (date(2025, 3, 3), date(2025, 3, 9))


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory, minilm) -> RAG:
    rag = fixture_rag(tmp_path_factory.mktemp("stories") / "index", minilm, follow_ups=True)
    yield rag
    rag.close()


def _info(aid: str, published: str | None = "2025-03-04", duplicate_of: str | None = None, source: str = "Wire") -> ArticleInfo:
    return ArticleInfo(aid, f"Title {aid}", source, None, None, date.fromisoformat(published) if published else None,
                       "x", 1, "", duplicate_of)


# ------------------------------------------------------------ the small parts


def test_a_period_is_a_date_or_a_span_back_from_its_end():
    assert period("7d", "2025-03-09") == WEEK
    assert period("1w", date(2025, 3, 9)) == WEEK
    assert period("2025-03-03", "2025-03-09") == WEEK
    assert period(None, None, today=date(2025, 3, 9)) == WEEK
    for bad, message in [("last tuesday", "since='last tuesday' is not a date"), ("0d", "empty span"), ("2025-03-10", "after until")]:
        with pytest.raises(RagError, match=message):
            period(bad, "2025-03-09")
    with pytest.raises(RagError, match="until='soon' is not a date"):
        period("7d", "soon")


def test_an_events_date_is_the_day_its_sentence_names_read_against_the_article():
    tuesday = date(2025, 3, 4)
    assert event_date("Corvel said on Tuesday that hackers stole records.", tuesday) == (tuesday, "sentence", "on tuesday")
    assert event_date("The stoppage began on Monday, March 3.", date(2025, 3, 9))[:2] == (date(2025, 3, 3), "sentence")
    assert event_date("Attackers entered the network on February 20, 2025.", date(2025, 3, 7))[0] == date(2025, 2, 20)
    # A day in a clause about the future is not the event's; the deal's own day is.
    said = event_date("Workers will return to work on Monday after a deal was reached on Saturday.", date(2025, 3, 9))
    assert said == (date(2025, 3, 8), "sentence", "on saturday")
    assert event_date("Rotterdam is Europe's largest port.", tuesday) == (tuesday, "published", None)


def test_names_are_capitalised_words_past_a_sentences_start():
    names = article_names("Lavrov visits Pyongyang", "Russian Foreign Minister Sergey Lavrov said on Thursday. The talks went on.")
    assert {"lavrov", "pyongyang", "sergey"} <= names
    assert not names & {"russian", "thursday", "the", "minister"}  # a sentence's first word may be grammar
    assert name_overlap(frozenset({"a", "b", "c"}), frozenset({"a", "b"})) == 1.0
    assert name_overlap(frozenset({"a", "b"}), frozenset({"a", "x"})) == 0.0  # one shared name is not enough


def test_copies_group_with_their_root_even_when_the_root_is_outside_the_period():
    articles = [_info("a"), _info("b", duplicate_of="a"), _info("c"), _info("d", duplicate_of="gone"), _info("e", duplicate_of="gone")]
    assert copy_groups(articles) == [[0, 1], [2], [3, 4]]


def test_candidate_sentences_keep_their_offsets_and_skip_questions_and_furniture():
    text = "Editor's note: this page is updated.\nThe port reopened on Monday after a week of strikes by dockworkers.\nWhat comes next for the port workers now?"
    found = candidates(_info("a"), text)
    assert [c.text for c in found] == ["The port reopened on Monday after a week of strikes by dockworkers."]
    assert text[found[0].start : found[0].end] == found[0].text


def test_the_support_check_catches_a_changed_name_or_number():
    quote = Quote(1, _info("a"), "Corvel Health said hackers stole the records of 2.1 million patients.", 0, 10)
    assert unsupported(quote.text, [quote]) == []
    assert "3.4" in " ".join(unsupported("Corvel Health said hackers stole the records of 3.4 million patients.", [quote]))
    assert unsupported("Mercy Hospital said hackers stole the records of 2.1 million patients.", [quote])
    assert unsupported("Something else entirely happened in the markets today.", [quote])
    assert unsupported("Anything at all.", []) == ["cites nothing"]


# ------------------------------------------------------------ briefing


def test_the_fixture_week_briefs_into_its_labelled_stories_cited_sentence_by_sentence(rag: RAG):
    briefing = rag.brief("2025-03-03", "2025-03-09")
    assert briefing.articles == 30 and len(briefing.stories) == 8
    by_story = labels()["stories"]
    for story in briefing.stories:
        keys = {a.url.rsplit("/", 1)[1] for a in story.articles}
        assert len({by_story[k] for k in keys}) == 1, keys  # no story mixes two labelled ones
        assert 2 <= len(story.sentences) <= 3 and story.written_by == "extractive"
        assert story.sources and story.dates and story.headline in {a.title for a in story.articles}
        for s in story.sentences:
            assert s.quotes and all(quote_holds(rag, q) and q.text == s.text for q in s.quotes)
    assert briefing_support(rag, briefing) == 1.0
    top = briefing.stories[0]  # the strike: five articles from four outlets, over the whole week
    assert {by_story[a.url.rsplit("/", 1)[1]] for a in top.articles} == {"rotterdam-strike"}
    assert len(top.sources) == 4 and top.dates[0] == date(2025, 3, 3) and top.dates[-1] == date(2025, 3, 9)
    # A wire copy's identical sentence is cited beside the original.
    assert any(len(s.quotes) == 2 for s in top.sentences)
    scores = [s.score for s in briefing.stories]
    assert scores == sorted(scores, reverse=True)


def test_a_briefing_can_keep_to_a_topic_and_a_number_of_stories(rag: RAG):
    quake = rag.brief("2025-03-03", "2025-03-09", topic="earthquake in Peru")
    assert quake.stories and "peru" in quake.stories[0].headline.lower() + quake.stories[0].summary().lower()
    assert quake.articles < 30 and quake.topic == "earthquake in Peru"
    assert len(rag.brief("7d", "2025-03-09", max_stories=2).stories) == 2
    assert rag.brief("2025-01-01", "2025-01-07").stories == []
    with pytest.raises(RagError, match="max_stories"):
        rag.brief("7d", "2025-03-09", max_stories=0)


def test_briefing_json_carries_citations_with_offsets(rag: RAG):
    story = rag.brief("7d", "2025-03-09", max_stories=1).to_dict()["stories"][0]
    assert story["summary"].count("[") >= len(story["sentences"])
    cited = {c["n"] for c in story["citations"]}
    assert cited == {n for s in story["sentences"] for n in s["citations"]}
    first = story["citations"][0]
    assert rag.article_text(first["article_id"])[first["start"] : first["end"]] == first["quote"]


# ------------------------------------------------------------ timeline


def test_the_strike_timeline_is_in_order_dated_by_its_sentences_with_copies_merged(rag: RAG):
    timeline = rag.timeline("Rotterdam port strike", since="2025-03-01", until="2025-03-31")
    days = [e.date for e in timeline.events]
    assert days == sorted(days)
    began = next(e for e in timeline.events if "began a 48-hour strike" in e.text)
    assert began.date == date(2025, 3, 3) and began.date_from == "sentence" and began.phrase == "on monday"
    # The wire copy and the later recap ("The strike, which began on Monday") are one entry.
    assert {q.article.source for q in began.quotes} >= {"Northsea Wire", "Daily Ledger", "Harbour Post"}
    deal = next(e for e in timeline.events if "deal" in e.text and "Saturday" in e.text)
    assert deal.date == date(2025, 3, 8)  # the article is from Sunday the 9th
    assert timeline_support(rag, timeline) == 1.0
    assert [q.n for e in timeline.events for q in e.quotes] == list(range(1, 1 + sum(len(e.quotes) for e in timeline.events)))


def test_a_sentence_naming_no_day_is_marked_as_dated_by_its_article(rag: RAG):
    timeline = rag.timeline("Corvel Health data breach")
    undated = [e for e in timeline.events if e.date_from == "published"]
    assert undated and all(e.date == e.quotes[0].article.published and e.phrase is None for e in undated)
    assert timeline.events[0].date == date(2025, 2, 20)  # the forensic review's date, told on March 7
    assert timeline.to_dict()["events"][0]["date_from"] == "sentence"


def test_an_empty_subject_is_an_error(rag: RAG):
    with pytest.raises(RagError, match="empty"):
        rag.timeline("  ")


# ------------------------------------------------------------ related coverage


def test_related_coverage_shows_the_story_and_the_stories_before_and_after(rag: RAG):
    related = rag.related(article_id(rag, "port-talks-collapse"))
    own = {a.url.rsplit("/", 1)[1] for a in related.same_story}
    assert own == {"port-strike-begins", "port-strike-begins-copy", "port-strike-extended", "port-deal-reached"}
    assert [a.url.rsplit("/", 1)[1] for s in related.earlier for a in s.articles] == ["port-talks-open"]
    assert [a.url.rsplit("/", 1)[1] for s in related.later for a in s.articles] == ["port-ratified"]
    later = related.to_dict()["later"][0]
    assert later["dates"] == ["2025-04-17"] and later["headline"].startswith("Rotterdam dockworkers ratify")


def test_related_takes_an_id_prefix_and_names_a_bad_one(rag: RAG):
    full = article_id(rag, "peru-quake")
    assert rag.related(full[:8]).article.id == full
    with pytest.raises(RagError, match="matches no indexed article"):
        rag.related("no-such-article")


# ------------------------------------------------------------ evaluation


def test_the_evaluation_scores_the_fixture(rag: RAG):
    report = evaluate_stories(rag, FIXTURE)
    assert report.grouping_ari >= 0.9 and report.stories_found == report.stories_labelled == 8
    assert report.briefing_support == report.timeline_support == 1.0
    for t in report.timelines:
        assert t.found >= 0.75 and t.order == 1.0 and t.dates >= 0.75 and t.deduplicated == 1.0


def test_the_evaluation_names_a_broken_labels_file(tmp_path: Path, rag: RAG):
    (tmp_path / "labels.json").write_text("{}")
    with pytest.raises(RagError, match="needs 'stories'"):
        evaluate_stories(rag, tmp_path)


def test_a_model_written_briefing_keeps_only_sentences_that_pass_the_grounding_check(rag: RAG, smollm):
    writer = RAG(rag.settings, rag.store, rag.embedder, smollm)  # the same index, the tiny real model
    briefing = writer.brief("7d", "2025-03-09", max_stories=3, llm=True)
    assert len(briefing.stories) == 3
    for story in briefing.stories:
        if story.written_by == "extractive":  # the model's sentence failed a check: said so, article sentences shown
            assert story.notes and "the extractive summary is shown" in story.notes[0]
        else:
            assert story.written_by == smollm.name and not story.notes
        for s in story.sentences:
            assert s.quotes and unsupported(s.text, s.quotes) == []
            assert all(quote_holds(rag, q) for q in s.quotes)
