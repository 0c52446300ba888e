from __future__ import annotations

from datetime import date

import pytest

from rag import RAG
from rag.answer.dates import resolve_dates

from .conftest import DATA, SEEDS

SAT = date(2023, 10, 21)  # a Saturday, two days after Lavrov's Thursday news conference


@pytest.mark.parametrize(
    ("question", "since", "until"),
    [
        ("What did Lavrov say yesterday?", date(2023, 10, 20), date(2023, 10, 20)),
        ("What happened today?", SAT, SAT),
        ("What did Lavrov say on Thursday?", date(2023, 10, 19), date(2023, 10, 19)),
        ("What happened last week?", date(2023, 10, 9), date(2023, 10, 15)),
        ("What happened this week?", date(2023, 10, 16), SAT),
        ("Any news in the past week?", date(2023, 10, 14), SAT),
        ("What happened last month?", date(2023, 9, 1), date(2023, 9, 30)),
        ("What happened in October 2023?", date(2023, 10, 1), date(2023, 10, 31)),
        ("What did the council decide in March?", date(2023, 3, 1), date(2023, 3, 31)),
        ("What happened in November?", date(2022, 11, 1), date(2022, 11, 30)),  # latest November not in the future
        ("What happened on 19 October 2023?", date(2023, 10, 19), date(2023, 10, 19)),
        ("What was reported on October 19th, 2023?", date(2023, 10, 19), date(2023, 10, 19)),
        ("Anything from 2023-10-19?", date(2023, 10, 19), date(2023, 10, 19)),
        ("What happened 3 days ago?", date(2023, 10, 18), date(2023, 10, 18)),
        ("What did the report two days ago say?", date(2023, 10, 19), date(2023, 10, 19)),
        ("What happened in 2022?", date(2022, 1, 1), date(2022, 12, 31)),
    ],
)
def test_relative_and_explicit_dates(question: str, since: date, until: date):
    found = resolve_dates(question, SAT)
    assert found is not None and (found.since, found.until) == (since, until)


def test_questions_without_dates():
    assert resolve_dates("Where was Lavrov speaking?", SAT) is None
    assert resolve_dates("What did Türkiye propose for the Israel-Palestine conflict?", SAT) is None
    assert resolve_dates("How many days of national mourning did Türkiye declare?", SAT) is None


def test_widened_range_covers_reporting_lag():
    found = resolve_dates("What did Lavrov say on Thursday?", SAT).widened()
    assert (found.since, found.until) == (date(2023, 10, 19), date(2023, 10, 21))


def test_date_in_the_question_filters_retrieval_and_falls_back(fake_rag: RAG):
    fake_rag.add([DATA, SEEDS])
    hits = fake_rag.search("What did the council approve last week?", k=10, today="2024-02-19")
    assert hits and all(date(2024, 2, 5) <= h.article.published <= date(2024, 2, 13) for h in hits)
    # Nothing was published in that window: the limit is dropped rather than returning nothing.
    assert fake_rag.search("What happened last week?", k=3, today="2030-06-01")
    answer = fake_rag.ask("What did the council approve last week?", today="2024-02-19")
    assert any(n.startswith("dates: 'last week'") for n in answer.notes)
    # Explicit since/until win over words in the question.
    hits = fake_rag.search("What happened last week?", k=10, since="2023-01-01", until="2023-12-31", today="2024-02-19")
    assert {h.article.source for h in hits} == {"Anadolu Agency (AA)"}
