"""The Library tab's handlers without a browser, over a real index (SQLite, FTS5, FAISS) with the
fast fakes from rag.testing: nothing selected at first, removal only after a confirmation that
names the articles, the stored upload deleted with its article, undo, body search with a "no
matches" state, the preview, and "Ask about this article" limiting the chat to it."""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import pytest

from rag import RAG, Settings
from rag.serve.chat_handlers import ChatHandlers
from rag.serve.library_handlers import LibraryHandlers
from rag.serve.library_html import article_list_html, confirm_html, preview_html, titles_phrase
from rag.serve.uploads import WebLimits
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .conftest import DATA, SEEDS

SEED_TITLE = "Lavrov says Türkiye's Gaza initiative aims at de-escalation"
HOSTILE = '<img src=x onerror="window.__pwned=1"> "Quoted" & \'single\''


@pytest.fixture
def handlers(tmp_path: Path):
    rag = RAG.open(settings=Settings(index_dir=tmp_path / "idx", seeds_dir=SEEDS), embedder=HashingEmbedder(),
                   llm=ExtractiveFakeGenerator())
    shutil.copy(DATA / "articles.jsonl", tmp_path / "articles.jsonl")
    rag.add([tmp_path / "articles.jsonl"])
    yield LibraryHandlers(rag, WebLimits(), lambda: f"{rag.info().articles} articles")
    rag.close()


def _out(event: str, values: tuple) -> dict:
    names = LibraryHandlers.OUTPUTS[event]
    assert len(values) == len(names)
    return dict(zip(names, values))


def _id(rag: RAG, title: str) -> str:
    return next(a.id for a in rag.articles() if a.title == title)


def _selected(handlers: LibraryHandlers, *ids: str) -> list[str]:
    return _out("select", handlers.select(gr.EventData(None, {"ids": list(ids)})))["selected"]


def test_nothing_is_selected_at_first_and_remove_cannot_be_pressed(handlers):
    html = handlers.listing()
    assert html.count('class="library-pick"') == 3 and " checked" not in html
    out = _out("refresh", handlers.refresh())
    assert out["selected"] == [] and out["remove"]["interactive"] is False


def test_selection_keeps_only_listed_ids(handlers):
    seed = _id(handlers.rag, SEED_TITLE)
    assert _selected(handlers, seed, "not-an-id", seed) == [seed]
    assert _out("select", handlers.select(gr.EventData(None, {"ids": "x" * 50})))["selected"] == []  # not a list
    assert _out("select", handlers.select(gr.EventData(None, {"ids": [seed, 7, None]})))["selected"] == [seed]
    out = _out("select", handlers.select(gr.EventData(None, {"ids": [seed]})))
    assert out["remove"]["value"] == "Remove selected (1)" and out["remove"]["interactive"] is True
    assert " checked" in handlers.listing("", [seed])  # a re-rendered list shows what is selected


def test_remove_asks_first_naming_the_title_and_cancel_keeps_it(handlers):
    rag = handlers.rag
    seed = _id(rag, SEED_TITLE)
    asked = _out("ask_remove", handlers.ask_remove([seed]))
    assert asked["confirm"]["visible"] is True
    assert "Remove “Lavrov says Türkiye&#x27;s Gaza initiative aims at de-escalation”?" in asked["confirm_text"]
    assert len(rag.articles()) == 3  # asking removed nothing
    cancelled = _out("cancel_remove", handlers.cancel_remove())
    assert cancelled["confirm"]["visible"] is False and "Nothing was removed" in cancelled["result"]
    assert len(rag.articles()) == 3
    nothing = _out("ask_remove", handlers.ask_remove([]))
    assert "Select the articles to remove first" in nothing["result"]


def test_several_are_named_and_counted(handlers):
    ids = [a.id for a in handlers.rag.articles()]
    text = _out("ask_remove", handlers.ask_remove(ids))["confirm_text"]
    assert "Remove 3 articles: “Bridge closed for repairs”, “Rail strike called off” and “Lavrov says" in text
    assert titles_phrase([f"Story {i}" for i in range(8)]).endswith("“Story 4” and 3 more")
    assert "“" + "x" * 59 + "…”?" in confirm_html(["x" * 200])  # a long title is shortened


def test_confirm_removes_the_article_and_its_upload_and_undo_brings_it_back(handlers, tmp_path):
    rag = handlers.rag
    story = tmp_path / "ambry.md"
    story.write_text("---\ntitle: Ambry lighthouse repainted\nsource: Coast Post\npublished: 2024-04-02\n"
                     "url: https://coast.example/ambry\n---\nThe Ambry lighthouse was repainted red on Tuesday.\n")
    added = handlers.add_files([str(story)])
    assert added[0][0][1] == "added"
    (upload,) = list((rag.store.directory / "uploads").iterdir())
    (article,) = rag.articles("Ambry")
    assert article.origin == str(upload)

    out = _out("confirm_remove", handlers.confirm_remove([article.id], "", []))
    assert rag.articles("Ambry") == [] and not upload.exists()  # the stored copy went with it
    assert "Removed “Ambry lighthouse repainted”." in out["result"] and out["undo"]["visible"] is True
    assert out["selected"] == [] and "Ambry" not in out["listing"] and out["status"] == "3 articles"

    back = _out("undo", handlers.undo(out["removed"], ""))
    assert "Restored “Ambry lighthouse repainted”." in back["result"] and back["undo"]["visible"] is False
    (again,) = rag.articles("repainted red")  # searchable again, by its text
    assert (again.id, again.title, again.source, again.url, str(again.published)) == (
        article.id, article.title, "Coast Post", "https://coast.example/ambry", "2024-04-02")
    assert rag.search("lighthouse repainted", k=1, mode="bm25")[0].article.id == article.id
    assert "Ambry lighthouse repainted" in back["listing"] and back["status"] == "4 articles"
    assert "Nothing to undo" in _out("undo", handlers.undo(back["removed"], ""))["result"]


def test_undo_goes_back_one_removal_at_a_time(handlers):
    rag = handlers.rag
    first = _out("confirm_remove", handlers.confirm_remove([_id(rag, "Rail strike called off")], "", []))
    second = _out("confirm_remove", handlers.confirm_remove([_id(rag, "Bridge closed for repairs")], "", first["removed"]))
    assert len(rag.articles()) == 1 and len(second["removed"]) == 2
    one = _out("undo", handlers.undo(second["removed"], ""))
    assert "Bridge closed for repairs" in one["result"] and one["undo"]["visible"] is True
    two = _out("undo", handlers.undo(one["removed"], ""))
    assert "Rail strike called off" in two["result"] and len(rag.articles()) == 3


def test_a_removal_of_what_another_session_removed_says_so(handlers):
    seed = _id(handlers.rag, SEED_TITLE)
    handlers.rag.remove(seed)
    out = _out("confirm_remove", handlers.confirm_remove([seed], "", []))
    assert "no longer in the index" in out["result"] and out["removed"] == gr.skip()


def test_search_finds_words_in_the_text_and_says_when_nothing_matches(handlers):
    found = _out("search", handlers.search("Pyongyang", []))["listing"]
    assert SEED_TITLE.replace("'", "&#x27;") in found and "1 article match “Pyongyang”" in found
    assert "Rail strike" not in found
    empty = _out("search", handlers.search("xyzzy", []))["listing"]
    assert "No articles match “xyzzy”." in empty and "library-item" not in empty
    seed = _id(handlers.rag, SEED_TITLE)
    assert _out("search", handlers.search("bridge", [seed]))["selected"] == []  # a hidden article is not kept selected
    assert _out("search", handlers.search("Pyongyang", [seed]))["selected"] == [seed]


def test_the_list_and_the_preview_escape_what_articles_say(handlers, tmp_path):
    rag = handlers.rag
    bad = tmp_path / "bad.json"
    bad.write_text('{"title": %s, "text": "First paragraph.\\n\\nSecond <b>one</b>.", "source": %s, "url": "javascript:alert(1)"}'
                   % (__import__("json").dumps(HOSTILE), __import__("json").dumps(HOSTILE)))
    rag.add([bad])
    (info,) = [a for a in rag.articles() if a.title.startswith("<img")]
    listing = article_list_html([info])
    assert "<img" not in listing and "&lt;img" in listing and 'onerror=&quot;' in listing
    preview = _out("open_preview", handlers.open_preview(gr.EventData(None, {"id": info.id})))
    assert preview["preview"]["visible"] is True and preview["preview_id"] == info.id
    html = preview["preview_text"]
    assert "<img" not in html and "<b>" not in html and "javascript:" not in html.split("preview-text")[0].split("href")[-1]
    assert "href=" not in html  # only an http(s) URL becomes a link


def test_the_preview_shows_the_article_with_its_own_link(handlers):
    rag = handlers.rag
    rail = _id(rag, "Rail strike called off")
    out = _out("open_preview", handlers.open_preview(gr.EventData(None, {"id": rail})))
    html = out["preview_text"]
    assert "Rail strike called off" in html and "Metro Daily · by Ana Ruiz, Ben Ott · 2024-05-10" in html
    assert 'href="https://news.example/rail"' in html and "Train drivers called off" in html
    long = rag.article(_id(rag, SEED_TITLE))
    assert long is not None
    shown = preview_html(long)
    assert "Show the whole article" in shown and "Pyongyang" in shown.split("<details")[0]
    gone = _out("open_preview", handlers.open_preview(gr.EventData(None, {"id": "nope"})))
    assert gone["preview"]["visible"] is False and "no longer in the index" in gone["result"]


def test_ask_about_this_article_goes_to_the_chat_limited_to_it(handlers):
    rag = handlers.rag
    rail = _id(rag, "Rail strike called off")
    tabs, ids, row, chip = handlers.ask_about(rail)
    assert tabs.selected == "chat" and ids == [rail] and row["visible"] is True
    assert "Only from the article" in chip and "Rail strike called off" in chip
    with pytest.raises(gr.Error):
        handlers.ask_about("nope")

    chat = ChatHandlers(rag, [rag.settings.llm])
    request = gr.Request(session_hash="s1")
    *_, last = chat.ask("What did Lavrov say about Gaza?", [], [], rag.settings.llm, 4, "", "", "hybrid", request, ids)
    (answer,) = last[2]
    assert answer.sources and {h.article.id for h in answer.sources} == {rail}
    *_, free = chat.ask("What did Lavrov say about Gaza?", [], [], rag.settings.llm, 4, "", "", "hybrid", request, [])
    assert SEED_TITLE in {h.article.title for h in free[2][0].sources}


def test_the_remove_api_removes_at_once_with_the_upload(handlers, tmp_path):
    rag = handlers.rag
    story = tmp_path / "kept.txt"
    story.write_text("Kept story\nThe Ambry lighthouse was repainted on Tuesday.\n")
    handlers.add_files([str(story)])
    (article,) = rag.articles("Kept story")
    out = _out("refresh", handlers.remove_api(article.id))
    assert rag.articles("Kept story") == [] and list((rag.store.directory / "uploads").iterdir()) == []
    assert out["selected"] == [] and "Kept story" not in out["listing"]
    with pytest.raises(gr.Error, match="no indexed article matches"):
        handlers.remove_api("0123456789abcdef")
