"""The web app's safety pieces, without a browser: escaping, upload limits and names."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rag.results import Answer, ArticleInfo, Citation, Hit
from rag.serve.rendering import answer_markdown, escape, sources_html
from rag.serve.uploads import WebLimits, safe_upload_name, store_uploads, upload_display_name

EVIL = 'Breaking <script>alert(1)</script> <img src=x onerror="alert(2)"> [click](javascript:alert(3)) **bold**'
INFO = ArticleInfo("e1", "<b>Evil</b> headline", "Src <i>x</i>", "javascript:alert(4)", None, date(2024, 1, 2), "e.txt", 1, "now")


def _answer() -> Answer:
    hit = Hit(1, INFO, 0, 0, len(EVIL), EVIL, 0.5)
    citation = Citation(1, hit, EVIL, 0, len(EVIL))
    return Answer(question="<q>?", text=f"It said {EVIL} [1] and [2].", citations=[citation], sources=[hit])


def test_chat_markdown_escapes_html_and_markdown_but_links_citations():
    md = answer_markdown(_answer(), turn=0)
    assert "<script>" not in md and "<img" not in md and "<q>" not in md
    assert "&lt;script&gt;" in md
    assert "\\[click\\]\\(javascript:alert\\(3\\)\\)" in md and "\\*\\*bold\\*\\*" in md
    assert '<a class="cite" href="#src-0-1" data-turn="0" data-n="1">[1]<span class="cite-preview" role="tooltip">' in md
    preview = md.split('role="tooltip">')[1].split("</span></a>")[0]  # the quoted sentence, escaped like the answer
    assert "&lt;script&gt;" in preview and "<i>" not in preview and "\\*\\*bold\\*\\*" in preview
    assert "\\[2\\]" in md  # a citation that resolved to nothing is shown as text, not a link


def test_sources_panel_escapes_everything_from_articles():
    html = sources_html([_answer()], {"e1": EVIL})
    for raw in ("<script>", "<img", "<b>Evil", "<i>x</i>", "<q>", 'href="javascript'):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<mark>" in html and 'id="src-0-1"' in html


def test_escape_keeps_text_readable():
    assert escape("3 < 4 & 5 > 2") == "3 &lt; 4 &amp; 5 &gt; 2"
    assert escape("it's") == "it's"


def test_upload_names_cannot_escape_the_upload_folder():
    assert safe_upload_name("../../etc/passwd.txt") == "passwd.txt"
    assert safe_upload_name("..\\..\\windows\\evil.md") == "evil.md"
    assert safe_upload_name(".hidden.json") == "hidden.json"
    assert safe_upload_name("a b;rm -rf ~.txt") == "a_b_rm_-rf_.txt"
    assert safe_upload_name("../") == "upload"


def test_uploads_are_limited_in_type_size_and_count(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    ok = src / "story.txt"
    ok.write_text("Title\nSome text.")
    big = src / "big.md"
    big.write_text("x" * 2000)
    exe = src / "tool.exe"
    exe.write_bytes(b"MZ")
    dest = tmp_path / "uploads"
    accepted, rejected = store_uploads([str(ok), str(big), str(exe)], dest, WebLimits(max_upload_bytes=1000, max_upload_files=5))
    assert [p.parent for p in accepted] == [dest] and accepted[0].read_text() == "Title\nSome text."
    assert accepted[0].name != "story.txt" and upload_display_name(accepted[0]) == "story.txt"  # shown as the user named it
    assert upload_display_name("notes-2024.md") == "notes-2024.md"
    assert rejected == [
        ["big.md", "rejected", "2,000 bytes; the limit is 1,000"],
        ["tool.exe", "rejected", "unsupported file type '.exe'"],
    ]
    accepted, rejected = store_uploads([str(ok)] * 3, dest, WebLimits(max_upload_bytes=1000, max_upload_files=2))
    assert accepted == [] and "at most 2 at once" in rejected[0][2]


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RAG_MAX_UPLOAD_BYTES", "1234")
    monkeypatch.setenv("RAG_MAX_UPLOAD_FILES", "3")
    assert WebLimits() == WebLimits(max_upload_bytes=1234, max_upload_files=3)


def test_counts_read_as_words():
    from rag.text import counted

    assert counted(1, "article") == "1 article" and counted(1002, "article") == "1,002 articles"
    assert counted(1, "story", "stories") == "1 story" and counted(0, "story", "stories") == "0 stories"
