"""Suggested questions for an empty chat, drawn from the newest headlines in the index, so a
first-time user sees what the loaded articles can answer."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.results import ArticleInfo

MAX_TITLE = 90


def _headline(title: str) -> str:
    title = re.sub(r"\s+", " ", title).strip().rstrip(".!?:;")
    if len(title) > MAX_TITLE:
        title = title[:MAX_TITLE].rsplit(" ", 1)[0] + "…"
    return title


def suggested_questions(articles: Sequence[ArticleInfo], n: int = 4) -> list[str]:
    """One question per recent article (newest first, near-copies of a story once), up to ``n``."""
    newest = sorted(articles, key=lambda a: (a.published.isoformat() if a.published else "", a.added_at), reverse=True)
    out: list[str] = []
    seen: set[str] = set()
    for article in newest:
        headline = _headline(article.title)
        key = headline.casefold()
        if article.duplicate_of or not headline or key in seen:
            continue
        seen.add(key)
        out.append(f"What is reported about “{headline}”?")
        if len(out) == n:
            break
    return out
