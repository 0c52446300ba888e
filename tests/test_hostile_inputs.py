"""Hostile and broken input through the public API (RAG.add): each bad file gets a clear
per-file failure, or is accepted after cleaning with a warning, and nothing already indexed is
lost. The loaders and the chunker are also checked with property-based tests."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag import RAG, Settings
from rag.ingest.formats import SUPPORTED_SUFFIXES, load_bytes
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

GOOD = {
    "harbour.txt": "Harbour reopens after storm\nOSLO (NTB) - The harbour of Valdora reopened on Monday after the storm.\n"
    "Dock workers cleared 37 containers from the quay.\n",
    "tram.txt": "Council approves tram line\nThe city council approved a 12-kilometre tram line to the university.\n"
    "Construction starts in autumn.\n",
}


def _open(index: Path, max_file_bytes: int = 25_000_000, embedder=None) -> RAG:
    settings = Settings(index_dir=index, seeds_dir=None, max_file_bytes=max_file_bytes)
    return RAG.open(settings=settings, embedder=embedder or HashingEmbedder(), llm=ExtractiveFakeGenerator())


@pytest.fixture
def indexed(tmp_path: Path):
    """A RAG holding the two GOOD articles."""
    good = tmp_path / "good"
    good.mkdir()
    for name, text in GOOD.items():
        (good / name).write_text(text, encoding="utf-8")
    rag = _open(tmp_path / "index")
    report = rag.add(good)
    assert len(report.added) == 2 and not report.failed
    yield rag
    rag.close()


def _assert_nothing_lost(rag: RAG, before: tuple[int, int]) -> None:
    info = rag.info()
    assert (info.articles, info.chunks) >= before
    titles = {a.title for a in rag.articles()}
    assert {"Harbour reopens after storm", "Council approves tram line"} <= titles
    assert rag.search("harbour containers quay storm", k=1)[0].article.title == "Harbour reopens after storm"
    assert rag.search("tram line university council", k=1)[0].article.title == "Council approves tram line"


def _add(rag: RAG, *paths: Path):
    """Add ``paths`` and return the report; the earlier articles must survive whatever happens."""
    info = rag.info()
    before = (info.articles, info.chunks)
    report = rag.add(list(paths))
    _assert_nothing_lost(rag, before)
    return report


def _is_clean(text: str) -> bool:
    return all(
        ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cs") and ch not in "\ufeff\ufffe\uffff" for ch in text
    )


# ---------------------------------------------------------------- refused, with a reason


def _deep_html(depth: int) -> bytes:
    return ("<html><body>" + "<div>" * depth + "<p>Deep text that nobody can reach.</p>" + "</div>" * depth + "</body></html>").encode()


_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b']><rss version="2.0"><channel><title>T</title><item><title>x</title><description>&lol9;</description></item></channel></rss>'
)

REFUSED = [
    ("empty.txt", b"", "empty file"),
    ("blank.md", b" \n\t\n", "empty file"),
    ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(1).randbytes(3000), "binary file"),
    ("nul_only.txt", b"\xef\xbb\xbf\x00", "no text (only spaces or control characters)"),
    ("deep.html", _deep_html(100_000), "HTML nested more than 255 elements deep"),
    ("scripts.html", (b"<html><head><script>var a = 'not an article';</script><style>p {color: red}</style></head>"
     b"<body><script>document.write('hello')</script></body></html>"), "no readable article text found in the HTML"),
    ("page.rss", b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Welcome to our site.</p></body></html>",
     "an HTML page, not an RSS/Atom feed: save it as .html"),
    ("words.atom", b"just some words, certainly not XML", "not an RSS/Atom feed: not valid XML"),
    ("garbage.xml", random.Random(2).randbytes(2000), "binary file"),
    ("empty.rss", b"", "empty file"),
    ("other.xml", b'<?xml version="1.0"?><catalog><book>Not a feed</book></catalog>', "XML, but not an RSS or Atom feed"),
    ("laughs.rss", _LAUGHS, "refused: its XML entities expand beyond safe limits"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
    ("bigint.json", b'{"title": "T", "text": "x", "n": ' + b"9" * 5000 + b"}", "invalid JSON (Exceeds the limit"),
    ("bad_bom.txt", b"\xff\xfe" + "Odd byte count".encode("utf-16-le") + b"\x00", "byte-order mark but is not valid UTF-16"),
]


@pytest.mark.parametrize(("name", "content", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_file_fails_alone_with_a_specific_reason(indexed: RAG, tmp_path: Path, name: str, content: bytes, reason: str):
    path = tmp_path / name
    path.write_bytes(content)
    report = _add(indexed, path)
    assert report.added == [] and report.chunks == 0
    assert [(f.path, reason in f.reason) for f in report.failed] == [(str(path), True)], report.failed
    assert report.files[str(path)].status == "failed"
    assert "could not parse" not in report.failed[0].reason  # a known problem, not a caught crash


def test_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    good = tmp_path / "good"
    good.mkdir()
    for name, text in GOOD.items():
        (good / name).write_text(text)
    big = tmp_path / "big.txt"
    big.write_text("Big story\n" + "word " * 2000)
    rag = _open(tmp_path / "index", max_file_bytes=5000)
    try:
        rag.add(good)
        real_open = Path.open

        def guarded_open(self: Path, *args, **kwargs):
            assert self != big, "the oversized file was opened"
            return real_open(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", guarded_open)
        monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read_bytes({self})"))
        report = _add(rag, big)
    finally:
        rag.close()
    [failure] = report.failed
    assert failure.path == str(big)
    assert failure.reason.startswith("file is 10,010 bytes; the limit is 5,000 (RAG_MAX_FILE_BYTES)")
    assert "split the file or raise the limit" in failure.reason


# ---------------------------------------------------------------- accepted after cleaning


def _only_article(rag: RAG, title: str):
    [info] = [a for a in rag.articles() if a.title == title]
    return info, rag.article_text(info.id)


def test_control_characters_surrogates_and_boms_are_cleaned(indexed: RAG, tmp_path: Path):
    txt = tmp_path / "controls.txt"
    txt.write_bytes(
        "\ufeffControl story\nThe mayor\x00 spoke\x07 at\x1b noon\x7f today.\x0cPage two\u2028starts here.\r\nEnd\ufeff.".encode()
    )
    jsonl = tmp_path / "controls.jsonl"
    jsonl.write_text(
        json.dumps({"id": "s1", "title": "Surrogate \ud800story\x01", "text": "Broken \udc00pair and a raw\u2028line separator."})
        + "\n",
        encoding="utf-8",
    )
    report = _add(indexed, txt, jsonl)
    assert report.failed == []
    assert len(report.added) == 2
    _, text = _only_article(indexed, "Control story")
    assert text == "The mayor spoke at noon today.\nPage two\nstarts here.\nEnd."
    _, text = _only_article(indexed, "Surrogate story")
    assert text == "Broken pair and a raw\nline separator."
    for a in indexed.articles():
        assert _is_clean(a.title) and _is_clean(indexed.article_text(a.id) or "")


def test_invalid_and_absurd_dates_keep_the_article_without_a_date(indexed: RAG, tmp_path: Path):
    records = [
        {"id": "d1", "title": "Month thirteen", "text": "A story with month 13.", "published": "2023-13-01"},
        {"id": "d2", "title": "Year 99999", "text": "A story from far ahead.", "published": "99999-01-01"},
        {"id": "d3", "title": "Vague day", "text": "A story from some time.", "published": "yesterday-ish"},
        {"id": "d4", "title": "Far future", "text": "A story from the future.", "published": "3024-05-01"},
        {"id": "d5", "title": "No year", "text": "A story with a bare number.", "published": "5"},
        {"id": "d6", "title": "Good date", "text": "A story with a real date.", "published": "2024-02-29"},
        {"id": "d7", "title": "Epoch millis", "text": "A story dated in milliseconds.", "published": 1697673600000},
    ]
    jsonl = tmp_path / "dates.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    story = tmp_path / "sided.txt"
    story.write_text("Sidecar story\nThe sidecar gives a bad date.\n")
    (tmp_path / "sided.meta.json").write_text('{"published": "2024-02-30", "source": "Wire"}')
    feed = tmp_path / "dates.rss"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Ledger</title><item><title>Feed story</title>'
        "<pubDate>Mon, 45 Foo 99999 25:61:00</pubDate><description>Feed story text.</description></item></channel></rss>"
    )
    md = tmp_path / "front.md"
    md.write_text("---\ntitle: Front matter story\ndate: 2023-13-45\n---\nThe front matter has an impossible date.\n")
    report = _add(indexed, jsonl, story, feed, md)
    assert report.failed == []
    assert len(report.added) == 10
    dates = {a.title: a.published for a in indexed.articles()}
    assert dates["Good date"].isoformat() == "2024-02-29"
    assert dates["Epoch millis"].isoformat() == "2023-10-19"
    for title in ("Month thirteen", "Year 99999", "Vague day", "Far future", "No year", "Sidecar story", "Feed story", "Front matter story"):
        assert dates[title] is None, title
    warnings = report.files[str(jsonl)].warnings
    assert warnings[0] == "line 1: published date '2023-13-01' is not a valid date (month must be in 1..12); the article is kept without a date"
    assert [w.split(":")[0] for w in warnings] == ["line 1", "line 2", "line 3", "line 4", "line 5"]
    assert "is more than a year in the future" in warnings[3] and "has no year" in warnings[4]
    assert report.files[str(story)].warnings == [
        ("sidecar sided.meta.json: published date '2024-02-30' is not a valid date (day is out of range for month); "
         "the article is kept without a date")
    ]
    assert report.files[str(feed)].warnings[0].startswith("entry 1: published date 'Mon, 45 Foo 99999 25:61:00'")
    assert "'2023-13-45' is not a valid date" in report.files[str(md)].warnings[0]
    assert "warning: line 1: published date" in report.files[str(jsonl)].detail()


def test_mixed_and_legacy_encodings_are_decoded_with_a_warning(indexed: RAG, tmp_path: Path):
    mixed = tmp_path / "mixed.txt"
    head = "Türkiye story\nAnkara’s proposal — backed by Moscow — was discussed. The caf".encode()
    mixed.write_bytes(head + "\u00e9 owner said \u201cno\u201d.".encode("cp1252") + " Ümit agreed.\n".encode())
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("Port story in UTF-16\nThe port of Valdora handled 37 containers.\n".encode("utf-16"))
    sjis = tmp_path / "sjis.txt"
    sjis.write_bytes("東京港の再開\n東京（共同）― 政府は月曜日、新しい港湾計画を発表した。港は来月再開される予定だ。\n".encode("shift_jis"))
    latin = tmp_path / "latin.md"
    latin.write_bytes("# Caf\u00e9 story\n\nThe caf\u00e9s of Mal\u00e9 reopened on Monday, said the owner.\n".encode("latin-1"))
    report = _add(indexed, mixed, utf16, sjis, latin)
    assert report.failed == []
    _, text = _only_article(indexed, "Türkiye story")
    assert text == "Ankara’s proposal — backed by Moscow — was discussed. The café owner said “no”. Ümit agreed."
    assert report.files[str(mixed)].warnings == [
        (f"not valid UTF-8 throughout: 3 stray byte(s), the first at offset {len(head)}, were read as Windows-1252; "
         "save the file as UTF-8 to be sure")
    ]
    _, text = _only_article(indexed, "Port story in UTF-16")
    assert text == "The port of Valdora handled 37 containers."
    assert report.files[str(utf16)].warnings == []  # a byte-order mark says the encoding: no guess
    _, text = _only_article(indexed, "東京港の再開")
    assert text.startswith("東京（共同）― 政府は月曜日")
    assert "not UTF-8; read as cp932 (detected)" in report.files[str(sjis)].warnings[0]
    _, text = _only_article(indexed, "Café story")
    assert text == "The cafés of Malé reopened on Monday, said the owner."
    assert "read as cp1252" in report.files[str(latin)].warnings[0]


def test_duplicate_ids_in_jsonl_the_later_line_wins_and_is_reported(indexed: RAG, tmp_path: Path):
    jsonl = tmp_path / "dups.jsonl"
    lines = [
        {"id": "a-1", "title": "First version", "text": "The first version of the story."},
        {"id": "b-2", "title": "Other story", "text": "An unrelated story about bridges."},
        {"id": "a-1", "title": "Second version", "text": "The corrected version of the story."},
        {"url": "https://news.example/x", "title": "By URL", "text": "A story keyed by its address."},
        {"url": "https://news.example/x", "title": "By URL again", "text": "The same address, newer text."},
    ]
    jsonl.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    report = _add(indexed, jsonl)
    assert report.failed == []
    assert len(report.added) == 3
    titles = {a.title for a in indexed.articles()}
    assert {"Second version", "Other story", "By URL again"} <= titles
    assert not {"First version", "By URL"} & titles
    assert report.files[str(jsonl)].warnings == [
        "line 3: duplicate id 'a-1' (also on line 1): this later record replaces the earlier one",
        "line 5: duplicate url 'https://news.example/x' (also on line 4): this later record replaces the earlier one",
    ]


def test_ten_megabyte_single_line_is_chunked_within_bounds(indexed: RAG, tmp_path: Path):
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 9))) for _ in range(3000)]
    line = " ".join(rng.choice(words) for _ in range(1_800_000))[:10_000_000]
    path = tmp_path / "one_line.txt"
    path.write_text(line)  # no newline, no punctuation
    report = _add(indexed, path)
    assert report.failed == [] and len(report.added) == 1
    [info] = [a for a in indexed.articles() if a.id == report.added[0]]
    assert len(info.title) <= 111
    assert info.chunk_count == report.chunks > 1_000_000 // Settings().chunk_tokens  # 1.8M words: at least a token each
    max_chars = indexed.info().chunk_tokens * 12
    hits = indexed.search(" ".join(line.split()[1000:1010]), k=3)
    assert hits and all(len(h.text) <= max_chars for h in hits)
    assert any(h.article.id == info.id for h in hits)


def test_malformed_html_and_feeds_are_read_leniently(indexed: RAG, tmp_path: Path):
    html = tmp_path / "truncated.html"
    html.write_bytes(b"<html><head><title>Cut page</title></head><body><div><p>The council met on Monday and approved the budget.<p>Then the page stops in the mid")
    feed = tmp_path / "cut.rss"
    feed.write_bytes(
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Ledger</title><item><title>Whole entry</title>'
        b"<description>The ferry timetable changes in May.</description></item><item><title>Cut entry</title><description>The st"
    )
    report = _add(indexed, html, feed)
    assert report.failed == []
    _, text = _only_article(indexed, "Cut page")
    assert text.startswith("The council met on Monday and approved the budget.")
    _, text = _only_article(indexed, "Whole entry")
    assert text == "The ferry timetable changes in May."
    assert report.files[str(feed)].warnings[0].startswith("the feed is not well-formed XML")


def test_real_embedder_hostile_batch_fails_per_file_and_keeps_the_index(tmp_path: Path, minilm):
    """The same promises through the real thing: MiniLM, FAISS and SQLite."""
    good = tmp_path / "good"
    good.mkdir()
    for name, text in GOOD.items():
        (good / name).write_text(text)
    rag = _open(tmp_path / "index", max_file_bytes=50_000, embedder=minilm)
    try:
        assert len(rag.add(good).added) == 2
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "huge.txt").write_text("Huge\n" + "word " * 20_000)
        (bad / "binary.txt").write_bytes(bytes(range(256)) * 4)
        (bad / "deep.html").write_bytes(_deep_html(4000))
        (bad / "page.xml").write_bytes(b"<html><body><p>Not a feed.</p></body></html>")
        (bad / "records.jsonl").write_text(
            '{"id": "r1", "title": "Ferry fares rise", "text": "Ferry fares rise by ten percent in May.", "published": "2024-13-01"}\n'
            '{"id": "r1", "title": "Ferry fares rise again", "text": "Ferry fares rise by twelve percent in May.", "published": "2024-04-02"}\n'
            "{not json\n"
        )
        (bad / "mixed.txt").write_bytes("Bridge closes\nThe bridge closes for repairs, said the café owner.".encode() + " \u201cFinally\u201d.".encode("cp1252"))
        report = _add(rag, bad)
        assert {Path(f.path).name: f.reason.split(";")[0].split(" (")[0] for f in report.failed} == {
            "huge.txt": "file is 100,005 bytes",
            "binary.txt": "binary file",
            "deep.html": "HTML nested more than 255 elements deep: the parser stops there, so no text could be read",
            "page.xml": "an HTML page, not an RSS/Atom feed: save it as .html to load it as an article",
            "records.jsonl:3": "invalid JSON",
        }
        assert len(report.added) == 2 and report.chunks == 2
        assert rag.search("ferry fares", k=1)[0].article.title == "Ferry fares rise again"
        assert rag.search("bridge repairs", k=1)[0].text.endswith("said the café owner. “Finally”.")
        warned = {Path(p).name: r.warnings for p, r in report.files.items() if r.warnings}
        assert set(warned) == {"records.jsonl", "mixed.txt"} and len(warned["records.jsonl"]) == 2
    finally:
        rag.close()


# ---------------------------------------------------------------- properties of the loaders

_RECORD_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=60),
    st.lists(st.text(max_size=10), max_size=3), st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=2),
)
_RECORD = st.dictionaries(
    st.sampled_from(["id", "title", "text", "body", "url", "source", "published", "author", "date", "x"]),
    st.one_of(st.text(min_size=0, max_size=200), _RECORD_VALUE),
    max_size=8,
)


def _check_result(path: Path, data: bytes) -> None:
    result = load_bytes(path, data)
    for f in result.failures:
        assert f.reason and "could not parse" not in f.reason, f.reason  # only known, described problems
    for a in result.articles:
        assert a.text.strip() and _is_clean(a.text)
        assert a.title.strip() and "\n" not in a.title and _is_clean(a.title)
        for value in (a.source, a.author, a.url):
            assert value is None or (value.strip() and _is_clean(value) and "\n" not in value)
        assert a.content_hash and a.id  # both encode to UTF-8: lone surrogates would raise here


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SUPPORTED_SUFFIXES), st.binary(max_size=600))
def test_any_bytes_in_any_format_load_or_fail_with_a_reason(suffix: str, data: bytes):
    _check_result(Path(f"/nowhere/input{suffix}"), data)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([".txt", ".md", ".html", ".rss", ".json"]), st.text(max_size=400), st.sampled_from(["utf-8", "utf-16", "cp1252"]))
def test_any_text_in_any_format_loads_clean_or_fails_with_a_reason(suffix: str, text: str, encoding: str):
    _check_result(Path(f"/nowhere/input{suffix}"), text.encode(encoding, errors="surrogatepass" if encoding != "cp1252" else "replace"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_RECORD, _RECORD_VALUE), min_size=1, max_size=6), st.booleans())
def test_any_json_records_load_clean_or_fail_per_record(records: list, ascii_only: bool):
    lines = "\n".join(json.dumps(r, ensure_ascii=ascii_only) for r in records)
    for suffix, data in ((".jsonl", lines), (".json", json.dumps(records, ensure_ascii=ascii_only))):
        path = Path(f"/nowhere/records{suffix}")
        _check_result(path, data.encode("utf-8", errors="surrogatepass"))
        result = load_bytes(path, data.encode("utf-8", errors="surrogatepass"))
        if suffix == ".jsonl" and "\n" not in "".join(json.dumps(r, ensure_ascii=ascii_only) for r in records):
            # Every record is accounted for: an article, a failure, or replaced by a later duplicate.
            replaced = sum("this later record replaces" in w.reason for w in result.warnings)
            assert len(result.articles) + len(result.failures) + replaced == len(records)
