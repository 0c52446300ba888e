"""Evidence selection: from the retrieved chunks, keep the sentences that answer the question.

A small model answers better, and much sooner, from a few relevant sentences than from whole
chunks. Sentences are scored by embedding similarity to the question plus word overlap,
picked within a token budget (with the sentence before one that starts mid-thought), and
regrouped into passages that keep their article offsets, so citations still point at the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from rag.models.embedding import Embedder
from rag.results import Hit
from rag.text import content_words, split_sentences

_CONTINUES = re.compile(r"^(he|she|it|they|this|that|these|those|his|her|their|its|but|and|also|however)\b", re.I)


@dataclass
class _Sentence:
    hit: Hit
    start: int  # offsets in the article
    end: int
    text: str
    score: float = 0.0


def _sentences(hits: Sequence[Hit]) -> list[_Sentence]:
    seen: set[tuple[str, int]] = set()
    out: list[_Sentence] = []
    for hit in hits:
        for span in split_sentences(hit.text):
            key = (hit.article.id, hit.start + span.start)
            if key in seen:  # chunks overlap: keep each sentence once
                continue
            seen.add(key)
            out.append(_Sentence(hit, hit.start + span.start, hit.start + span.end, hit.text[span.start : span.end]))
    return out


def select_evidence(
    question: str,
    hits: Sequence[Hit],
    embedder: Embedder,
    budget_tokens: int,
    max_passages: int = 6,
    per_article: int = 4,
    article_text: Callable[[str], str | None] | None = None,
) -> list[Hit]:
    """Passages (sentence runs from ``hits``) most relevant to ``question``, within the budget.
    With ``article_text``, a passage spanning two chunks is cut from the article itself, so its
    text is exactly the article's text at its offsets."""
    sentences = _sentences(hits)
    if not sentences:
        return []
    vectors = embedder.embed([question] + [s.text for s in sentences])
    sims = vectors[1:] @ vectors[0]
    q_words = content_words(question)
    for s, sim in zip(sentences, sims):
        lexical = len(q_words & content_words(s.text)) / len(q_words) if q_words else 0.0
        s.score = float(sim) + 0.3 * lexical

    order = sorted(range(len(sentences)), key=lambda i: -sentences[i].score)
    chosen: set[int] = set()
    used = 0

    def take(i: int) -> bool:
        nonlocal used
        if i in chosen:
            return True
        n = embedder.count_tokens(sentences[i].text)
        if chosen and used + n > budget_tokens:
            return False
        chosen.add(i)
        used += n
        return True

    # First pass: at most ``per_article`` sentences per article, so one story cannot crowd out
    # the others; second pass: what budget is left goes to the best of the rest.
    per: dict[str, int] = {}
    deferred = []
    for i in order:
        article = sentences[i].hit.article.id
        if per.get(article, 0) >= per_article:
            deferred.append(i)
            continue
        if not take(i):
            break
        per[article] = per.get(article, 0) + 1
        prev = i - 1
        if _CONTINUES.match(sentences[i].text) and prev >= 0 and sentences[prev].hit.article.id == article:
            take(prev)
    for i in deferred:
        if not take(i):
            break

    # Regroup chosen sentences into runs of adjacent sentences of the same article.
    runs: list[list[_Sentence]] = []
    for i in sorted(chosen, key=lambda i: (sentences[i].hit.article.id, sentences[i].start)):
        s = sentences[i]
        last = runs[-1][-1] if runs else None
        if last and last.hit.article.id == s.hit.article.id and s.start - last.end <= 2:
            runs[-1].append(s)
        else:
            runs.append([s])
    runs.sort(key=lambda run: -max(s.score for s in run))
    passages = []
    for run in runs[:max_passages]:
        first = run[0]
        start, end = first.start, run[-1].end
        cover = next((h for h in hits if h.article.id == first.hit.article.id and h.start <= start and end <= h.end), None)
        full = article_text(first.hit.article.id) if cover is None and article_text else None
        if cover is not None:
            text = cover.text[start - cover.start : end - cover.start]
        elif full is not None:
            text = full[start:end]
        else:
            text = " ".join(s.text for s in run)
        passages.append(replace(first.hit, start=start, end=end, text=text, score=max(s.score for s in run)))
    return passages
