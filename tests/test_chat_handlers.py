"""The Chat tab's handlers and pieces without a browser: phases while it works, the buttons'
states, Stop (before the first word too), date fields checked where typed, citations, plain
refusals and suggested questions. Fast: the deterministic fakes from rag.testing."""

from __future__ import annotations

import threading
from datetime import date

import gradio as gr
import pytest

from rag import RAG, Settings
from rag.answer.pipeline import Phase
from rag.results import Answer, ArticleInfo, Citation, Hit
from rag.serve.chat_handlers import ChatHandlers, date_state
from rag.serve.filters import check_dates, chips_html
from rag.serve.rendering import answer_markdown, sources_html
from rag.serve.suggestions import suggested_questions
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .conftest import SEEDS

QUESTION = "How many days of national mourning did Türkiye declare?"


@pytest.fixture
def seeded(tmp_path) -> RAG:
    rag = RAG.open(settings=Settings(index_dir=tmp_path / "idx", seeds_dir=SEEDS), embedder=HashingEmbedder(),
                   llm=ExtractiveFakeGenerator())
    yield rag
    rag.close()


def _ask(handlers: ChatHandlers, question: str = QUESTION, since: str = "", until: str = "", session: str = "s1",
         article_ids: list[str] | None = None):
    return handlers.ask(question, [], [], handlers.rag.settings.llm, 4, since, until, "hybrid", gr.Request(session_hash=session),
                        article_ids)


def _fields(out: tuple) -> dict:
    return dict(zip(ChatHandlers.OUTPUTS, out))


def test_stream_phases_come_before_the_first_word(seeded):
    events = list(seeded.stream_phases(QUESTION))
    phases = [e for e in events if isinstance(e, Phase)]
    assert [p.name for p in phases] == ["searching", "reading"] and phases[1].passages > 0
    first_word = next(i for i, e in enumerate(events) if isinstance(e, str))
    assert all(isinstance(e, Phase) for e in events[:first_word])
    assert isinstance(events[-1], Answer)
    # stream() is unchanged for its callers: no Phase in it.
    assert not any(isinstance(e, Phase) for e in seeded.stream(QUESTION))


def test_a_follow_up_shows_the_rewriting_phase(seeded):
    history = [("What did Lavrov say?", "He spoke about Gaza.")]
    names = [e.name for e in seeded.stream_phases("And what did he say about Iran?", history) if isinstance(e, Phase)]
    assert names == ["rewriting", "searching", "reading"]


def test_ask_shows_phases_and_locks_ask_while_running(seeded):
    outs = [_fields(o) for o in _ask(ChatHandlers(seeded, seeded.available_llms()))]
    first, last = outs[0], outs[-1]
    assert first["send"]["interactive"] is False and first["stop"]["interactive"] is True
    assert first["stop"]["variant"] == "stop"
    bubbles = [o["chatbot"][-1]["content"] for o in outs if isinstance(o["chatbot"], list)]
    assert "Starting…" in bubbles[0]
    assert any("Searching the articles…" in b for b in bubbles)
    assert any("Reading " in b and " passages…" in b for b in bubbles)
    assert any("Writing…" in b for b in bubbles)
    assert last["send"]["interactive"] is True and last["stop"]["interactive"] is False
    assert 'class="cite"' in last["chatbot"][-1]["content"] and "phase" not in last["chatbot"][-1]["content"]


def test_stop_on_a_finished_answer_changes_nothing(seeded):
    handlers = ChatHandlers(seeded, seeded.available_llms())
    chat = [o for o in _ask(handlers)][-1][0]
    out = _fields(handlers.stop(gr.Request(session_hash="s1")))
    assert out["chatbot"] == gr.skip() and out["send"]["interactive"] is True
    assert "(stopped)" not in str(chat)


def test_stop_before_the_first_word_never_runs_the_answer_prompt(seeded):
    generator = seeded.generator
    handlers = ChatHandlers(seeded, seeded.available_llms())
    events = _ask(handlers)
    calls_before = len(generator.calls)
    out = None
    for out in events:
        bubble = out[0][-1]["content"] if isinstance(out[0], list) else ""
        if "Reading " in bubble:  # retrieval done, the model about to read its prompt
            pressed = _fields(handlers.stop(gr.Request(session_hash="s1")))
            break
    assert pressed["stop"]["interactive"] is False and pressed["chatbot"] == gr.skip()
    # The answer's own stream says it stopped, as its last update, and the model was never called.
    (stopped,) = [_fields(o) for o in events]
    assert "Stopped before the answer began" in stopped["chatbot"][-1]["content"]
    assert stopped["send"]["interactive"] is True and stopped["stop"]["interactive"] is False
    assert len(generator.calls) == calls_before
    # The next question is answered normally, and is the only model call.
    final = [o for o in _ask(handlers)][-1]
    assert 'class="cite"' in final[0][-1]["content"] and len(generator.calls) == calls_before + 1


def test_stop_after_the_first_words_keeps_them_and_nothing_overwrites_them(seeded):
    handlers = ChatHandlers(seeded, seeded.available_llms())
    events = _ask(handlers)
    for out in events:
        if isinstance(out[0], list) and "Writing…" in out[0][-1]["content"]:
            handlers.stop(gr.Request(session_hash="s1"))
            break
    (stopped,) = list(events)  # the final, checked answer never replaces it
    text = stopped[0][-1]["content"]
    assert text.endswith(" *(stopped)*") and "Writing" not in text and "phase" not in text
    assert not handlers.running("s1")


def test_a_second_question_while_one_runs_is_ignored(seeded):
    handlers = ChatHandlers(seeded, seeded.available_llms())
    running = _ask(handlers)
    next(running)
    assert all(v == gr.skip() for v in next(_ask(handlers)))
    list(running)
    assert not handlers.running("s1")


def test_dates_are_checked_in_their_fields():
    assert check_dates("2024-03-01", "2024-03-31").phrase() == "published from 2024-03-01 to 2024-03-31"
    assert check_dates("2024-03-01 00:00:00", "").since == date(2024, 3, 1)  # the picker's format
    bad = check_dates("March 2024", "")
    assert "“March 2024” is not a date" in bad.error("since") and bad.error("until") is None
    reversed_ = check_dates("2024-05-01", "2024-04-01")
    assert "is before" in reversed_.error("until") and not reversed_.active


def test_ask_with_a_bad_date_is_a_field_error_not_a_chat_message(seeded):
    handlers = ChatHandlers(seeded, seeded.available_llms())
    out = _fields(next(_ask(handlers, since="last week-ish")))
    assert out["chatbot"] == gr.skip() and out["question"] == gr.skip()  # no bubble; the question stays
    assert 'role="alert"' in out["date_error"] and "“last week-ish” is not a date" in out["date_error"]
    out = _fields(next(_ask(handlers, since="2024-05-01", until="2024-04-01")))
    assert "swap them" in out["date_error"] and out["chatbot"] == gr.skip()
    chips, error = date_state("2024-03-01", "")
    assert "from 2024-03-01" in chips and error == ""
    states = handlers.validate("x" * 100_000, [], [], "", 4, "", "", "hybrid")
    assert len(states) == 9 and states[0]["is_valid"] is False and all(s["is_valid"] for s in states[1:])


def test_chips_show_the_active_filter():
    assert chips_html(check_dates("", "")) == ""
    chips = chips_html(check_dates("2024-03-01", "2024-03-31"))
    assert "from 2024-03-01" in chips and "until 2024-03-31" in chips and 'role="status"' in chips


def test_a_refusal_caused_by_the_filter_names_it(seeded):
    handlers = ChatHandlers(seeded, seeded.available_llms())
    final = [o for o in _ask(handlers, since="2030-01-01")][-1]
    text = final[0][-1]["content"].replace("\\", "")  # markdown escapes
    assert text.startswith("I could not find any article published on or after 2030-01-01. Try clearing the date filter.")
    assert '<details class="why"><summary>Why</summary>' in text and "no passage was retrieved" in text
    first = _fields(next(_ask(ChatHandlers(seeded, seeded.available_llms()), since="2030-01-01", session="s2")))
    assert "from 2030-01-01" in first["chips"]


def test_a_coverage_refusal_reads_well_with_the_reason_folded():
    info = ArticleInfo("a1", "T", "S", None, None, None, "a.txt", 1, "now")
    answer = Answer("q", "The indexed articles do not say.", [], [Hit(1, info, 0, 0, 4, "text", 0.1)], refused=True,
                    notes=["no retrieved passage mentions: Lavrov"], refused_by="coverage")
    md = answer_markdown(answer, 0)
    assert md.startswith("I could not find anything about Lavrov in the indexed articles.")
    assert '<details class="why"><summary>Why</summary>' in md
    # Limited to one article (the Library's "Ask about this article"): the refusal says so, and how to widen it.
    md = answer_markdown(answer, 0, "", "the article “Rail strike”").replace("\\", "")
    assert md.startswith("I could not find anything about Lavrov in the article “Rail strike”. Try asking about all articles.")
    md = answer_markdown(answer, 0, "published on or after 2024-01-01", "the article “Rail strike”").replace("\\", "")
    assert "in the article “Rail strike” published on or after 2024-01-01." in md and "Try clearing the date filter" in md


def test_a_refusal_under_the_article_filter_names_the_article(seeded):
    handlers = ChatHandlers(seeded, seeded.available_llms())
    article = seeded.articles()[0]
    final = [o for o in _ask(handlers, "What did the mayor of Oslo say about trams?", article_ids=[article.id])][-1]
    text = final[0][-1]["content"].replace("\\", "")
    assert f"the article “{article.title}”" in text and "Try asking about all articles." in text, text


TEXT = "The port reopened on Monday. Cranes were repaired overnight. Ships queued for two days."


def _cited_twice() -> Answer:
    info = ArticleInfo("p1", "Port reopens", "Harbour News", "https://news.example/port", "Ana Ruiz", date(2024, 2, 3), "p.txt", 1, "now")
    hit = Hit(1, info, 0, 0, len(TEXT), TEXT, 0.9)
    first, second = "The port reopened on Monday.", "Ships queued for two days."
    cites = [Citation(1, hit, first, 0, len(first)), Citation(1, hit, second, TEXT.index(second), len(TEXT))]
    return Answer("When did the port reopen?", "It reopened on Monday [1]. Ships waited two days [1].", cites, [hit])


def test_every_cited_sentence_is_highlighted_and_previewed():
    answer = _cited_twice()
    cards = sources_html([answer], {"p1": TEXT})
    passage = cards.split('class="passage">')[1].split("</p>")[0]
    assert passage.count("<mark>") == 2
    assert "<mark>The port reopened on Monday.</mark>" in passage and "<mark>Ships queued for two days.</mark>" in passage
    assert "Harbour News · by Ana Ruiz · 2024-02-03" in cards and 'href="https://news.example/port"' in cards
    md = answer_markdown(answer, 0)
    assert md.count('<a class="cite"') == 2 and md.count('role="tooltip"') == 2
    assert "The port reopened on Monday" in md.split('role="tooltip">')[1] and "Harbour News" in md


def test_suggestions_come_from_the_newest_headlines():
    def article(i: str, title: str, day: int, dup: str | None = None) -> ArticleInfo:
        return ArticleInfo(i, title, None, None, None, date(2024, 1, day), "x", 1, "now", dup)

    articles = [article("a", "Old story", 1), article("b", "Port reopens after storm.", 9), article("c", "Port reopens after storm", 8),
                article("d", "Wire copy", 7, dup="b"), article("e", "Budget passes", 5)]
    assert suggested_questions(articles, n=3) == [
        "What is reported about “Port reopens after storm”?", "What is reported about “Budget passes”?",
        "What is reported about “Old story”?",
    ]
    assert suggested_questions([]) == []


def test_stop_lets_a_cancelled_condense_skip_the_answer_prompt(seeded):
    cancel = threading.Event()
    cancel.set()
    calls = len(seeded.generator.calls)
    answer = [e for e in seeded.stream("And what did he say?", [("Who spoke?", "Lavrov.")], cancel=cancel)][-1]
    assert isinstance(answer, Answer)
    kinds = [c.kind for c in seeded.generator.calls[calls:]]
    assert "answer" not in kinds


def test_the_ask_api_keeps_its_outputs_and_reports_bad_dates_in_the_chat(seeded):
    handlers = ChatHandlers(seeded, seeded.available_llms())
    request = gr.Request(session_hash="api")
    outs = list(handlers.ask_api(QUESTION, [], [], "", 4, "", "", "hybrid", request))
    assert {len(o) for o in outs} == {4}
    chat, _, turns, _ = outs[-1]
    assert 'class="cite"' in chat[-1]["content"] and len(turns) == 1
    (bad,) = handlers.ask_api(QUESTION, [], [], "", 4, "March 2024", "", "hybrid", request)
    assert bad[0][-1]["content"].startswith("⚠️") and "not a date" in bad[0][-1]["content"]
