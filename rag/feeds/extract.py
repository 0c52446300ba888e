"""What a feed says (feedparser) and what an item's page holds (trafilatura, through the same
HTML loader as an ``.html`` file), merged into one article record.

The item's metadata comes first (its headline, date, author and link are what the publisher
says about it); the page fills what the item leaves out, and gives the text."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rag.documents.articles import clean_field, clean_text
from rag.ingest.formats import load_bytes

_HTML_TYPES = ("text/html", "application/xhtml+xml")


class ExtractError(Exception):
    """A feed or page held nothing usable; the message says why."""


@dataclass(frozen=True)
class FeedItem:
    guid: str  # the item's id, else its link, else a hash of what it says
    link: str | None
    title: str | None
    author: str | None
    published: str | None
    source: str | None  # the item's <source>, for aggregators
    content: str | None  # the text (often HTML) the feed itself carries: a summary or the whole article
    fingerprint: str  # changes when the publisher edits the item

    @property
    def fetchable(self) -> bool:
        """Whether the item links to an http(s) page (the only links followed, whatever the feed)."""
        return bool(self.link) and urlsplit(self.link or "").scheme.lower() in ("http", "https")


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    items: list[FeedItem]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def parse_feed(data: bytes) -> ParsedFeed:
    """The feed's title and items, in feed order, one per guid; raises ExtractError when the
    bytes are no RSS/Atom feed (an HTML page, an XML bomb, other XML)."""
    import feedparser

    feed = feedparser.parse(data)
    problem = feed.get("bozo_exception")
    if problem is not None and "amplification" in str(problem):
        raise ExtractError(f"refused: its XML entities expand beyond safe limits ({problem})")
    if not feed.entries:
        if not feed.get("version"):
            raise ExtractError(f"not an RSS or Atom feed{f' ({problem})' if problem is not None else ''}")
        return ParsedFeed(clean_field(feed.feed.get("title")), [])
    items: dict[str, FeedItem] = {}
    for entry in feed.entries:
        content = None
        if entry.get("content"):
            content = _text(entry["content"][0].get("value"))
        content = content or _text(entry.get("summary")) or _text(entry.get("description"))
        link = clean_field(entry.get("link"))
        title = clean_field(entry.get("title"), 300)
        # dict.get: feedparser's own get maps a missing "updated" to "published", with a DeprecationWarning.
        updated = _text(dict.get(entry, "updated")) or _text(entry.get("published"))
        source = entry.get("source")
        parts = [title, link, content, updated]
        fingerprint = hashlib.sha256("\0".join(p or "" for p in parts).encode("utf-8", "replace")).hexdigest()
        guid = clean_field(entry.get("id")) or link or "sha256:" + fingerprint
        items.setdefault(guid, FeedItem(
            guid=guid, link=link, title=title, author=clean_field(entry.get("author")),
            published=_text(entry.get("published")) or updated,
            source=clean_field(source.get("title")) if isinstance(source, dict) else None,
            content=content, fingerprint=fingerprint,
        ))
    return ParsedFeed(clean_field(feed.feed.get("title")), list(items.values()))


def page_article(data: bytes, content_type: str | None) -> dict[str, str | None]:
    """Text and metadata of a downloaded article page; raises ExtractError (an empty page, a
    PDF, a page that builds its text with JavaScript)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind and kind not in _HTML_TYPES:
        raise ExtractError(f"not an HTML page (Content-Type {kind})")
    # The loader of .html files: the same extraction, limits and clean-up as a saved page.
    loaded = load_bytes(Path("page.html"), data)
    if loaded.failures:
        raise ExtractError(loaded.failures[0].reason)
    a = loaded.articles[0]
    return {"title": a.title, "text": a.text, "author": a.author, "source": a.source, "url": a.url,
            "published": a.published.isoformat() if a.published else None}


def article_record(item: FeedItem, feed_title: str | None, page: dict[str, str | None] | None) -> dict[str, str | None]:
    """The JSON record an item is ingested as: item metadata first, the page's after; the text
    from the page, or from the feed when the item links to no page. Its ``id`` is the guid, so
    an edited item replaces its article."""
    if page is None:
        text = clean_text(item.content or "")
        if not text:
            raise ExtractError("the item links to no web page and the feed gives no text for it")
        page = {"text": item.content}
    record = {
        "id": item.guid,
        "title": item.title or page.get("title"),
        "text": page["text"],
        "url": item.link or page.get("url"),
        "author": item.author or page.get("author"),
        "source": item.source or page.get("source") or feed_title,
        "published": item.published or page.get("published"),
    }
    return {k: v for k, v in record.items() if v}
