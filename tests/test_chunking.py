from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.documents.articles import Article
from rag.documents.chunking import ChunkerSettings, chunk_article, embedding_text
from rag.ingest.formats import load_file
from rag.testing import HashingEmbedder
from rag.text import split_sentences

from .conftest import SEEDS

count = HashingEmbedder().count_tokens


def _article(text: str) -> Article:
    return Article(title="T", text=text, key="k")


def test_sentences_have_exact_offsets_and_lines_split():
    text = "Lavrov spoke in Pyongyang. He met officials.\n- Russian - North Korean relations\nTrade grew."
    spans = split_sentences(text)
    assert [text[s.start : s.end] for s in spans] == [
        "Lavrov spoke in Pyongyang.",
        "He met officials.",
        "- Russian - North Korean relations",
        "Trade grew.",
    ]


def test_seed_chunks_are_exact_slices_within_budget_and_overlap():
    [article] = load_file(SEEDS / "000_bd667ab957f22f49.txt").articles
    cfg = ChunkerSettings(max_tokens=60, overlap_tokens=20)
    chunks = chunk_article(article, cfg, count)
    assert len(chunks) > 3
    for c in chunks:
        assert article.text[c.start : c.end] == c.text
        assert count(c.text) <= cfg.max_tokens + 5  # token counts of parts differ slightly from the whole
    # Every sentence that fits the budget is whole in some chunk.
    for s in split_sentences(article.text):
        if count(article.text[s.start : s.end]) <= cfg.max_tokens:
            assert any(c.start <= s.start and s.end <= c.end for c in chunks)
    # Consecutive chunks overlap when the trailing sentence fits the overlap budget.
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:]))
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_overlong_sentence_is_cut_at_words():
    text = " ".join(f"word{i}" for i in range(300)) + "."
    chunks = chunk_article(_article(text), ChunkerSettings(max_tokens=50, overlap_tokens=0), count)
    assert len(chunks) >= 6
    assert all(count(c.text) <= 50 for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_embedding_text_carries_title_and_date():
    from datetime import date

    a = Article(title="Headline", text="Body.", key="k", published=date(2023, 10, 19))
    assert embedding_text(a, "Body.") == "Headline (2023-10-19)\nBody."


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=80),
        min_size=1,
        max_size=25,
    ),
    st.integers(min_value=8, max_value=64),
    st.integers(min_value=0, max_value=16),
)
def test_chunks_always_slice_the_text_and_cover_every_word(parts, max_tokens, overlap):
    from rag.documents.articles import clean_text

    text = clean_text(" ".join(parts))
    if not text:
        return
    chunks = chunk_article(_article(text), ChunkerSettings(max_tokens, overlap), count)
    covered = set()
    for c in chunks:
        assert text[c.start : c.end] == c.text
        covered.update(range(c.start, c.end))
    for i, ch in enumerate(text):
        if not ch.isspace():
            assert i in covered


# ---------------------------------------------------------------- hostile text (issue #6)

_HOSTILE_TEXT = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60),  # any unicode
        st.text(alphabet="abcdefghij", min_size=50, max_size=3000),  # huge words
        st.text(alphabet="ab. ", max_size=400),  # runs of tiny "sentences"
        st.sampled_from(["\n", " ", "…", "Mr. ", "U.S. ", "東京。", "\u200b", "e\u0301"]),
    ),
    min_size=1,
    max_size=30,
)


def _check_chunks(text: str, cfg: ChunkerSettings) -> None:
    from rag.documents.chunking import MAX_CHARS_PER_TOKEN

    chunks = chunk_article(_article(text), cfg, count)
    covered = bytearray(len(text))
    for c in chunks:
        assert text[c.start : c.end] == c.text and c.text == c.text.strip() and c.text
        assert count(c.text) <= cfg.max_tokens
        assert len(c.text) <= cfg.max_tokens * MAX_CHARS_PER_TOKEN
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(text))
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(a.start < b.start for a, b in itertools.pairwise(chunks))  # always moving forward


@settings(max_examples=80, deadline=None)
@given(_HOSTILE_TEXT, st.integers(min_value=16, max_value=64), st.integers(min_value=0, max_value=24), st.sampled_from(["pysbd", "windows", "regex"]))
def test_hostile_text_chunks_are_exact_slices_within_budget(parts, max_tokens, overlap, splitter):
    """Any text, including huge words and no punctuation, through each sentence-splitting path:
    pysbd on whole lines, pysbd on bounded windows, and the regex splitter for huge texts."""
    from unittest import mock

    from rag import text as sentences  # where the sentence splitter and its limits live
    from rag.documents.articles import clean_text

    text = clean_text("".join(parts))
    if not text:
        return
    window, max_text = {"pysbd": (10**9, 10**9), "windows": (200, 10**9), "regex": (200, 0)}[splitter]
    with mock.patch.object(sentences, "PYSBD_WINDOW", window), mock.patch.object(sentences, "PYSBD_MAX_TEXT", max_text):
        _check_chunks(text, ChunkerSettings(max_tokens, overlap))


def test_huge_unbroken_word_is_cut_into_bounded_chunks():
    # HashingEmbedder counts one huge word as one token, as WordPiece counts it as one [UNK]:
    # without a character cap this would be a single 200,000-character chunk.
    text = "Start. " + "x" * 200_000 + " end."
    cfg = ChunkerSettings(max_tokens=32, overlap_tokens=0)
    _check_chunks(text, cfg)
    chunks = chunk_article(_article(text), cfg, count)
    assert len(chunks) > 200_000 // (32 * 12)
    assert "".join(c.text for c in chunks if "x" in c.text).removesuffix(" end.") == "x" * 200_000


def test_long_line_of_short_sentences_uses_bounded_windows():
    text = "a. " * 3000 + "The real sentence ends here."
    spans = split_sentences(text)
    assert text[spans[-1].start : spans[-1].end].endswith("The real sentence ends here.")
    assert all(s.end - s.start <= 2000 for s in spans)
    _check_chunks(text, ChunkerSettings(64, 8))
