"""Saved conversations in the browser (issue #16, item 7), in a real headless Chromium over the
real index, MiniLM and the tiny SmolLM2 (what it answers matters less than what the page keeps):
a conversation survives a reload and a restart, reopens with its answer and Sources, is renamed,
exported as Markdown with its sources and deleted after a confirmation; thumbs up is stored with
the answer; regenerate replaces the last answer; copy gives the text the bubble shows; one login
never sees another's conversations; axe-core finds nothing serious with the list open.
Screenshots go to test-output/screenshots/conversations-*.png."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from rag import RAG, Settings
from rag.conversations import ConversationStore
from rag.conversations.store import LOCAL_USER
from rag.errors import RagError
from rag.serve.web import launch

from . import test_ui_browser as shared
from .conftest import SEEDS
from .test_ui_browser import SHOTS, serving
from .test_ui_chat import BOT, DESKTOP, PHONE, _finished, _serious

pytestmark = pytest.mark.real_models
browser = shared.browser  # the same module-scoped Chromium fixture
MOURNING = "How many days of national mourning did Türkiye declare?"
SEED_TITLE = "Lavrov says Türkiye's Gaza initiative aims at de-escalation"


def _rag(index: Path, minilm, smollm, **login: object) -> RAG:
    settings = Settings(index_dir=index, seeds_dir=SEEDS, llm="smollm2-135m-instruct", **login)
    return RAG.open(settings=settings, embedder=minilm, llm=smollm)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, minilm) -> Path:
    return tmp_path_factory.mktemp("conversations-index")


def _open(browser, url: str, viewport: dict[str, int] = DESKTOP, **context_options: object):
    context = browser.new_context(viewport=viewport, **context_options)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#question textarea", timeout=60_000)
    return context, page


def _ask(page, question: str) -> str:
    before = page.locator(BOT).count()
    page.fill("#question textarea", question)
    page.click("#send")
    return _finished(page, before)


def _show_list(page) -> None:
    """Open the Saved conversations accordion (closed on a new page)."""
    if not page.locator("#conversation-list").is_visible():
        page.locator("#conversations").get_by_role("button").first.click()
    page.wait_for_selector("#conversation-list", state="visible")


def _wait(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _listed(page) -> list[str]:
    return page.locator("#conversation-list label").all_inner_texts()


def test_a_conversation_survives_a_reload_and_comes_back_whole(index: Path, minilm, smollm, browser):
    rag = _rag(index, minilm, smollm)
    chats = rag.conversations.of(None)
    with serving(rag) as url:
        context, page = _open(browser, url, permissions=["clipboard-read", "clipboard-write"])
        answer = _ask(page, MOURNING)
        _wait(lambda: chats.list(), "the conversation to be saved")
        saved = chats.get(chats.list()[0].id)
        assert saved.title == MOURNING and [t.question for t in saved.turns] == [MOURNING]

        # Copy gives the words the bubble shows, not its Markdown and HTML.
        page.locator(BOT).last.hover()
        page.get_by_role("button", name="Copy message").last.click()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.strip() and "<" not in copied and "cite-preview" not in copied and "\\" not in copied
        assert copied.split()[:3] == answer.split()[:3]

        # Thumbs up: stored with the answer.
        page.locator(BOT).last.hover()
        page.get_by_role("button", name="Like").last.click()
        _wait(lambda: chats.get(saved.id).turns[0].feedback == "up", "the thumbs up to be stored")

        # A reload reopens the conversation this browser had open.
        page.reload()
        page.wait_for_selector("#question textarea", timeout=60_000)
        page.wait_for_function(f"document.querySelectorAll({BOT!r}).length === 1", timeout=30_000)
        assert page.locator(BOT).last.inner_text().split()[:3] == answer.split()[:3]
        # A new conversation leaves it in the list, from where it opens again.
        page.click("#new-chat")
        page.wait_for_function(f"document.querySelectorAll({BOT!r}).length === 0")
        _show_list(page)
        assert any(MOURNING in t for t in _listed(page))
        page.screenshot(path=str(SHOTS / "conversations-list.png"), full_page=True)
        page.locator("#conversation-list label", has_text=MOURNING).click()
        page.wait_for_function(f"document.querySelectorAll({BOT!r}).length === 1", timeout=30_000)
        assert page.locator(BOT).last.inner_text().split()[:3] == answer.split()[:3]
        if saved.turns[0].answer.citations:  # the [n] links are live again
            assert page.locator(f"{BOT} a.cite").count() >= 1
        assert SEED_TITLE in page.inner_text("#sources")  # the Sources panel came back
        assert page.get_by_role("button", name="Liked").count() == 1  # and the rating
        page.screenshot(path=str(SHOTS / "conversations-reopened.png"), full_page=True)

        # Export as Markdown: a download with the source's title.
        with page.expect_download() as download:
            page.click("#conversation-export")
        exported = Path(download.value.path()).read_text(encoding="utf-8")
        assert download.value.suggested_filename.endswith(".md")
        assert exported.startswith(f"# {MOURNING}") and SEED_TITLE in exported

        # Regenerate: the last answer is written again and replaces the saved one.
        first = chats.get(saved.id).turns[0].answer
        page.locator(BOT).last.hover()
        page.get_by_role("button", name="Retry").last.click()
        _wait(lambda: chats.get(saved.id).turns[0].answer != first, "the regenerated answer to be saved", 120)
        _finished(page, 0)
        regenerated = chats.get(saved.id)
        assert len(regenerated.turns) == 1 and regenerated.turns[0].feedback is None
        assert page.locator(BOT).count() == 1 and page.locator("#chatbot [data-testid='user']").count() == 1
        assert page.get_by_role("button", name="Liked").count() == 0  # the new words are not rated yet

        # Rename, then delete after a confirmation that names it.
        page.fill("#conversation-title input", "Mourning in Türkiye")
        page.click("#conversation-rename")
        _wait(lambda: chats.get(saved.id).title == "Mourning in Türkiye", "the new title to be stored")
        page.wait_for_function("document.querySelector('#conversation-list').innerText.includes('Mourning in Türkiye')")
        page.click("#conversation-delete")
        page.wait_for_selector("#conversation-confirm", state="visible")
        assert "Delete “Mourning in Türkiye”" in page.inner_text("#conversation-confirm")
        page.screenshot(path=str(SHOTS / "conversations-delete-confirm.png"), full_page=True)
        page.click("#conversation-delete-no")
        page.wait_for_selector("#conversation-confirm", state="hidden")
        assert chats.list()  # kept
        page.click("#conversation-delete")
        page.click("#conversation-delete-yes")
        _wait(lambda: not chats.list(), "the conversation to be deleted")
        page.wait_for_function(f"document.querySelectorAll({BOT!r}).length === 0")
        assert "Deleted “Mourning in Türkiye”" in page.inner_text("#conversation-note")
        context.close()


def test_rated_answers_download_as_an_evaluation_set(index: Path, minilm, smollm, browser, tmp_path: Path):
    from rag.evaluation.questions import load_questions

    rag = _rag(index, minilm, smollm)
    with serving(rag) as url:
        context, page = _open(browser, url)
        _ask(page, MOURNING)
        page.locator(BOT).last.hover()
        page.get_by_role("button", name="Dislike").last.click()
        chats = rag.conversations.of(None)
        _wait(lambda: chats.list() and chats.get(chats.list()[0].id).turns[0].feedback == "down", "the thumbs down")
        _show_list(page)
        downloads: list = []
        page.on("download", lambda d: downloads.append(d))
        page.click("#feedback-export")  # the questions, and the articles they were answered from
        for _ in range(100):  # Playwright delivers its events while the page is waited on
            if len(downloads) == 2:
                break
            page.wait_for_timeout(100)
        files = {d.suggested_filename: Path(d.path()).read_text(encoding="utf-8") for d in downloads}
        assert sorted(files) == ["feedback-articles.jsonl", "feedback-eval.jsonl"]
        path = tmp_path / "feedback.jsonl"
        path.write_text(files["feedback-eval.jsonl"], encoding="utf-8")
        questions, problems = load_questions(path)
        assert problems == [] and [q.question for q in questions] == [MOURNING] and questions[0].type == "disliked"
        assert SEED_TITLE in files["feedback-articles.jsonl"]
        assert "rag eval feedback-eval.jsonl" in page.inner_text("#conversation-note")
        context.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_axe_finds_no_serious_problem_with_the_list_open(index: Path, minilm, smollm, browser, size):
    rag = _rag(index, minilm, smollm)
    with serving(rag) as url:
        context, page = _open(browser, url, DESKTOP if size == "desktop" else PHONE)
        _ask(page, "Where was Lavrov speaking?")
        _show_list(page)
        page.wait_for_function("document.querySelector('#conversation-list').innerText.includes('Lavrov')")
        page.locator("#conversation-list label").first.click()
        page.wait_for_function("!document.querySelector('#conversation-title input').disabled")
        page.locator("#conversations").scroll_into_view_if_needed()
        assert _serious(page) == []
        if size == "phone":  # the panel fits the screen: no sideways scrolling
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(SHOTS / f"conversations-{size}.png"), full_page=True)
        context.close()


def _login(page, user: str, password: str) -> None:
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#question textarea", timeout=60_000)


@contextmanager
def _serving_on(rag: RAG, port: int) -> Iterator[str]:
    """``rag``'s chat on ``port`` (the same on every restart: a browser keeps what it remembers per
    address), waiting while the last run's socket is still being released."""
    deadline = time.time() + 60
    while True:
        try:
            app = launch(rag=rag, port=port, block=False)
            break
        except RagError:
            if time.time() > deadline:
                rag.close()
                raise
            time.sleep(0.5)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.close()
        rag.close()


def test_each_login_has_its_own_conversations_across_restarts(tmp_path: Path, minilm, smollm, browser):
    index, port = tmp_path / "index", shared._free_port()

    def launch_as(user: str):
        return _serving_on(_rag(index, minilm, smollm, username=user, password=SecretStr("s3cret-pass")), port)

    with launch_as("editor") as url:
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(url)
        _login(page, "editor", "s3cret-pass")
        _ask(page, MOURNING)
        store = ConversationStore(index)
        _wait(lambda: store.of("editor").list(), "the editor's conversation to be saved")
        page.wait_for_function("localStorage.getItem('rag-open-conversation')")  # what the browser remembers
        editor = context  # kept, with what this browser remembers, for after the restarts
    assert store.of(LOCAL_USER).list() == []  # saved under the login, not the local user

    with launch_as("reporter") as url:  # a restart, with another login
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(url)
        _login(page, "reporter", "s3cret-pass")
        _show_list(page)
        page.wait_for_timeout(1000)  # the list is filled as the page loads
        assert _listed(page) == []
        page.screenshot(path=str(SHOTS / "conversations-other-login.png"), full_page=True)
        context.close()

    with launch_as("editor") as url:  # and another restart: the editor's browser gets it back by itself
        page = editor.new_page()
        page.goto(url)
        _login(page, "editor", "s3cret-pass")
        page.wait_for_function(f"document.querySelectorAll({BOT!r}).length === 1", timeout=30_000)
        assert "Lavrov" in page.inner_text("#sources")
        _show_list(page)
        assert any(MOURNING in t for t in _listed(page))
        editor.close()
