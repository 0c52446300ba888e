"""HTML for the Library tab, escaped by construction (article metadata is whatever a file or a
feed said): the article list (a table on a desktop, cards on a phone: one markup, CSS decides),
the confirmation and result lines of a removal, and an article's preview."""

from __future__ import annotations

import html
from collections.abc import Sequence

from rag.documents.articles import Article
from rag.results import ArticleInfo

TITLE_CHARS = 60  # a title named in a sentence ("Remove 'Lavrov in Ankara…'?")
NAMED = 5  # titles named in one sentence; the rest are counted
PREVIEW_CHARS = 1500  # the preview shows whole paragraphs up to about this much, the rest on request


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def short_title(title: str, limit: int = TITLE_CHARS) -> str:
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"


def titles_phrase(titles: Sequence[str]) -> str:
    """'“A”', '“A” and “B”', '“A”, “B”, … and 3 more': for a sentence (plain text, not yet escaped)."""
    named = [f"“{short_title(t)}”" for t in titles[:NAMED]]
    rest = len(titles) - len(named)
    if rest:
        return f"{', '.join(named)} and {rest} more"
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def _count(n: int) -> str:
    return f"{n} article{'s' if n != 1 else ''}"


def article_list_html(articles: Sequence[ArticleInfo], selected: Sequence[str] = (), query: str = "") -> str:
    """The articles as a list: a checkbox (labelled with the title) to select each for removal,
    and the title as a button that opens its preview. Nothing is checked unless ``selected``."""
    query = query.strip()
    if not articles:
        message = (f"No articles match “{_e(query)}”. Try fewer or other words." if query
                   else "The index is empty: add articles with the upload on the right.")
        return f'<div class="library"><p class="library-empty" role="status">{message}</p></div>'
    picked = set(selected)
    count = f"{_count(len(articles))} match “{_e(query)}”" if query else _count(len(articles))
    rows = []
    for a in articles:
        title, when = _e(a.title), a.published.isoformat() if a.published else ""
        checked = " checked" if a.id in picked else ""
        passages = f"{a.chunk_count} passage{'s' if a.chunk_count != 1 else ''}"
        rows.append(
            f'<li class="library-item" data-id="{_e(a.id)}">'
            f'<input type="checkbox" class="library-pick" data-id="{_e(a.id)}" aria-label="Select “{title}”"{checked}>'
            f'<button type="button" class="library-open" data-id="{_e(a.id)}" '
            f'title="Open the preview">{title}</button>'
            f'<span class="library-meta"><span class="library-source">{_e(a.source or "")}</span>'
            f'<span class="library-sep" aria-hidden="true">{" · " if a.source and when else ""}</span>'
            f'<time class="library-date" datetime="{_e(when)}">{_e(when)}</time>'
            f'<span class="library-passages">{passages}</span></span></li>'
        )
    return (
        f'<div class="library"><p class="library-count" role="status">{count}</p>'
        '<div class="library-head" aria-hidden="true"><span></span><span>Title</span><span>Source</span>'
        '<span>Published</span><span>Passages</span></div>'
        f'<ul class="library-items" aria-label="Articles">{"".join(rows)}</ul></div>'
    )


def confirm_html(titles: Sequence[str]) -> str:
    question = f"Remove {titles_phrase(titles)}?" if len(titles) == 1 else f"Remove {len(titles)} articles: {titles_phrase(titles)}?"
    return (f'<p class="library-confirm" role="alert"><strong>{_e(question)}</strong> Removed articles leave the index '
            "and their uploaded files are deleted; you can undo it until you leave this page.</p>")


def removed_html(titles: Sequence[str], restored: bool = False) -> str:
    verb = "Restored" if restored else "Removed"
    named = titles_phrase(titles) if len(titles) == 1 else f"{len(titles)} articles: {titles_phrase(titles)}"
    return f'<p class="library-result" role="status">{verb} {_e(named)}.</p>'


def note_html(text: str) -> str:
    return f'<p class="library-result" role="status">{_e(text)}</p>'


def _paragraphs(text: str) -> tuple[list[str], list[str]]:
    """The text's paragraphs: those shown first (up to about PREVIEW_CHARS), and the rest."""
    paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
    shown, used = [], 0
    for p in paragraphs:
        if shown and used + len(p) > PREVIEW_CHARS:
            break
        shown.append(p)
        used += len(p)
    return shown, paragraphs[len(shown):]


def preview_html(article: Article, info: ArticleInfo | None = None) -> str:
    """The article's title, source, author, date, its own link (http(s) only) and its text: the
    first paragraphs, the rest behind "Show the whole article"."""
    meta = [m for m in (article.source, f"by {article.author}" if article.author else None,
                        article.published.isoformat() if article.published else None) if m]
    url = article.url or ""
    link = (f'<p class="preview-url"><a href="{_e(url)}" target="_blank" rel="noopener noreferrer nofollow">'
            f'{_e(url)}</a></p>' if url.lower().startswith(("http://", "https://")) else "")
    shown, rest = _paragraphs(article.text)
    body = "".join(f"<p>{_e(p)}</p>" for p in shown)
    if rest:
        body += ('<details class="preview-more"><summary>Show the whole article</summary>'
                 + "".join(f"<p>{_e(p)}</p>" for p in rest) + "</details>")
    passages = f" · {info.chunk_count} passage{'s' if info.chunk_count != 1 else ''}" if info else ""
    return (
        f'<article class="article-preview" aria-label="Preview: {_e(article.title)}">'
        f'<h2 class="preview-title" tabindex="-1">{_e(article.title)}</h2>'
        f'<p class="preview-meta">{_e(" · ".join(meta))}</p>{link}'
        f'<div class="preview-text">{body}</div>'
        f'<p class="preview-id">Id <code>{_e(article.id)}</code>{_e(passages)}</p></article>'
    )
