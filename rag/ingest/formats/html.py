"""HTML pages: the main text extracted with trafilatura, and HTML fragments (feed items) as text."""

from __future__ import annotations

from pathlib import Path

from rag.documents.articles import Article, clean_text
from rag.errors import LoadError
from rag.ingest.formats.reading import Warn, _bom_encoding, _first_sentence_title, _ignore, decode_text
from rag.ingest.formats.records import _article_from_record


def _html_depth_limit_hit(data: bytes) -> bool:
    """Whether libxml2 stopped at its nesting limit (256): the text below it is lost."""
    import lxml.etree

    parser = lxml.etree.HTMLParser()
    try:
        lxml.etree.fromstring(data, parser)
    except (lxml.etree.LxmlError, ValueError):
        pass
    return any(e.type_name == "ERR_RESOURCE_LIMIT" or "depth" in e.message.lower() for e in parser.error_log)


def load_html(path: Path, data: bytes, warn: Warn = _ignore) -> list[Article]:
    import trafilatura

    # trafilatura reads UTF-8 and declared charsets; a UTF-16/32 page is decoded here first.
    source: bytes | str = decode_text(path, data, warn) if _bom_encoding(data) in ("utf-16", "utf-32") else data
    doc = trafilatura.bare_extraction(
        source, url=None, with_metadata=True, include_comments=False, include_tables=False
    )
    meta = doc.as_dict() if doc is not None and hasattr(doc, "as_dict") else (doc or {})
    body = clean_text(meta.get("text") or "")
    if not body:
        body = clean_text(trafilatura.html2txt(source) or "")
    too_deep = _html_depth_limit_hit(data)
    if not body and too_deep:
        raise LoadError(
            str(path),
            "HTML nested more than 255 elements deep: the parser stops there, so no text could be read "
            "(save the article text as .txt instead)",
        )
    if not body:
        raise LoadError(
            str(path),
            "no readable article text found in the HTML (only scripts, styles, menus or markup; "
            "a page that builds its text with JavaScript cannot be read)",
        )
    if too_deep:
        warn("HTML nested more than 255 elements deep: text below that depth was not read")
    record = {
        "title": meta.get("title"),
        "text": body,
        "author": meta.get("author"),
        "source": meta.get("sitename"),
        "url": meta.get("url"),
        "published": meta.get("date"),
    }
    if not record["title"]:
        record["title"] = _first_sentence_title(body)
    return [_article_from_record(record, path, default_key=f"file:{path.resolve()}", warn=warn)]
