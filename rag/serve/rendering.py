"""HTML for answers and sources, safe by construction: every piece of article or model text
is escaped, so an article containing ``<script>`` or markdown tricks shows as text."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from rag.results import Answer, ArticleInfo, Citation, Hit

_CITE = re.compile(r"\[(\d+)\]")
# What the chat's markdown renderer (GFM autolinks) would turn into a live link: URLs with a
# scheme, www. names and e-mail addresses. Trailing punctuation is the sentence's, not the URL's.
_LINKABLE = re.compile(
    r"(?:\b[a-z][a-z0-9+.-]*:(?://)?|\bwww\.)[^\s<>`\"']+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE
)
_TRAILING = ".,;:!?)]}'\""


def _escape_markdown(text: str) -> str:
    text = html.escape(text, quote=False)  # quote=True makes '&#x27;', whose '#' would be escaped below
    return re.sub(r"([\\`*_{}\[\]()#+!|~>-])", r"\\\1", text)


def escape(text: str) -> str:
    """HTML-escape and neutralise markdown, for text shown in the chat (which renders markdown).

    Addresses in the text (a source can plant a phishing URL for the model to repeat) become
    code spans: shown as text, never as a link. The only links are to the article's own URL,
    in the source cards."""
    pieces = []
    pos = 0
    for m in _LINKABLE.finditer(text):
        url = m.group().rstrip(_TRAILING)
        if "//" not in url and "@" not in url and not url.lower().startswith("www."):
            continue  # "note:", "10:30" or "javascript:x" is no autolink (and brackets are escaped)
        pieces += [_escape_markdown(text[pos : m.start()]), f"`{url}`"]
        pos = m.start() + len(url)
    pieces.append(_escape_markdown(text[pos:]))
    return "".join(pieces)


def source_id(turn: int, n: int) -> str:
    return f"src-{turn}-{n}"


def _preview(answer: Answer, n: int) -> str:
    """The sentence [n] quotes, for the citation's hover and focus preview."""
    quotes = list(dict.fromkeys(c.quote.strip() for c in answer.citations if c.n == n and c.quote.strip()))
    article = next((c.article for c in answer.citations if c.n == n), None)
    source = f" — {article.source or article.title}" if article else ""
    text = " … ".join(quotes)
    if len(text) > 280:
        text = text[:280].rsplit(" ", 1)[0] + "…"
    return f"“{text}”{source}"


# Plain words for why an answer was refused, by Answer.refused_by (technical reason under "details").
_COULD_NOT = {
    "empty": "I could not find any article to answer from: the index is empty",
    "model": "I could not find the answer in the passages I read",
    "grounding": "I could not find a passage that supports an answer",
    "claims": "I could not find sources that say what my draft answer said",
    "numbers": "I could not find the figures of my draft answer in the sources",
    "no-content": "I could not find news reporting on this in the passages I read",
    "uncited": "I could not find a source for my draft answer",
}
_MISSING = re.compile(r"no retrieved passage mentions: (.+)$")


def refusal_markdown(answer: Answer, filter_phrase: str = "", only: str = "") -> str:
    """A refusal as a person would say it, naming the filters that were on (``filter_phrase``:
    the dates; ``only``: the articles the question was limited to, "the article “…”"), with how
    to widen them; the check's own words folded under a details element."""
    note = answer.notes[0] if answer.notes else ""
    missing = _MISSING.search(note) if answer.refused_by == "coverage" else None
    if answer.refused_by == "empty" and (filter_phrase or only):
        lead = f"I could not find any article {filter_phrase}." if not only else f"I could not find {only} {filter_phrase}".rstrip() + "."
    elif missing:
        where = only or (f"the articles {filter_phrase}" if filter_phrase else "the indexed articles")
        where += f" {filter_phrase}" if only and filter_phrase else ""
        lead = f"I could not find anything about {missing.group(1)} in {where}."
    else:
        lead = _COULD_NOT.get(answer.refused_by or "", "I could not find an answer to this in the indexed articles")
        searched = " ".join(p for p in (only or "articles", filter_phrase) if p)
        lead += f" (I searched only {searched})." if only or filter_phrase else "."
    if only:
        lead += " Try asking about all articles."
    if filter_phrase:
        lead += " Try clearing the date filter."
    why = f"<details class=\"why\"><summary>Why</summary>\n\n{escape(note)}\n\n</details>" if note else ""
    return f"{escape(lead)}\n\n{why}" if why else escape(lead)


def answer_markdown(answer: Answer, turn: int, filter_phrase: str = "", only: str = "") -> str:
    """The checked answer with each [n] as a link to its source in the sources panel, showing the
    sentence it cites on hover and focus; a refusal in plain words (see :func:`refusal_markdown`)."""
    if answer.refused:
        return refusal_markdown(answer, filter_phrase, only)
    pieces = []
    pos = 0
    cited = {c.n for c in answer.citations}
    for m in _CITE.finditer(answer.text):
        pieces.append(escape(answer.text[pos : m.start()]))
        n = int(m.group(1))
        if n in cited:
            pieces.append(
                f'<a class="cite" href="#{source_id(turn, n)}" data-turn="{turn}" data-n="{n}">[{n}]'
                f'<span class="cite-preview" role="tooltip">{escape(_preview(answer, n))}</span></a>'
            )
        else:
            pieces.append(escape(m.group()))
        pos = m.end()
    pieces.append(escape(answer.text[pos:]))
    return "".join(pieces)


def _highlighted(text: str, ranges: Sequence[tuple[int, int]]) -> str:
    """``text`` escaped, with each range inside it in <mark> (overlapping ranges merged)."""
    spans: list[list[int]] = []
    for start, end in sorted((s, e) for s, e in ranges if 0 <= s < e <= len(text)):
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    out, pos = [], 0
    for start, end in spans:
        out += [html.escape(text[pos:start]), f"<mark>{html.escape(text[start:end])}</mark>"]
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _link(article: ArticleInfo) -> str:
    url = article.url
    if not url or not url.startswith(("http://", "https://")):
        return ""
    return (f'<a class="src-link" href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">'
            f"{html.escape(url)}</a>")


def _label(article: ArticleInfo) -> str:
    parts = (article.source, f"by {article.author}" if article.author else None,
             article.published.isoformat() if article.published else None)
    meta = " · ".join(html.escape(p) for p in parts if p)
    return f'<span class="src-title">{html.escape(article.title)}</span> <span class="src-meta">{meta}</span>'


def _passage_ranges(hit: Hit, citations: Sequence[Citation]) -> list[tuple[int, int]]:
    ranges = []
    for c in citations:
        start, end = c.quote_start - hit.start, c.quote_end - hit.start
        if not (0 <= start < end <= len(hit.text)) or hit.text[start:end] != c.quote:
            start = hit.text.find(c.quote)  # evidence passages are cut from the article: find the words
            end = start + len(c.quote)
        ranges.append((start, end))
    return ranges


def _source_card(turn: int, n: int, hit: Hit, citations: Sequence[Citation], article_text: str | None, open_: bool) -> str:
    passage = _highlighted(hit.text, _passage_ranges(hit, citations))
    full = ""
    if article_text:
        body = _highlighted(article_text, [(c.quote_start, c.quote_end) for c in citations])
        # Focusable: the text scrolls, and keyboard users must be able to scroll it too.
        label = html.escape(f"Full article: {hit.article.title}", quote=True)
        full = (f'<details class="full-article"><summary>Open full article</summary>'
                f'<div class="article-text" tabindex="0" role="region" aria-label="{label}">{body}</div></details>')
    link = _link(hit.article)
    cls = "src cited" if citations else "src"
    return (
        f'<details class="{cls}" id="{source_id(turn, n)}"{" open" if open_ else ""}>'
        f"<summary><b>[{n}]</b> {_label(hit.article)}</summary>"
        f'{f"<p class=src-url>{link}</p>" if link else ""}<p class="passage">{passage}</p>{full}</details>'
    )


def sources_html(turns: Sequence[Answer], article_text: dict[str, str]) -> str:
    """The sources panel: for each answer (newest first), the cited passages with every quoted
    sentence highlighted and the full article behind a click, then the other passages given."""
    if not turns:
        return '<div class="sources-empty">Sources of each answer appear here.</div>'
    blocks = []
    for turn in range(len(turns) - 1, -1, -1):
        answer = turns[turn]
        by_n: dict[int, list[Citation]] = {}
        for c in answer.citations:
            by_n.setdefault(c.n, []).append(c)
        cards = [
            _source_card(turn, n, answer.sources[n - 1], cs, article_text.get(cs[0].article.id), turn == len(turns) - 1)
            for n, cs in sorted(by_n.items())
        ]
        others = [
            _source_card(turn, n, hit, [], None, False)
            for n, hit in enumerate(answer.sources, start=1)
            if n not in by_n
        ]
        if others:
            cards.append(f'<details class="others"><summary>Also given to the model ({len(others)})</summary>{"".join(others)}</details>')
        if not cards:
            cards.append('<div class="sources-empty">No passages.</div>')
        question = html.escape(answer.question)
        blocks.append(
            f'<section class="turn" data-turn="{turn}" aria-label="Sources for: {question}"><h3>{question}</h3>{"".join(cards)}</section>'
        )
    return "".join(blocks)
