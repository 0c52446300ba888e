from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from rag.loaders import load_file, load_paths

from .conftest import DATA, SEEDS

SEED = SEEDS / "000_bd667ab957f22f49.txt"


def test_seed_article_gets_its_metadata_from_the_sidecar():
    result = load_file(SEED)
    assert result.failures == []
    [a] = result.articles
    assert a.title.startswith("Lavrov says Türkiye")
    assert a.source == "Anadolu Agency (AA)"
    assert a.author == "Elena Teslova"
    assert a.published == date(2023, 10, 19)
    # The byline is metadata, the dateline stays in the text.
    assert a.text.startswith("MOSCOW (AA) - Russian Foreign Minister Sergey Lavrov")
    assert "By Elena" not in a.text
    assert a.text.rstrip().endswith("tourist destination.")


def test_wire_txt_without_sidecar_reads_byline_dateline_and_title(tmp_path: Path):
    path = tmp_path / "story.txt"
    path.write_text("Harbour reopens\nBy Jane Roe\nOSLO (NTB) - The harbour reopened on Monday.\nMore text here.\n")
    [a] = load_file(path).articles
    assert (a.title, a.author, a.source) == ("Harbour reopens", "Jane Roe", "NTB")
    assert a.text == "OSLO (NTB) - The harbour reopened on Monday.\nMore text here."


def test_txt_without_title_uses_first_sentence(tmp_path: Path):
    path = tmp_path / "story.txt"
    path.write_text("By Jane Roe\nOSLO (NTB) - The harbour reopened on Monday. Ships were waiting.\n")
    [a] = load_file(path).articles
    assert a.title == "The harbour reopened on Monday."


def test_html_keeps_main_text_and_drops_menus():
    [a] = load_file(DATA / "wire_story.html").articles
    assert a.title == "Port of Valdora reopens after storm"
    assert a.source == "Coastal Courier"
    assert a.author == "Mira Halvorsen"
    assert a.published == date(2024, 3, 5)
    assert a.url == "https://courier.example/news/valdora-port-reopens"
    assert "37 containers" in a.text
    for junk in ("Subscribe now", "Weather menu item", "Most read", "Cookie settings"):
        assert junk not in a.text


def test_markdown_front_matter_and_markup_removed():
    [a] = load_file(DATA / "briefing.md").articles
    assert a.title == "Wind farm gets green light"
    assert a.published == date(2024, 4, 2)
    assert a.source == "Baltic Energy Review"
    assert a.text.startswith("Regulators approved a 600-megawatt offshore wind farm off the coast of Klaipeda")
    assert "**" not in a.text and "](" not in a.text


def test_jsonl_field_aliases():
    a, b = load_file(DATA / "articles.jsonl").articles
    assert a.title == "Rail strike called off" and a.source == "Metro Daily"
    assert a.author == "Ana Ruiz, Ben Ott"
    assert a.published == date(2024, 5, 10)
    assert a.url == "https://news.example/rail"
    assert b.published == date(2024, 5, 10)
    assert a.id != b.id


def test_json_list_and_object(tmp_path: Path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"title": "One", "body": "First body."}, {"title": "Two", "content": "<p>Second <b>body</b>.</p>"}]))
    one, two = load_file(path).articles
    assert (one.title, one.text, two.text) == ("One", "First body.", "Second body.")
    path.write_text(json.dumps({"title": "Solo", "text": "Only one."}))
    [solo] = load_file(path).articles
    assert solo.title == "Solo"


def test_rss_and_atom_feeds():
    tram, library = load_file(DATA / "feed.rss").articles
    assert tram.title == "Council approves new tram line"
    assert tram.source == "Northern Ledger"
    assert tram.published == date(2024, 2, 12)
    assert tram.text == "The city council approved a 12-kilometre tram line linking the harbour to the university.\nConstruction starts in autumn."
    assert library.url == "https://ledger.example/library-hours"
    [avalanche] = load_file(DATA / "feed.atom").articles
    assert avalanche.author == "Lena Moser" and avalanche.source == "Alpine Wire"
    assert "level four" in avalanche.text


def test_directory_is_walked_recursively_skipping_hidden_and_sidecars(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.txt").write_text("Deep story\nSomething happened deep down.")
    (tmp_path / "a" / "b" / "deep.meta.json").write_text('{"title": "Deep title"}')
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.txt").write_text("Hidden\nNot to be read.")
    result = load_paths([tmp_path])
    assert [a.title for a in result.articles] == ["Deep title"]
    assert result.failures == []


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"   \n\n", "empty file"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "binary file"),
        ("latin1.txt", "Caf\u00e9 au lait\nA story about caf\u00e9s.".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 3)"),
        ("truncated.json", b'{"title": "Cut", "body": "The text stops', "invalid JSON (Unterminated string"),
        ("image.png", b"not really a png", "unsupported file type '.png'"),
        ("notes.docx", b"PK\x03\x04", "unsupported file type '.docx'"),
        ("feed.xml", b"this is not xml at all", "not an RSS/Atom feed"),
        ("no_text.json", b'{"title": "Only a title"}', "record has no text"),
    ],
)
def test_bad_input_is_reported_with_a_specific_reason(tmp_path: Path, name: str, content: bytes, reason: str):
    path = tmp_path / name
    path.write_bytes(content)
    result = load_file(path)
    assert result.articles == []
    [failure] = result.failures
    assert reason in failure.reason
    assert failure.path == str(path)


def test_missing_file_is_reported(tmp_path: Path):
    [failure] = load_file(tmp_path / "gone.txt").failures
    assert failure.reason == "no such file"


def test_jsonl_bad_lines_are_reported_by_line_and_good_lines_load(tmp_path: Path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"title": "Good", "text": "A good line."}\n{"title": "Bad", "text": \n[1, 2]\n')
    result = load_file(path)
    assert [a.title for a in result.articles] == ["Good"]
    assert [(f.path, f.reason.split(" (")[0]) for f in result.failures] == [
        (f"{path}:2", "invalid JSON"),
        (f"{path}:3", "record is not a JSON object"),
    ]


def test_oversized_file_is_refused(tmp_path: Path):
    path = tmp_path / "big.txt"
    path.write_text("Big\n" + "word " * 1000)
    [failure] = load_file(path, max_bytes=100).failures
    assert "limit is 100" in failure.reason


def test_invalid_date_keeps_article_without_date(tmp_path: Path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"title": "T", "text": "Body.", "published": "the 45th of Neverember"}))
    [a] = load_file(path).articles
    assert a.published is None
