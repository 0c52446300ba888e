"""The browser chat, driven in a real headless Chromium against the real app and models.
Screenshots go to test-output/screenshots/."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rag import RAG, Settings
from rag.serve.web import launch

from .conftest import DATA, ROOT, SEEDS

pytestmark = pytest.mark.real_models
CHROMIUM = os.environ.get("RAG_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "test-output" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(rag: RAG) -> Iterator[str]:
    """``rag``'s chat on a free local port; closed, with ``rag``, afterwards."""
    port = _free_port()
    app = launch(rag=rag, port=port, block=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.close()
        rag.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, minilm, qwen):
    index = tmp_path_factory.mktemp("ui-index")
    rag = RAG.open(settings=Settings(index_dir=index, seeds_dir=SEEDS), embedder=minilm, llm=qwen)
    with serving(rag) as url:
        yield url, rag


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"the browser tests need Chromium at {CHROMIUM} (scripts/install.sh --test installs it)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#question textarea", timeout=60_000)
    return context, page


def _ask(page, question: str, timeout: float = 180) -> list[str]:
    """Ask and wait for the final answer; returns the distinct texts the answer bubble went through."""
    before = page.locator("#chatbot [data-testid='bot']").count()
    page.fill("#question textarea", question)
    page.click("#send")
    seen: list[str] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        bots = page.locator("#chatbot [data-testid='bot']")
        n = bots.count()
        if n > before:
            text = bots.nth(n - 1).inner_text()
            if not seen or seen[-1] != text:
                seen.append(text)
            # Streamed pieces are plain text; only the final, checked answer has citation links.
            if bots.nth(n - 1).locator("a.cite").count() or "I could not find" in text:
                time.sleep(0.3)
                return seen
        time.sleep(0.05)
    page.screenshot(path=str(SHOTS / "no-answer.png"), full_page=True)
    raise AssertionError(f"no final answer to {question!r}; saw {seen[-3:]}")


def test_streamed_answer_with_citation_that_opens_its_passage(server, browser):
    url, _ = server
    context, page = _open(browser, url)
    seen = _ask(page, "How many days of national mourning did Türkiye declare?")
    # At least one state between the placeholder and the final answer: words arrived before the
    # end. (How many the page shows depends on how often a loaded machine lets Gradio push.)
    partial = [t for t in seen[:-1] if "Writing…" in t and t.split("Writing…")[0].strip()]
    assert partial, f"the answer did not stream: {seen}"
    # Before the words, the bubble said what was going on, with the seconds.
    assert any(re.match(r"(Searching the articles|Reading \d+ passages?)… \d+ s", t) for t in seen), seen
    answer = page.locator("#chatbot [data-testid='bot']").last
    assert "three days" in answer.inner_text().lower()

    # A citation looks like a link and previews its sentence on hover and on keyboard focus.
    cite = answer.locator("a.cite").first
    assert page.evaluate("e => getComputedStyle(e).textDecorationLine", cite.element_handle()) == "underline"
    preview = cite.locator(".cite-preview")
    assert not preview.is_visible()
    cite.hover()
    assert preview.is_visible() and "mourning" in preview.inner_text()
    inside = """([tip, box]) => { const a = tip.getBoundingClientRect(), b = box.getBoundingClientRect();
                  return a.left >= b.left && a.right <= b.right && a.top >= b.top; }"""
    assert page.evaluate(inside, [preview.element_handle(), page.locator("#chatbot").element_handle()])
    page.mouse.move(0, 0)
    cite.focus()
    assert preview.is_visible()
    page.screenshot(path=str(SHOTS / "citation-preview.png"))
    page.keyboard.press("Enter")  # the keyboard path: Enter on [n] opens its card and focuses it
    card = page.locator("#sources details.src.cited").first
    page.wait_for_function("document.activeElement && document.activeElement.closest('#sources details.src.cited')")
    assert card.get_attribute("open") is not None
    assert "three days of national mourning" in card.locator("mark").first.inner_text()
    card.locator("details.full-article > summary").click()
    assert "Pyongyang" in card.locator(".article-text").inner_text()
    page.screenshot(path=str(SHOTS / "answer-with-citation.png"), full_page=True)

    # A follow-up, rewritten with the conversation. (Not "he": after a question about Türkiye's
    # mourning, "he" has no antecedent in the conversation, and Qwen resolved it to nobody.)
    _ask(page, "And what did Lavrov say about Iran?")
    last = page.locator("#chatbot [data-testid='bot']").last.inner_text().lower()
    assert "iran" in last
    assert page.get_by_text("Searched for a standalone question").count() >= 1
    page.screenshot(path=str(SHOTS / "follow-up.png"), full_page=True)
    context.close()


def test_upload_then_answer_from_the_new_article(server, browser):
    url, rag = server
    context, page = _open(browser, url)
    page.get_by_role("tab", name="Library").click()
    page.set_input_files("#upload input[type=file]", [str(DATA / "wire_story.html")])
    page.wait_for_timeout(500)
    page.click("#add")
    page.wait_for_function("document.querySelector('#upload-results').innerText.includes('wire_story')", timeout=120_000)
    assert "added" in page.inner_text("#upload-results")
    assert "Port of Valdora reopens after storm" in page.inner_text("#articles")
    page.screenshot(path=str(SHOTS / "library-upload.png"), full_page=True)
    assert any(a.title == "Port of Valdora reopens after storm" for a in rag.articles())

    page.get_by_role("tab", name="Chat").click()
    _ask(page, "How many containers fell into the main channel at the Port of Valdora?")
    answer = page.locator("#chatbot [data-testid='bot']").last
    assert "37" in answer.inner_text()
    answer.locator("a.cite").first.click()
    assert "Valdora" in page.locator("#sources details.src.cited").first.inner_text()
    context.close()


def test_two_browsers_chat_at_the_same_time(server, browser):
    url, _ = server
    (c1, p1), (c2, p2) = _open(browser, url), _open(browser, url)
    # Playwright's sync API is bound to this thread: start both questions, then wait for both.
    p1.fill("#question textarea", "Where was Lavrov speaking?")
    p2.fill("#question textarea", "What did Türkiye propose for the Israel-Palestine conflict?")
    p1.click("#send")
    p2.click("#send")
    deadline = time.time() + 300
    while time.time() < deadline:
        a1 = p1.locator("#chatbot [data-testid='bot'] a.cite").count()
        a2 = p2.locator("#chatbot [data-testid='bot'] a.cite").count()
        if a1 and a2:
            break
        time.sleep(0.2)
    t1 = p1.locator("#chatbot").inner_text()
    t2 = p2.locator("#chatbot").inner_text()
    assert "Pyongyang" in t1 and "guarantor" in t2.lower()
    # Each session keeps its own history.
    assert "Türkiye propose" not in t1 and "Where was Lavrov" not in t2
    p1.screenshot(path=str(SHOTS / "concurrent-1.png"), full_page=True)
    p2.screenshot(path=str(SHOTS / "concurrent-2.png"), full_page=True)
    c1.close()
    c2.close()


def test_hostile_article_renders_as_text(server, browser, tmp_path: Path):
    url, rag = server
    evil = tmp_path / "evil.txt"
    evil.write_text(
        "Zanzibar clove harvest <script>window.__pwned = 1</script>\n"
        'The Zanzibar clove harvest <img src=x onerror="window.__pwned = 2"> doubled this year '
        "[click me](javascript:window.__pwned=3) according to **farmers**.\n"
    )
    rag.add([evil])
    context, page = _open(browser, url)
    _ask(page, "What happened to the Zanzibar clove harvest?")
    # Open every passage and article (nested <details>, some open already), so anything active would have run.
    page.evaluate("document.querySelectorAll('#sources details').forEach(d => { d.open = true; })")
    page.wait_for_timeout(500)
    assert page.evaluate("window.__pwned") is None
    assert '<img src=x onerror="window.__pwned = 2">' in page.locator("#sources").text_content()
    page.get_by_role("tab", name="Library").click()
    page.fill("#library-search input, #library-search textarea", "Zanzibar")
    page.wait_for_timeout(1000)
    assert "<script>" in page.inner_text("#articles")
    assert page.evaluate("window.__pwned") is None
    context.close()


def test_remove_date_range_and_stop(server, browser, tmp_path: Path):
    url, rag = server
    extra = tmp_path / "extra.md"
    extra.write_text("---\ntitle: Glacier museum opens\npublished: 2022-06-01\n---\nA glacier museum opened in Tromsø.\n")
    rag.add([extra])
    context, page = _open(browser, url)

    # Remove an article from the library.
    page.get_by_role("tab", name="Library").click()
    page.wait_for_function("document.querySelector('#articles').innerText.includes('Glacier museum opens')")
    page.get_by_role("checkbox", name="Select “Glacier museum opens”").check()
    page.wait_for_function("!document.querySelector('#remove').disabled")
    page.click("#remove")
    page.click("#remove-confirm-yes")  # tests/test_library_browser.py covers the confirmation and undo
    page.wait_for_function("!document.querySelector('#articles').innerText.includes('Glacier museum opens')", timeout=30_000)
    assert all(a.title != "Glacier museum opens" for a in rag.articles())

    # A date range with nothing in it: the answer says so; a bad date is a clear message.
    page.get_by_role("tab", name="Chat").click()
    page.locator("#chatbot").scroll_into_view_if_needed()
    page.get_by_text("Filters and options").click()
    page.fill("#since input", "2030-01-01")
    _ask(page, "Where was Lavrov speaking?")
    assert "I could not find any article published on or after 2030-01-01" in page.locator("#chatbot [data-testid='bot']").last.inner_text()
    bubbles = page.locator("#chatbot [data-testid='bot']").count()
    page.fill("#since input", "last week-ish")
    page.fill("#question textarea", "Where was Lavrov speaking?")
    page.click("#send")
    page.wait_for_function("document.querySelector('#date-error').innerText.includes('is not a date')", timeout=30_000)
    assert page.locator("#chatbot [data-testid='bot']").count() == bubbles  # a field error, not a chat message
    page.fill("#since input", "")
    page.press("#since input", "Enter")

    # Stop ends a generation, and the shared model is free for the next question.
    bots = page.locator("#chatbot [data-testid='bot']").count()
    page.fill("#question textarea", "Summarise everything Lavrov said about North Korea, in detail.")
    page.click("#send")
    page.wait_for_function(
        f"document.querySelectorAll('#chatbot [data-testid=bot]').length > {bots}", timeout=60_000
    )
    page.wait_for_timeout(1500)  # the model is rewriting the question or answering
    assert page.locator("#send").is_disabled() and page.locator("#stop").is_enabled()
    page.click("#stop")
    try:
        page.wait_for_function(
            "['(stopped)', 'Stopped before the answer began'].some(t => document.querySelector('#chatbot').innerText.includes(t))",
            timeout=10_000,
        )
    except Exception:
        page.screenshot(path=str(SHOTS / "stop-failed.png"), full_page=True)
        raise
    assert page.locator("#send").is_enabled() and page.locator("#stop").is_disabled()
    stopped = page.locator("#chatbot [data-testid='bot']").last.inner_text()
    page.wait_for_timeout(3000)
    assert page.locator("#chatbot [data-testid='bot']").last.inner_text() == stopped
    assert page.locator("#chatbot [data-testid='bot']").last.locator("a.cite").count() == 0
    _ask(page, "How many days of national mourning did Türkiye declare?", timeout=120)
    assert "three" in page.locator("#chatbot [data-testid='bot']").last.inner_text().lower()
    page.screenshot(path=str(SHOTS / "stop-and-dates.png"), full_page=True)
    context.close()


def test_gradio_client_calls_the_answer_endpoint(server):
    from gradio_client import Client

    url, _ = server
    client = Client(url, verbose=False)
    result = client.predict("How many days of national mourning did Türkiye declare?", [], 0, "", api_name="/answer")
    assert "three" in result["answer"].lower()
    assert result["citations"] and "mourning" in result["citations"][0]["quote"]
    refused = client.predict("What did Lavrov say about Brazil?", [], 0, "", api_name="/answer")
    assert refused["refused"] is True


def test_no_file_outside_is_served_and_uploads_are_capped(server):
    url, rag = server
    for path in ("/etc/passwd", str(ROOT / "README.md"), str(rag.store.directory / "store.sqlite")):
        r = httpx.get(f"{url}/gradio_api/file={path}")
        assert r.status_code in (403, 404), (path, r.status_code)
    too_big = b"x" * 10_000_001
    r = httpx.post(f"{url}/gradio_api/upload", files={"files": ("big.txt", too_big, "text/plain")})
    assert r.status_code == 413


def test_login_is_required_when_a_password_is_set(monkeypatch, tmp_path: Path, minilm):
    from gradio_client import Client

    from rag.testing import ExtractiveFakeGenerator

    monkeypatch.setenv("RAG_USERNAME", "editor")
    monkeypatch.setenv("RAG_PASSWORD", "s3cret-pass")
    rag = RAG.open(settings=Settings(index_dir=tmp_path / "idx", seeds_dir=SEEDS), embedder=minilm, llm=ExtractiveFakeGenerator())
    port = _free_port()
    app = launch(rag=rag, port=port, block=False)
    url = f"http://127.0.0.1:{port}"
    try:
        assert httpx.get(f"{url}/config").status_code in (401, 403)
        with pytest.raises(Exception):
            Client(url, verbose=False)
        client = Client(url, auth=("editor", "s3cret-pass"), verbose=False)
        assert "three days" in client.predict("How many days of national mourning did Türkiye declare?", [], 0, "", api_name="/answer")["answer"]
    finally:
        app.close()
        rag.close()


def test_server_listens_on_localhost_only(server):
    url, _ = server
    assert url.startswith("http://127.0.0.1:")
    port = int(url.rsplit(":", 1)[1])
    others = [a for a in socket.gethostbyname_ex(socket.gethostname())[2] if not a.startswith("127.")]
    for address in others:
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex((address, port)) != 0, f"reachable on {address}"
