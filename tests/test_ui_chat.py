"""The Chat tab as a user meets it, in a real headless Chromium at desktop (1366×768) and phone
(390×844) sizes, over the real index, MiniLM and the tiny SmolLM2 (fast answers; what it says
matters less here than what the page shows while it says it): progress while it works, Ask and
Stop, the date filter in sight, suggested questions, plain-language options, and axe-core's
accessibility rules. Screenshots go to test-output/screenshots/."""

from __future__ import annotations

import re
import time

import pytest

from rag import RAG, Settings

from . import test_ui_browser as shared
from .conftest import SEEDS
from .test_ui_browser import SHOTS, serving

pytestmark = pytest.mark.real_models
browser = shared.browser  # the same module-scoped Chromium fixture
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
BOT = "#chatbot [data-testid='bot']"
SIZES = {"desktop": DESKTOP, "phone": PHONE}
each_size = pytest.mark.parametrize("size", list(SIZES))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, minilm, smollm):
    index = tmp_path_factory.mktemp("ui-chat-index")
    settings = Settings(index_dir=index, seeds_dir=SEEDS, llm="smollm2-135m-instruct")
    rag = RAG.open(settings=settings, embedder=minilm, llm=smollm)
    with serving(rag) as url:
        yield url, rag


def _open(browser, url: str, viewport: dict[str, int] = DESKTOP):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#question textarea", timeout=60_000)
    return context, page


def _finished(page, before: int, timeout: float = 120) -> str:
    """Wait until the answer after ``before`` bot bubbles is final (Ask enabled again)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        bots = page.locator(BOT)
        if bots.count() > before and page.locator("#send").is_enabled() and not page.locator(f"{BOT} .phase").count():
            return bots.last.inner_text()
        time.sleep(0.1)
    raise AssertionError(f"no final answer; the page shows {page.locator('#chatbot').inner_text()[-300:]!r}")


def _serious(page, context: str | None = None) -> list[str]:
    """axe-core's serious and critical violations on the page (or inside ``context``)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=context)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"] if v["impact"] in ("serious", "critical")
    ]


@each_size
def test_progress_phases_with_seconds_and_buttons_while_it_works(server, browser, size):
    url, _ = server
    context, page = _open(browser, url, SIZES[size])
    assert page.locator("#stop").is_disabled() and page.locator("#send").is_enabled()
    page.fill("#question textarea", "How many days of national mourning did Türkiye declare?")
    page.click("#send")
    # While it works (the progress line shows): Ask disabled, Stop enabled.
    busy = "document.querySelector('#chatbot .phase') && document.querySelector('#send').disabled && !document.querySelector('#stop').disabled"
    page.wait_for_function(busy, timeout=60_000, polling="raf")
    seen: list[str] = []
    deadline = time.time() + 120
    while time.time() < deadline:
        bots = page.locator(BOT)
        if bots.count():
            text = bots.last.inner_text()
            if not seen or seen[-1] != text:
                seen.append(text)
            if page.locator(f"{BOT} .phase").count():
                if len(seen) == 1:
                    page.screenshot(path=str(SHOTS / f"chat-progress-{size}.png"))
            elif page.locator("#send").is_enabled():
                break
        time.sleep(0.03)
    phases = [t for t in seen if re.search(r"(Starting|Searching the articles|Reading \d+ passages?|Writing)… \d+ s$", t)]
    assert phases, seen
    assert page.locator("#send").is_enabled() and page.locator("#stop").is_disabled()
    final = page.locator(BOT).last.inner_text()
    assert "(stopped)" not in final and "…" not in final[-3:]
    # Stop on a finished answer does nothing to it.
    page.locator("#stop").dispatch_event("click")  # hidden on a phone when idle: a click by event
    page.wait_for_timeout(500)
    assert page.locator(BOT).last.inner_text() == final
    page.screenshot(path=str(SHOTS / f"chat-answered-{size}.png"))
    context.close()


@each_size
def test_stop_before_the_first_word_frees_the_model(server, browser, size):
    url, rag = server
    context, page = _open(browser, url, SIZES[size])
    page.fill("#question textarea", "Summarise everything the articles say about Gaza, in detail.")
    page.click("#send")
    page.wait_for_function(
        "document.querySelector('#chatbot .phase') && /Reading|Searching|Starting/.test(document.querySelector('#chatbot .phase').innerText)",
        timeout=60_000, polling=20,
    )
    page.click("#stop")
    page.wait_for_function(
        "['Stopped before the answer began', '(stopped)'].some(t => document.querySelector('#chatbot').innerText.includes(t))",
        timeout=10_000,
    )
    assert page.locator("#send").is_enabled() and page.locator("#stop").is_disabled()
    # The model is free (its lock taken by nobody) soon after Stop, whatever it was doing.
    generator = rag.generator
    deadline = time.time() + 10
    while not generator._lock.acquire(blocking=False):
        assert time.time() < deadline, "the model is still busy after Stop"
        time.sleep(0.05)
    generator._lock.release()
    before = page.locator(BOT).count()
    page.fill("#question textarea", "How many days of national mourning did Türkiye declare?")
    page.click("#send")
    assert "Stopped" not in _finished(page, before)
    context.close()


@each_size
def test_date_filter_in_sight_field_errors_and_a_refusal_that_names_it(server, browser, size):
    url, _ = server
    context, page = _open(browser, url, SIZES[size])
    assert page.inner_text("#filter-chips").strip() == ""
    page.get_by_text("Filters and options").click()
    page.fill("#since input", "March 2024")
    page.fill("#question textarea", "Where was Lavrov speaking?")
    page.click("#send")
    page.wait_for_function("document.querySelector('#date-error').innerText.includes('is not a date')", timeout=20_000)
    assert page.locator(BOT).count() == 0 and page.input_value("#question textarea") == "Where was Lavrov speaking?"
    assert page.get_attribute("#since input", "aria-invalid") == "true"
    page.fill("#since input", "2024-05-01")
    page.fill("#until input", "2024-04-01")
    page.press("#until input", "Enter")
    page.wait_for_function("document.querySelector('#date-error').innerText.includes('swap them')", timeout=20_000)
    page.screenshot(path=str(SHOTS / f"chat-date-error-{size}.png"), full_page=True)
    page.fill("#until input", "")
    page.fill("#since input", "2030-01-01")
    page.press("#since input", "Enter")
    page.wait_for_function("document.querySelector('#filter-chips').innerText.includes('from 2030-01-01')", timeout=20_000)
    assert page.inner_text("#date-error").strip() == ""
    page.click("#send")
    text = _finished(page, 0)
    assert text.startswith("I could not find any article published on or after 2030-01-01. Try clearing the date filter.")
    why = page.locator(f"{BOT} details.why").last
    assert not why.locator("text=no passage was retrieved").is_visible()
    why.locator("summary").click()
    assert why.locator("text=no passage was retrieved").is_visible()
    page.screenshot(path=str(SHOTS / f"chat-filter-refusal-{size}.png"), full_page=True)
    context.close()


@each_size
def test_suggested_questions_come_from_headlines_and_ask_at_once(server, browser, size):
    url, rag = server
    context, page = _open(browser, url, SIZES[size])
    suggestions = page.locator("#suggestions button")
    assert suggestions.count() >= 1
    first = suggestions.first.inner_text()
    newest = rag.articles()[0].title
    assert first.startswith("What is reported about “") and newest[:30] in first
    suggestions.first.click()
    page.wait_for_selector("#chatbot [data-testid='user']", timeout=20_000)
    assert newest[:30] in page.locator("#chatbot [data-testid='user']").last.inner_text()
    _finished(page, 0)
    context.close()


@each_size
def test_options_explain_modes_and_models_in_plain_words(server, browser, size):
    url, _ = server
    context, page = _open(browser, url, SIZES[size])
    page.get_by_text("Filters and options").click()
    assert "best all-round" in page.input_value("#mode input")
    page.click("#mode input")
    options = page.get_by_role("option").all_inner_texts()
    assert any(o.startswith("Exact words: good for names") for o in options) and any(o.startswith("Meaning:") for o in options)
    page.keyboard.press("Escape")
    assert "trying the app" in page.input_value("#model input")  # SmolLM2, said to be for trying only
    context.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_axe_finds_no_serious_problem_on_chat_and_library(server, browser, size):
    url, _ = server
    context, page = _open(browser, url, DESKTOP if size == "desktop" else PHONE)
    assert page.get_by_role("textbox", name="Your question", exact=True).count() == 1  # not "Textbox"
    assert _serious(page) == []
    page.fill("#question textarea", "How many days of national mourning did Türkiye declare?")
    page.click("#send")
    _finished(page, 0)
    labels = page.locator(BOT).evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    assert labels and all(label.startswith("Answer: ") and "<" not in label for label in labels)
    page.get_by_text("Filters and options").click()
    page.evaluate("document.querySelectorAll('#sources details').forEach(d => { d.open = true; })")
    assert _serious(page) == []
    page.screenshot(path=str(SHOTS / f"chat-{size}.png"), full_page=True)
    page.get_by_role("tab", name="Library").click()
    page.wait_for_selector("#articles", state="visible")
    library = _serious(page)
    page.screenshot(path=str(SHOTS / f"library-{size}.png"), full_page=True)
    assert library == []
    context.close()
