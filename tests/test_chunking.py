from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.articles import Article
from rag.chunking import ChunkerSettings, chunk_article, embedding_text, split_sentences
from rag.embedding import HashingEmbedder
from rag.loaders import load_file

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
    from rag.articles import clean_text

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
