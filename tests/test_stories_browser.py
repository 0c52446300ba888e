"""The Briefing and Timeline tabs and related coverage (chat Sources panel, Library), driven in a
real headless Chromium against the real app, embedder and tiny model, on the story fixture.
Screenshots go to test-output/screenshots/ (stories-*.png)."""

from __future__ import annotations

import re
import time

import pytest

from rag.serve.web import launch
from tests.stories_helpers import fixture_rag

from .test_ui_browser import SHOTS, _free_port, _open, browser  # noqa: F401  (the shared Chromium fixture)

pytestmark = pytest.mark.real_models


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, minilm, smollm):
    rag = fixture_rag(tmp_path_factory.mktemp("stories-ui") / "index", minilm, follow_ups=True, llm=smollm)
    port = _free_port()
    app = launch(rag=rag, port=port, block=False)
    yield f"http://127.0.0.1:{port}", rag
    app.close()
    rag.close()


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_the_briefing_tab_shows_the_weeks_stories_with_cited_sentences(server, browser):  # noqa: F811
    url, _ = server
    context, page = _open(browser, url)
    _tab(page, "Briefing")
    assert page.input_value("#brief-until input, #brief-until textarea") == "2025-04-17"  # the newest article's day
    page.fill("#brief-since input, #brief-since textarea", "2025-03-03")
    page.fill("#brief-until input, #brief-until textarea", "2025-03-09")
    page.click("#brief")
    page.wait_for_selector("#briefing article.story", timeout=120_000)
    stories = page.locator("#briefing article.story")
    assert stories.count() == 8
    assert "8 stories from 30 articles published 2025-03-03 to 2025-03-09" in page.inner_text("#briefing-summary")
    first = stories.first
    assert re.match(r"1\. Rotterdam", first.locator("h3").inner_text())
    assert "Northsea Wire, Daily Ledger, Harbour Post, Continental Times · 2025-03-03 to 2025-03-09 · 5 articles" in first.inner_text()
    assert first.locator("sup a").count() >= 3
    first.locator("details > summary").click()
    quotes = first.locator("ol.quotes li")
    assert quotes.count() >= 3 and "began a 48-hour strike on Monday" in quotes.first.inner_text()
    page.screenshot(path=str(SHOTS / "stories-briefing.png"), full_page=True)

    # A bad period is named, and the stories shown stay.
    page.fill("#brief-since input, #brief-since textarea", "last tuesday")
    page.click("#brief")
    page.wait_for_selector("text=is not a date", timeout=30_000)
    assert page.locator("#briefing article.story").count() == 8
    context.close()


def test_the_timeline_tab_lays_out_dated_events_in_order(server, browser):  # noqa: F811
    url, _ = server
    context, page = _open(browser, url)
    _tab(page, "Timeline")
    page.fill("#timeline-subject input, #timeline-subject textarea", "Corvel Health data breach")
    page.click("#show-timeline")
    page.wait_for_selector("#timeline li.event", timeout=120_000)
    days = page.locator("#timeline li.event time").all_inner_texts()
    assert days == sorted(days) and days[0] == "2025-02-20"
    events = page.locator("#timeline li.event")
    assert "“february 20, 2025”" in events.first.inner_text()
    assert page.locator("#timeline .date-from.published").count() >= 1  # an event dated by its article, marked so
    disclosed = events.filter(has_text="2.1 million patients").first
    assert "Atlantic Dispatch, Metro Courier" in disclosed.inner_text()  # the wire copy is the same entry
    page.screenshot(path=str(SHOTS / "stories-timeline.png"), full_page=True)
    context.close()


def test_the_library_shows_an_articles_related_coverage(server, browser):  # noqa: F811
    url, _ = server
    context, page = _open(browser, url)
    _tab(page, "Library")
    page.fill("#library-search input, #library-search textarea", "talks collapse")
    row = page.locator("#articles button.library-open", has_text="Rotterdam strike talks collapse as ships queue at sea").first
    row.wait_for(timeout=30_000)
    row.click()
    related = page.locator("#library-related")
    related.locator("text=Earlier stories").wait_for(timeout=60_000)
    text = related.inner_text()
    assert "The same story (4)" in text
    assert "Rotterdam port union warns of strike as wage talks open" in text.split("Earlier stories")[1].split("Later stories")[0]
    assert "Rotterdam dockworkers ratify pay deal" in text.split("Later stories")[1]
    page.screenshot(path=str(SHOTS / "stories-library-related.png"), full_page=True)
    context.close()


def test_the_sources_panel_offers_related_coverage_of_a_cited_article(server, browser):  # noqa: F811
    url, _ = server
    context, page = _open(browser, url)
    page.fill("#question textarea", "What did Corvel Health say about the hackers?")
    page.click("#send")
    page.wait_for_selector("#sources .src", timeout=240_000)
    page.locator("#sources-related-box").get_by_text("Related coverage").click()
    deadline = time.time() + 60
    while time.time() < deadline and "The same story" not in page.inner_text("#sources-related"):
        time.sleep(0.2)
    text = page.inner_text("#sources-related")
    assert "The same story" in text and "Corvel" in text
    page.screenshot(path=str(SHOTS / "stories-sources-related.png"), full_page=True)
    context.close()
