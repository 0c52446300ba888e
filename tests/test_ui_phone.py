"""The chat on a phone (issue #16, item 8), in a real headless Chromium at 390×844 (emulating a
touch phone, and as a plain narrow window) against the real app, index, MiniLM and the tiny
SmolLM2: the question box and Ask on screen without scrolling, on load and as the conversation
grows; Sources in a drawer that a citation opens at its highlighted card and "Back to answer"
(or Escape) closes, back at the citation; axe-core on both states; the other views no wider
than the screen; the desktop layout as it was. The last test writes the README's screenshots
(with Qwen, for an answer worth showing): test-output/screenshots/ and docs/screenshots/."""

from __future__ import annotations

import io

import pytest

from rag import RAG, Settings

from . import test_ui_browser as shared
from .conftest import ROOT, SEEDS
from .test_ui_browser import SHOTS, _ask, serving
from .test_ui_chat import _finished, _serious

pytestmark = pytest.mark.real_models
browser = shared.browser  # the same module-scoped Chromium fixture
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 1000}
BOT = "#chatbot [data-testid='bot']"
README_SHOTS = ROOT / "docs" / "screenshots"
MOURNING = "How many days of national mourning did Türkiye declare?"
SPEAKING = "Where was Lavrov speaking?"

# Whether an element is on screen, whole, and not under another one (the sticky row, the drawer).
ON_SCREEN = """(e) => {
  const r = e.getBoundingClientRect();
  if (r.width === 0 || r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) return false;
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return !!hit && (e.contains(hit) || hit.contains(e));
}"""
DRAWER_SHOWN = """() => { const r = document.getElementById('sources-column').getBoundingClientRect();
  return r.left === 0 && r.top === 0 && r.right === innerWidth && r.bottom === innerHeight; }"""  # slid in, the whole screen
DRAWER_HIDDEN = "() => getComputedStyle(document.getElementById('sources-column')).display === 'none'"


def _serve(tmp_path_factory: pytest.TempPathFactory, embedder, generator, **settings):  # type: ignore[no-untyped-def]
    """The chat over a fresh index of the seed article, answering with ``generator``."""
    index = tmp_path_factory.mktemp("ui-phone-index")
    return serving(RAG.open(settings=Settings(index_dir=index, seeds_dir=SEEDS, **settings), embedder=embedder, llm=generator))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, minilm, smollm):
    with _serve(tmp_path_factory, minilm, smollm, llm="smollm2-135m-instruct") as url:
        yield url


def _open(browser, url: str, touch: bool = True, viewport: dict[str, int] = PHONE):
    """A page at ``viewport``: a touch phone (mobile viewport, touch events) or a plain window."""
    context = browser.new_context(viewport=viewport, is_mobile=touch, has_touch=touch)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#question textarea", timeout=60_000)
    page.wait_for_timeout(300)  # the page script's first layout pass (it sizes the conversation)
    return context, page


def _on_screen(page, selector: str) -> bool:
    return bool(page.locator(selector).evaluate(ON_SCREEN))


def _answer_with_citation(page, question: str) -> None:
    _ask(page, question)
    assert page.locator(BOT).last.locator("a.cite").count(), page.locator(BOT).last.inner_text()


def _no_sideways_scroll(page) -> bool:
    return bool(page.evaluate("document.scrollingElement.scrollWidth <= innerWidth"))


@pytest.mark.parametrize("touch", [True, False], ids=["touch-phone", "narrow-window"])
def test_the_question_box_and_ask_are_on_screen_on_load_and_as_the_conversation_grows(server, browser, touch):
    context, page = _open(browser, server, touch)
    assert _on_screen(page, "#question textarea") and _on_screen(page, "#send")
    assert _no_sideways_scroll(page)
    for question in (MOURNING, SPEAKING):
        before = page.locator(BOT).count()
        page.fill("#question textarea", question)
        page.click("#send")
        # While it answers, the button in the row is Stop (Ask, disabled, makes room for it).
        page.wait_for_function("document.querySelector('#stop') && !document.querySelector('#stop').disabled", timeout=60_000)
        assert _on_screen(page, "#stop") and not page.locator("#send").is_visible()
        assert _on_screen(page, "#question textarea")
        _finished(page, before)
        assert page.locator(BOT).last.locator("a.cite").count(), page.locator(BOT).last.inner_text()
        assert _on_screen(page, "#question textarea") and _on_screen(page, "#send"), question
        assert not page.locator("#stop").is_visible()
    assert _no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / f"phone-two-answers-{'touch' if touch else 'narrow'}.png"))
    context.close()


def test_on_a_short_screen_the_question_row_sticks_to_its_bottom(server, browser):
    """360×420 (a small phone with its keyboard up): the header and the smallest useful
    conversation do not leave room for the row below them, so it sticks to the screen's bottom."""
    context, page = _open(browser, server, viewport={"width": 360, "height": 420})
    assert page.evaluate("window.scrollY") == 0
    chat_bottom = page.locator("#chatbot").evaluate("e => e.getBoundingClientRect().bottom")
    row = page.locator("#ask-row").bounding_box()
    assert chat_bottom + row["height"] > 420, "the row would fit below the conversation here: the test shows nothing"
    assert _on_screen(page, "#question textarea") and _on_screen(page, "#send")
    assert abs(row["y"] + row["height"] - 420) <= 1  # stuck to the bottom
    page.screenshot(path=str(SHOTS / "phone-short-screen.png"))
    context.close()


def test_a_citation_opens_the_sources_drawer_and_back_to_answer_returns_to_it(server, browser):
    context, page = _open(browser, server)
    assert page.evaluate(DRAWER_HIDDEN)
    assert not page.locator("#sources-open").is_visible()  # no sources before the first answer
    _answer_with_citation(page, MOURNING)
    _answer_with_citation(page, SPEAKING)
    assert page.evaluate(DRAWER_HIDDEN)
    drawer = page.locator("#sources-column")
    assert drawer.get_attribute("role") == "dialog" and drawer.get_attribute("aria-modal") == "true"

    cite = page.locator(BOT).first.locator("a.cite").first  # the first answer's: its card is lower in the drawer
    href = cite.get_attribute("href")
    cite.tap()
    page.wait_for_function(DRAWER_SHOWN)
    card = page.locator(href)
    assert card.get_attribute("open") is not None and "mourning" in card.locator("mark").first.inner_text()
    # Scrolled (smoothly) to the highlighted sentence.
    page.wait_for_function("(card) => { const r = document.querySelector(card + ' mark').getBoundingClientRect();"
                           " return r.top >= 0 && r.bottom <= innerHeight; }", arg=href)
    assert page.evaluate(f"document.activeElement === document.querySelector('{href} > summary')")
    assert page.get_by_role("dialog", name="Sources").count() == 1
    assert page.locator("#sources-open").get_attribute("aria-expanded") == "true"
    assert _on_screen(page, "#sources-back") and page.locator("#sources-back").inner_text().strip() == "Back to answer"
    # The page behind does not scroll, and Tab stays inside the drawer (aria-modal).
    assert page.evaluate("getComputedStyle(document.documentElement).overflow") == "hidden"
    for _ in range(12):
        page.keyboard.press("Tab")
        assert page.evaluate("document.getElementById('sources-column').contains(document.activeElement)")
    page.screenshot(path=str(SHOTS / "phone-sources-drawer.png"))

    page.locator("#sources-back").tap()
    page.wait_for_function(DRAWER_HIDDEN)
    page.wait_for_function(f"document.activeElement && document.activeElement.getAttribute('href') === '{href}'")
    assert page.evaluate("(bot) => document.activeElement.closest(bot) === document.querySelector(bot)", BOT)  # the first answer's
    assert _on_screen(page, f"{BOT} a.cite:focus")
    assert page.locator("#sources-open").get_attribute("aria-expanded") == "false"
    page.screenshot(path=str(SHOTS / "phone-back-to-answer.png"))

    # "Sources (n)", by the question box, opens the drawer without a citation; Escape closes it.
    opener = page.locator("#sources-open")
    cited = page.locator("#sources section.turn").first.locator("details.src.cited").count()
    assert opener.inner_text().strip() == f"Sources ({cited})" and _on_screen(page, "#sources-open")
    opener.tap()
    page.wait_for_function(DRAWER_SHOWN)
    assert page.evaluate("document.activeElement.id") == "sources-back"
    assert opener.get_attribute("aria-expanded") == "true"
    page.keyboard.press("Escape")
    page.wait_for_function(DRAWER_HIDDEN)
    assert page.evaluate("document.activeElement.id") == "sources-open" and opener.get_attribute("aria-expanded") == "false"
    assert page.evaluate("getComputedStyle(document.documentElement).overflow") != "hidden"
    context.close()


def test_axe_finds_no_serious_problem_with_the_drawer_closed_and_open(server, browser):
    context, page = _open(browser, server)
    _answer_with_citation(page, MOURNING)
    assert _serious(page) == []
    page.locator(BOT).last.locator("a.cite").first.tap()
    page.wait_for_function(DRAWER_SHOWN)
    page.evaluate("document.querySelectorAll('#sources details').forEach(d => { d.open = true; })")
    assert _serious(page) == []
    # The drawer's own controls read at least 4.5:1 (axe's colour-contrast covers its text too).
    page.keyboard.press("Escape")
    page.wait_for_function(DRAWER_HIDDEN)
    assert _serious(page) == []
    context.close()


def test_briefing_and_timeline_are_no_wider_than_a_phone(server, browser):
    context, page = _open(browser, server)
    page.get_by_role("tab", name="Briefing").click()
    page.click("#brief")
    page.wait_for_selector("#briefing article.story", timeout=120_000)
    page.locator("#briefing article.story details > summary").first.click()  # the quoted sentences, open
    assert _no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / "phone-briefing.png"), full_page=True)
    page.get_by_role("tab", name="Timeline").click()
    page.fill("#timeline-subject input, #timeline-subject textarea", "Lavrov")
    page.click("#show-timeline")
    page.wait_for_selector("#timeline .event", timeout=120_000)
    assert _no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / "phone-timeline.png"), full_page=True)
    context.close()


def test_the_desktop_keeps_the_sources_column_beside_the_chat(server, browser):
    context, page = _open(browser, server, touch=False, viewport=DESKTOP)
    assert not page.locator("#sources-open").is_visible() and not page.locator("#sources-back").is_visible()
    drawer = page.locator("#sources-column")
    assert drawer.get_attribute("role") is None and drawer.is_visible()
    chat, column = page.locator("#chatbot").bounding_box(), drawer.bounding_box()
    assert column["x"] >= chat["x"] + chat["width"] and column["y"] < chat["y"] + chat["height"]  # beside, not below
    assert page.locator("#chatbot").evaluate("e => e.getBoundingClientRect().height") == 520  # Chatbot(height=520)
    _answer_with_citation(page, MOURNING)
    page.locator(BOT).last.locator("a.cite").first.click()
    page.wait_for_function("document.activeElement && document.activeElement.closest('#sources details.src.cited')")
    moved = drawer.bounding_box()  # where it was (taller now, with the cards)
    assert (moved["x"], moved["y"], moved["width"]) == (column["x"], column["y"], column["width"])
    assert page.evaluate("getComputedStyle(document.documentElement).overflow") != "hidden"
    assert _on_screen(page, "#question textarea")
    context.close()


@pytest.fixture(scope="module")
def qwen_server(tmp_path_factory: pytest.TempPathFactory, minilm, qwen):
    with _serve(tmp_path_factory, minilm, qwen) as url:
        yield url


def _save(name: str, png: bytes) -> None:
    """A screenshot into test-output/ and, for the README, docs/screenshots/."""
    README_SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"readme-{name}").write_bytes(png)
    (README_SHOTS / name).write_bytes(png)
    assert len(png) < 300_000, f"{name} is {len(png)} bytes: too big for the README"


def _side_by_side(left: bytes, right: bytes, gap: int = 24) -> bytes:
    """Two phone screens in one picture (Pillow comes with Gradio)."""
    from PIL import Image

    a, b = Image.open(io.BytesIO(left)), Image.open(io.BytesIO(right))
    both = Image.new("RGB", (a.width + gap + b.width, max(a.height, b.height)), "#e4e4e7")
    both.paste(a, (0, 0))
    both.paste(b, (a.width + gap, 0))
    out = io.BytesIO()
    both.save(out, format="PNG", optimize=True)
    return out.getvalue()


def test_the_readme_screenshots(qwen_server, browser):
    """docs/screenshots/chat-desktop.png and chat-phone.png: a real answer (Qwen) with its cited card,
    and on the phone the answer beside the Sources drawer its citation opened."""
    context, page = _open(browser, qwen_server, touch=False, viewport=DESKTOP)
    _answer_with_citation(page, MOURNING)
    page.locator(BOT).last.locator("a.cite").first.click()
    page.wait_for_function("document.activeElement && document.activeElement.closest('#sources details.src.cited')")
    page.mouse.move(0, 0)
    page.locator("#question textarea").focus()  # the focus ring off the card, the preview closed
    page.wait_for_timeout(2500)  # the card's flash outline fades
    assert "three days of national mourning" in page.locator("#sources details.src.cited mark").first.inner_text()
    _save("chat-desktop.png", page.screenshot())
    context.close()

    context, page = _open(browser, qwen_server)
    _answer_with_citation(page, MOURNING)
    page.locator("#question textarea").blur()
    answer = page.screenshot()
    page.locator(BOT).last.locator("a.cite").first.tap()
    page.wait_for_function(DRAWER_SHOWN)
    page.wait_for_timeout(2500)
    assert "three days of national mourning" in page.locator("#sources details.src.cited mark").first.inner_text()
    (SHOTS / "readme-chat-phone-answer.png").write_bytes(answer)
    (SHOTS / "readme-chat-phone-drawer.png").write_bytes(drawer := page.screenshot())
    _save("chat-phone.png", _side_by_side(answer, drawer))
    context.close()
