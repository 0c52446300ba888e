from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from rag.ingest.formats import load_file, load_paths

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


# ---------------------------------------------------------------- hostile input, unit level (issue #6)


def test_latin1_file_is_decoded_as_cp1252_with_a_warning(tmp_path: Path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Caf\u00e9 au lait\nA story about caf\u00e9s.".encode("latin-1"))
    result = load_file(path)
    [a] = result.articles
    assert (a.title, a.text) == ("Café au lait", "A story about cafés.")
    [warning] = result.warnings
    assert warning.path == str(path) and warning.reason.startswith("not UTF-8; read as cp1252 (detected)")


@pytest.mark.parametrize(
    ("value", "expected", "problem"),
    [
        ("2023-10-19", date(2023, 10, 19), None),
        ("Thu, 19 Oct 2023 10:00:00 +0300", date(2023, 10, 19), None),
        ("2023-13-01", None, "'2023-13-01' is not a valid date (month must be in 1..12)"),
        ("99999-01-01", None, "'99999-01-01' is not a date that can be read"),
        ("3024-01-01", None, "'3024-01-01' is more than a year in the future"),
        ("1066-10-14", None, "'1066-10-14' is before 1600"),
        ("5", None, "'5' has no year"),
        ("T" * 5000, None, "is too long to be a date (5,000 characters)"),
        (True, None, "True is not a date (expected text or an epoch number)"),
        ({"y": 2023}, None, "is not a date (expected text or an epoch number)"),
        (1697673600, date(2023, 10, 19), None),
        (1697673600000, date(2023, 10, 19), None),  # milliseconds
        (1e300, None, "1e+300 is not a valid epoch time"),
        ("", None, None),
        (None, None, None),
    ],
)
def test_read_date_says_why_a_date_is_refused(value, expected, problem):
    from rag.documents.articles import read_date

    got, why = read_date(value, today=date(2026, 11, 29))
    assert got == expected
    assert (why is None) if problem is None else (problem in why)


def test_yaml_front_matter_aliases_and_bad_dates_do_not_sink_the_file(tmp_path: Path):
    path = tmp_path / "bomb.md"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    path.write_text(f"---\n{bomb}title: *i\nauthor: [Ana, [nested]]\ndate: 2023-02-30\n---\nThe body survives the front matter.\n")
    result = load_file(path)
    [a] = result.articles
    assert a.title == "The body survives the front matter."  # a 9^9-element "title" is no title
    assert a.author == "Ana" and a.published is None
    assert "'2023-02-30' is not a valid date" in result.warnings[0].reason


def test_markdown_with_thousands_of_unclosed_emphasis_marks_loads(tmp_path: Path):
    path = tmp_path / "stars.md"
    path.write_text("# Stars\n\n" + "*a " * 20_000 + "\n\nSome **bold** end\n")
    [a] = load_file(path).articles
    assert a.text.startswith("*a *a") and a.text.endswith("\n\nSome bold end")


def test_jsonl_record_holding_raw_line_separators_stays_one_record(tmp_path: Path):
    path = tmp_path / "seps.jsonl"
    path.write_text(json.dumps({"title": "Seps", "text": "One\u2028two\x0cthree\x1cfour."}, ensure_ascii=False) + "\n", encoding="utf-8")
    result = load_file(path)
    assert result.failures == []
    [a] = result.articles
    assert a.text == "One\ntwo\nthree\nfour." or a.text == "One\ntwo\nthreefour."


def test_duplicate_ids_in_a_json_list_are_reported_by_record(tmp_path: Path):
    path = tmp_path / "list.json"
    path.write_text(json.dumps([{"id": 7, "title": "Old", "text": "Old text."}, {"id": "7", "title": "New", "text": "New text."}]))
    result = load_file(path)
    assert [a.title for a in result.articles] == ["New"]
    assert [(w.path, w.reason) for w in result.warnings] == [
        (f"{path}[1]", "duplicate id '7' (also on record 0): this later record replaces the earlier one")
    ]


def test_overlong_title_is_cut(tmp_path: Path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"title": "word " * 10_000, "text": "Body."}))
    [a] = load_file(path).articles
    assert len(a.title) <= 300 and a.title.endswith("…")
