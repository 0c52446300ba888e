"""What a story says happened: two or three of its articles' own sentences (extractive, the
default: grounded by construction), or sentences a model wrote from them that must each pass
the grounding check against the sentences they cite, else the extractive summary is shown."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from string import Template

from rag.answer.citations import CITATION, strip_citations
from rag.answer.prompts import DEFAULT_PROMPTS_DIR, inline, quoted
from rag.models.llama import Generator
from rag.results import ArticleInfo
from rag.stories.results import Quote, StorySentence
from rag.stories.sentences import Candidate, unsupported, words
from rag.text import content_words, split_sentences

log = logging.getLogger(__name__)

MAX_SENTENCES = 3
# A third sentence is shown only when it scores this close to the best: two good sentences beat
# three where the last is filler.
THIRD_SENTENCE_SHARE = 0.85
# Sentences sharing this much of their content words say the same thing (the wire copy's lede).
SAME_CLAIM = 0.5
LEDE_BONUS = 0.3  # the first sentences of a news article say what happened
MODEL_SOURCES = 8  # candidate sentences the model reads
PROMPT = "story_summary.md"


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def rank_candidates(pool: Sequence[Candidate], ledes: Sequence[str]) -> list[tuple[float, Candidate]]:
    """Candidates scored by how much of the story they tell, best first: the mean share of the
    story's articles (``ledes``, one per copy group) that use each of the sentence's content
    words, plus a bonus for opening its article. Lexical, not embedded: embedding the candidate
    sentences took 48 of a 62 s briefing over 1,000 articles on 2 busy cores."""
    if not pool:
        return []
    used = Counter(w for lede in ledes for w in words(lede))
    share = max(len(ledes), 1)
    scored = []
    for c in pool:
        said = words(c.text)
        told = sum(used[w] for w in said) / (len(said) * share) if said else 0.0
        scored.append((told + LEDE_BONUS / (1 + c.position), c))
    return sorted(scored, key=lambda sc: -sc[0])


def choose(ranked: Sequence[tuple[float, Candidate]], max_sentences: int = MAX_SENTENCES) -> list[Candidate]:
    """The best sentences that do not repeat each other: two, and a third when it is nearly as good."""
    chosen: list[tuple[float, Candidate, frozenset[str]]] = []
    for score, cand in ranked:
        said = words(cand.text)
        if any(_jaccard(said, w) >= SAME_CLAIM for _, _, w in chosen):
            continue
        if len(chosen) >= 2 and score < THIRD_SENTENCE_SHARE * chosen[0][0]:
            break
        chosen.append((score, cand, said))
        if len(chosen) == max_sentences:
            break
    picked = [c for _, c, _ in chosen]
    # Told in order: by date, then as each article tells it.
    return sorted(picked, key=lambda c: (c.article.published or date.min, c.article.id, c.start))


def extractive(chosen: Sequence[Candidate], copies: dict[str, list[tuple[ArticleInfo, str]]]) -> list[StorySentence]:
    """Each chosen sentence cited [n] to itself and to the same sentence in the article's near
    copies (``copies``: article id -> its copies' (article, text)), numbered in order."""
    n = 0
    out: list[StorySentence] = []
    for cand in chosen:
        quotes = []
        n += 1
        quotes.append(cand.quote(n))
        for copy, text in copies.get(cand.article.id, []):
            at = text.find(cand.text)
            if at >= 0:
                n += 1
                quotes.append(Quote(n, copy, cand.text, at, at + len(cand.text)))
        out.append(StorySentence(cand.text, tuple(quotes)))
    return out


def _template(prompts_dir: Path) -> Template:
    for folder in (prompts_dir, DEFAULT_PROMPTS_DIR):
        path = folder / PROMPT
        if path.is_file():
            return Template(path.read_text(encoding="utf-8").strip())
    raise FileNotFoundError(f"no {PROMPT} in {prompts_dir} or {DEFAULT_PROMPTS_DIR}")


def model_written(
    headline: str, sources: Sequence[Candidate], generator: Generator, prompts_dir: Path, max_tokens: int = 200
) -> tuple[list[StorySentence] | None, str]:
    """The model's summary of ``sources`` (numbered [1].. in the prompt), every sentence checked
    against the sentences it cites; (None, why) when a sentence fails, cites nothing, or none is written."""
    quotes = [c.quote(i) for i, c in enumerate(sources, start=1)]
    listing = "\n".join(f"[{q.n}] {quoted(q.text)} ({quoted(q.article.source or '')}, {q.article.published})" for q in quotes)
    prompt = _template(prompts_dir).substitute(headline=inline(headline), sources=listing)
    reply = "".join(generator.stream([{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0.0))
    out: list[StorySentence] = []
    for span in split_sentences(reply.strip()):
        sentence = reply.strip()[span.start : span.end]
        text = strip_citations(sentence).strip()
        if not content_words(text):
            continue  # a citation standing alone, or an empty line
        cited = [int(n) for m in CITATION.finditer(sentence) for n in re.findall(r"\d+", m.group(1))]
        support = [quotes[n - 1] for n in dict.fromkeys(cited) if 1 <= n <= len(quotes)]
        problems = unsupported(text, support)
        if problems:
            return None, f"the model's sentence {text!r} is not supported by what it cites ({'; '.join(problems)})"
        out.append(StorySentence(text, tuple(support)))
        if len(out) == MAX_SENTENCES:
            break
    if not out:
        return None, "the model wrote no sentence"
    return out, ""
