"""RSS and Atom feeds (feedparser): one article per item."""

from __future__ import annotations

import re
from pathlib import Path

from rag.documents.articles import Article, clean_field, clean_text
from rag.errors import LoadError
from rag.ingest.formats.reading import Warn, _ignore
from rag.ingest.formats.records import _article_from_record

_HTML_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.IGNORECASE | re.DOTALL)


def load_feed(path: Path, data: bytes, warn: Warn = _ignore) -> list[Article]:
    import feedparser

    feed = feedparser.parse(data)
    problem = feed.get("bozo_exception")
    if problem is not None and "amplification" in str(problem):
        raise LoadError(
            str(path), f"refused: its XML entities expand beyond safe limits ({problem}); this is an attack file, not a feed"
        )
    if not feed.entries:
        if _HTML_START.match(data[:4096]):
            raise LoadError(str(path), "an HTML page, not an RSS/Atom feed: save it as .html to load it as an article")
        if not feed.get("version") and problem is not None:
            raise LoadError(str(path), f"not an RSS/Atom feed: not valid XML ({problem})")
        if not feed.get("version"):
            raise LoadError(str(path), "XML, but not an RSS or Atom feed (no <rss>, <feed> or <rdf:RDF> root element)")
        raise LoadError(str(path), "the feed has no entries")
    if problem is not None:
        warn(f"the feed is not well-formed XML ({problem}); its entries were read leniently, check them")
    source = clean_field(feed.feed.get("title"))
    articles = []
    empty = 0
    for n, entry in enumerate(feed.entries, start=1):
        html = entry.get("content", [{}])[0].get("value") if entry.get("content") else None
        text = html or entry.get("summary") or entry.get("description") or ""
        if not isinstance(text, str) or not clean_text(text):
            empty += 1
            continue
        record = {
            "title": entry.get("title"),
            "text": text,
            "url": entry.get("link"),
            "id": entry.get("id"),
            "author": entry.get("author"),
            "source": source,
            "published": entry.get("published") or entry.get("updated"),
        }
        articles.append(_article_from_record(
            record, path, default_key=f"file:{path.resolve()}", warn=lambda m, n=n: warn(f"entry {n}: {m}")
        ))
    if not articles:
        raise LoadError(str(path), "feed entries have no text")
    if empty:
        warn(f"{empty} of {len(feed.entries)} entries have no text and were skipped")
    return articles
