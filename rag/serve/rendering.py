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


def answer_markdown(answer: Answer, turn: int) -> str:
    """The checked answer with each [n] as a link to its source in the sources panel."""
    pieces = []
    pos = 0
    cited = {c.n for c in answer.citations}
    for m in _CITE.finditer(answer.text):
        pieces.append(escape(answer.text[pos : m.start()]))
        n = int(m.group(1))
        if n in cited:
            pieces.append(f'<a class="cite" href="#{source_id(turn, n)}" data-turn="{turn}" data-n="{n}">[{n}]</a>')
        else:
            pieces.append(escape(m.group()))
        pos = m.end()
    pieces.append(escape(answer.text[pos:]))
    text = "".join(pieces)
    if answer.refused and answer.notes:
        text += f"\n\n<small>{escape(answer.notes[0])}</small>"
    return text


def _highlighted(text: str, start: int, end: int) -> str:
    """``text`` escaped, with text[start:end] in <mark> (when the range is inside it)."""
    if not (0 <= start < end <= len(text)):
        return html.escape(text)
    return f"{html.escape(text[:start])}<mark>{html.escape(text[start:end])}</mark>{html.escape(text[end:])}"


def _label(article: ArticleInfo) -> str:
    meta = " · ".join(html.escape(p) for p in (article.source, article.published.isoformat() if article.published else None) if p)
    return f'<span class="src-title">{html.escape(article.title)}</span> <span class="src-meta">{meta}</span>'


def _source_card(turn: int, n: int, hit: Hit, citation: Citation | None, article_text: str | None, open_: bool) -> str:
    if citation is not None:
        passage = _highlighted(hit.text, citation.quote_start - hit.start, citation.quote_end - hit.start)
        if "<mark>" not in passage:
            i = hit.text.find(citation.quote)
            passage = _highlighted(hit.text, i, i + len(citation.quote)) if i >= 0 else passage
    else:
        passage = html.escape(hit.text)
    full = ""
    if article_text:
        body = _highlighted(article_text, citation.quote_start, citation.quote_end) if citation else html.escape(article_text)
        url = hit.article.url
        link = f'<p><a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">{html.escape(url)}</a></p>' if url and url.startswith(("http://", "https://")) else ""
        full = f'<details class="full-article"><summary>Open full article</summary>{link}<div class="article-text">{body}</div></details>'
    cls = "src cited" if citation else "src"
    return (
        f'<details class="{cls}" id="{source_id(turn, n)}"{" open" if open_ else ""}>'
        f"<summary><b>[{n}]</b> {_label(hit.article)}</summary>"
        f'<p class="passage">{passage}</p>{full}</details>'
    )


def sources_html(turns: Sequence[Answer], article_text: dict[str, str]) -> str:
    """The sources panel: for each answer (newest first), the cited passages with the quoted
    sentence highlighted and the full article behind a click, then the other passages given."""
    if not turns:
        return '<div class="sources-empty">Sources of each answer appear here.</div>'
    blocks = []
    for turn in range(len(turns) - 1, -1, -1):
        answer = turns[turn]
        first_citation: dict[int, Citation] = {}
        for c in answer.citations:
            first_citation.setdefault(c.n, c)
        cards = [
            _source_card(turn, n, answer.sources[n - 1], c, article_text.get(c.article.id), turn == len(turns) - 1)
            for n, c in sorted(first_citation.items())
        ]
        others = [
            _source_card(turn, n, hit, None, None, False)
            for n, hit in enumerate(answer.sources, start=1)
            if n not in first_citation
        ]
        if others:
            cards.append(f'<details class="others"><summary>Also given to the model ({len(others)})</summary>{"".join(others)}</details>')
        if not cards:
            cards.append('<div class="sources-empty">No passages.</div>')
        question = html.escape(answer.question)
        blocks.append(
            f'<section class="turn" data-turn="{turn}"><h4>{question}</h4>{"".join(cards)}</section>'
        )
    return "".join(blocks)
