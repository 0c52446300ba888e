"""Conversations out of the app: as Markdown with their sources, and the answers people rated as
an evaluation set in the JSONL format ``rag eval`` reads (rag.evaluation.questions).

What the evaluation format can say about a rating:

- a thumbs-up answer becomes a question whose reference ``answer`` is the liked answer's text
  (citation marks removed) and whose ``evidence_article_ids`` are the articles it cited; its
  earlier turns are its ``history`` and the day it was asked its ``question_date``, so "last week"
  is read as it was then. The whole answer is the reference: token F1 and the retrieval scores
  work as it is; shorten it to the key words before relying on exact match or "contains";
- a thumbs-up refusal becomes an ``unanswerable`` question (refusing was right);
- a thumbs-down answer has no right answer to give: it is exported with ``type: "disliked"`` and no
  reference, the rejected text in ``disliked_answer`` and its citations in
  ``disliked_article_ids``, for a person to fill in ``answer`` (``rag eval`` still asks it and
  reports it under its own type; it ignores the extra fields).

``rag eval`` builds its index from an articles JSONL: :func:`evaluation_articles` writes the
articles the rated answers were given, under the ids the questions name, so
``rag eval feedback.jsonl --articles feedback-articles.jsonl`` runs as exported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from rag.conversations.records import Conversation, Turn
from rag.results import Answer, ArticleInfo, Hit

_CITATION = re.compile(r"\s*\[\d+\]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: str) -> str:
    """Text as Markdown shows it literally (an article's or model's markup stays text)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _source_line(n: int, hit: Hit) -> str:
    a = hit.article
    meta = " · ".join(p for p in (a.source, f"by {a.author}" if a.author else None,
                                  a.published.isoformat() if a.published else None) if p)
    title = f"[{_md(a.title)}](<{a.url}>)" if a.url and a.url.startswith(("http://", "https://")) else _md(a.title)
    return f"{n}. {title}" + (f" — {_md(meta)}" if meta else "")


def _answer_markdown(turn: Turn) -> list[str]:
    answer = turn.answer
    lines = [f"## {_md(answer.question)}", ""]
    asked = f"Asked {turn.asked_at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
    details = [asked, f"model {answer.model}" if answer.model else "", turn.filter_note,
               {"up": "rated 👍", "down": "rated 👎"}.get(turn.feedback or "", "")]
    if answer.standalone_question:
        details.append(f"searched for: {answer.standalone_question}")
    lines += [f"*{_md(' · '.join(d for d in details if d))}*", ""]
    if answer.refused:
        lines += [f"No answer: {_md(answer.text)}", ""]
        if answer.notes:
            lines += [f"(Why: {_md(answer.notes[0])})", ""]
        return lines
    lines += [_md(answer.text).replace("\\[", "[").replace("\\]", "]"), ""]  # keep the [n] marks readable
    cited: dict[int, list[str]] = {}
    for c in answer.citations:
        quotes = cited.setdefault(c.n, [])
        if c.quote.strip() and c.quote.strip() not in quotes:
            quotes.append(c.quote.strip())
    if cited:
        lines += ["**Sources**", ""]
        for n in sorted(cited):
            hit = answer.sources[n - 1] if 0 < n <= len(answer.sources) else next(c.hit for c in answer.citations if c.n == n)
            lines.append(_source_line(n, hit))
            lines += [f"   > {_md(q)}" for q in cited[n]]
        lines.append("")
    others = [(n, h) for n, h in enumerate(answer.sources, start=1) if n not in cited]
    if others:
        lines += ["<details><summary>Also given to the model</summary>", ""]
        lines += [_source_line(n, h) for n, h in others]
        lines += ["", "</details>", ""]
    return lines


def markdown(conversation: Conversation, now: datetime | None = None) -> str:
    """The conversation as a Markdown document: each question, its answer with [n] marks, and
    the sources it cites (title linked to the article's URL, publisher, author, date, and the
    sentences quoted), then the other passages the model was given."""
    now = now or datetime.now(timezone.utc)
    count = len(conversation.turns)
    lines = [f"# {_md(conversation.title)}", "",
             f"*Exported {now:%Y-%m-%d %H:%M} UTC · {count} question{'s' if count != 1 else ''} · "
             f"started {conversation.created_at:%Y-%m-%d}*", ""]
    for turn in conversation.turns:
        lines += _answer_markdown(turn)
    return "\n".join(lines).rstrip() + "\n"


def _plain(answer: Answer) -> str:
    return _CITATION.sub("", answer.text).strip()


def evaluation_records(conversations: Iterable[Conversation]) -> list[dict[str, Any]]:
    """One evaluation question per rated answer (see the module's docstring for what a rating becomes)."""
    out: list[dict[str, Any]] = []
    for conversation in conversations:
        for turn in conversation.turns:
            if turn.feedback is None:
                continue
            answer = turn.answer
            history = [[t.question, t.answer.text] for t in conversation.turns[: turn.position]]
            record: dict[str, Any] = {"id": f"{conversation.id[:12]}-{turn.position + 1}", "question": answer.question}
            if history:
                record["history"] = history
            record["question_date"] = turn.asked_at.date().isoformat()
            if turn.feedback == "down":
                record.update(type="disliked", disliked_answer=answer.text,
                              disliked_article_ids=sorted({c.article.id for c in answer.citations}))
            elif answer.refused:
                record.update(type="unanswerable", unanswerable=True)
            else:
                record.update(answer=[_plain(answer)], evidence_article_ids=sorted({c.article.id for c in answer.citations}),
                              type="follow-up" if history else "factoid")
            record.update(feedback=turn.feedback, model=answer.model, conversation=conversation.id)
            out.append(record)
    return out


def evaluation_jsonl(conversations: Iterable[Conversation]) -> str:
    """:func:`evaluation_records` as JSONL, one question a line."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in evaluation_records(conversations))


def evaluation_articles(conversations: Iterable[Conversation], article_text: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """The articles the rated answers were given, as article records keyed by their index ids (the
    ids the questions' evidence names), for ``rag eval QUESTIONS --articles ARTICLES``: the text
    from ``article_text`` (the index), or the saved passages of an article removed since."""
    passages: dict[str, dict[int, str]] = {}
    articles: dict[str, ArticleInfo] = {}
    for conversation in conversations:
        for turn in conversation.turns:
            if turn.feedback is None:
                continue
            for hit in [*turn.answer.sources, *(c.hit for c in turn.answer.citations)]:
                articles.setdefault(hit.article.id, hit.article)
                passages.setdefault(hit.article.id, {}).setdefault(hit.start, hit.text)
    return [
        {"id": a.id, "title": a.title, "text": article_text(a.id) or "\n\n".join(t for _, t in sorted(passages[a.id].items())),
         "source": a.source, "url": a.url, "author": a.author, "published": a.published.isoformat() if a.published else None}
        for a in articles.values()
    ]


def articles_jsonl(conversations: Iterable[Conversation], article_text: Callable[[str], str | None]) -> str:
    """:func:`evaluation_articles` as JSONL."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in evaluation_articles(conversations, article_text))
