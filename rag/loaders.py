"""Turn files into Articles: one loader per format, and a walker that reports every failure.

Formats: ``.txt`` (wire style: optional title, ``By`` byline, ``CITY (AGENCY) -`` dateline),
``.md`` (optional YAML front matter, ``# Title``), ``.html`` (main text via trafilatura),
``.json`` / ``.jsonl`` (records), and RSS / Atom feeds (``.rss``, ``.atom``, ``.xml``).
A single-article file may have a sidecar ``<stem>.meta.json`` with metadata overrides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .articles import Article, clean_field, clean_text, parse_date
from .errors import LoadError

SIDECAR_SUFFIX = ".meta.json"
_BYLINE = re.compile(r"^by\s+(.{2,80})$", re.IGNORECASE)
_DATELINE = re.compile(r"^([A-Z][A-Za-z .,'’-]{1,40}?)\s*\(([^()\n]{1,40})\)\s*[-–—]+\s*")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")
_MD_HEADING = re.compile(r"^#{1,6}\s+", re.MULTILINE)


@dataclass
class LoadFailure:
    """One file or record that could not be loaded, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)


# ---------------------------------------------------------------- reading bytes


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    if not path.exists():
        raise LoadError(str(path), "no such file")
    if not path.is_file():
        raise LoadError(str(path), "not a regular file")
    size = path.stat().st_size
    if size > max_bytes:
        raise LoadError(str(path), f"file is {size:,} bytes; the limit is {max_bytes:,} (RAG_MAX_FILE_BYTES)")
    data = path.read_bytes()
    if not data.strip():
        raise LoadError(str(path), "empty file")
    if b"\x00" in data[:8192]:
        raise LoadError(str(path), "binary file (contains NUL bytes), not text")
    return data


def _decode_utf8(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LoadError(
            str(path),
            f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); convert it to UTF-8",
        ) from None


# ---------------------------------------------------------------- per-format loaders


def _first_sentence_title(text: str) -> str:
    body = _DATELINE.sub("", text, count=1).strip()
    first = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0]
    if len(first) > 110:
        first = first[:110].rsplit(" ", 1)[0] + "…"
    return first


def load_txt(path: Path, text: str) -> list[Article]:
    lines = [ln.strip() for ln in clean_text(text).split("\n")]
    title = author = source = None
    # Header lines: an optional title, then an optional "By ..." byline, before the body.
    if len(lines) > 1 and not _BYLINE.match(lines[0]) and not _DATELINE.match(lines[0]):
        if len(lines[0]) <= 200 and not lines[0].endswith((".", ":", ",")) and lines[1] != lines[0]:
            title = lines.pop(0)
    while lines and not lines[0]:
        lines.pop(0)
    if lines and (m := _BYLINE.match(lines[0])):
        author = m.group(1).strip()
        lines.pop(0)
    body = "\n".join(lines).strip()
    if m := _DATELINE.match(body):
        source = m.group(2).strip()
    if not body:
        raise LoadError(str(path), "no article text after the title and byline")
    return [
        Article(
            title=title or _first_sentence_title(body),
            text=body,
            key=f"file:{path.resolve()}",
            author=author,
            source=source,
            origin=str(path),
        )
    ]


def load_md(path: Path, text: str) -> list[Article]:
    import yaml

    meta: dict[str, Any] = {}
    text = text.lstrip("\ufeff")
    if text.startswith("---"):
        parts = text.split("\n---", 1)
        if len(parts) == 2:
            try:
                loaded = yaml.safe_load(parts[0][3:])
            except yaml.YAMLError as e:
                raise LoadError(str(path), f"invalid YAML front matter: {e}") from None
            if isinstance(loaded, dict):
                meta = loaded
            text = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    title = clean_field(meta.get("title"))
    if title is None and (m := re.search(r"^#\s+(.+)$", text, re.MULTILINE)):
        title = m.group(1).strip()
        text = text[: m.start()] + text[m.end() :]
    body = _MD_HEADING.sub("", _MD_LINK.sub(r"\1", text))
    body = clean_text(_MD_EMPHASIS.sub(r"\2", body))
    if not body:
        raise LoadError(str(path), "no article text in the Markdown file")
    record = {**meta, "title": title or _first_sentence_title(body), "text": body}
    return [_article_from_record(record, path, default_key=f"file:{path.resolve()}")]


def load_html(path: Path, data: bytes) -> list[Article]:
    import trafilatura

    doc = trafilatura.bare_extraction(
        data, url=None, with_metadata=True, include_comments=False, include_tables=False
    )
    meta = doc.as_dict() if doc is not None and hasattr(doc, "as_dict") else (doc or {})
    body = clean_text(meta.get("text") or "")
    if not body:
        body = clean_text(trafilatura.html2txt(data) or "")
    if not body:
        raise LoadError(str(path), "no readable article text found in the HTML")
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
    return [_article_from_record(record, path, default_key=f"file:{path.resolve()}")]


def _records_from_json(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LoadError(
            str(path), f"invalid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        data = data["articles"]
    if isinstance(data, dict):
        yield str(path), data
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield f"{path}[{i}]", item
    else:
        raise LoadError(str(path), "JSON must be an object or a list of objects")


def _records_from_jsonl(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as e:
            yield where, LoadError(where, f"invalid JSON ({e.msg} at column {e.colno})")


_FIELD_ALIASES = {
    "title": ("title", "headline", "name"),
    "text": ("text", "body", "content", "article", "story", "description", "summary"),
    "url": ("url", "link", "href"),
    "source": ("source", "publisher", "site", "sitename", "outlet"),
    "published": ("published", "published_at", "date", "pubDate", "datetime", "created_at"),
    "author": ("author", "authors", "byline", "creator"),
    "id": ("id", "_id", "guid", "uid"),
}


def _pick(record: dict[str, Any], name: str) -> Any:
    for alias in _FIELD_ALIASES[name]:
        value = record.get(alias)
        if isinstance(value, dict):  # e.g. {"source": {"name": "Reuters"}}
            value = value.get("name") or value.get("title")
        if value not in (None, "", []):
            return value
    return None


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (feed summaries, JSON bodies), one line per block."""
    import lxml.etree
    import lxml.html

    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return fragment
    for el in root.iter("script", "style"):
        el.drop_tree()
    for el in root.iter("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote"):
        el.tail = "\n" + (el.tail or "")
    return clean_text(root.text_content())


def _article_from_record(record: dict[str, Any], path: Path, default_key: str) -> Article:
    text = _pick(record, "text")
    if not isinstance(text, str) or not clean_text(text):
        raise LoadError(str(path), "record has no text (expected one of: text, body, content)")
    text = clean_text(html_to_text(text) if re.search(r"<(p|div|br|a|b|i|span)\b", text, re.I) else text)
    title = clean_field(_pick(record, "title")) or _first_sentence_title(text)
    first_line, _, rest = text.partition("\n")
    if rest.strip() and first_line.strip().lower() == title.lower():
        text = rest.strip()  # the headline repeated as the body's first line
    url = clean_field(_pick(record, "url"))
    explicit_id = clean_field(_pick(record, "id"))
    key = f"id:{explicit_id}" if explicit_id else (f"url:{url}" if url else default_key)
    return Article(
        title=title,
        text=text,
        key=key,
        source=clean_field(_pick(record, "source")),
        url=url,
        author=clean_field(_pick(record, "author")),
        published=parse_date(_pick(record, "published")),
        origin=str(path),
    )


def _load_records(path: Path, records: Iterable[tuple[str, Any]], result: LoadResult) -> None:
    for i, (where, record) in enumerate(records):
        if isinstance(record, LoadError):
            result.failures.append(LoadFailure(where, record.reason))
            continue
        if not isinstance(record, dict):
            result.failures.append(LoadFailure(where, "record is not a JSON object"))
            continue
        try:
            result.articles.append(
                _article_from_record(record, path, default_key=f"file:{path.resolve()}#{i}")
            )
        except LoadError as e:
            result.failures.append(LoadFailure(where, e.reason))


def load_feed(path: Path, data: bytes) -> list[Article]:
    import feedparser

    feed = feedparser.parse(data)
    if not feed.entries:
        problem = getattr(feed, "bozo_exception", None)
        detail = f" ({problem})" if problem else ""
        raise LoadError(str(path), f"not an RSS/Atom feed, or a feed with no entries{detail}")
    source = clean_field(feed.feed.get("title"))
    articles = []
    for entry in feed.entries:
        html = entry.get("content", [{}])[0].get("value") if entry.get("content") else None
        text = html or entry.get("summary") or entry.get("description") or ""
        if not clean_text(text):
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
        articles.append(_article_from_record(record, path, default_key=f"file:{path.resolve()}"))
    if not articles:
        raise LoadError(str(path), "feed entries have no text")
    return articles


# ---------------------------------------------------------------- dispatch and walking

TextLoader = Callable[[Path, str], list[Article]]
BytesLoader = Callable[[Path, bytes], list[Article]]
_TEXT_LOADERS: dict[str, TextLoader] = {".txt": load_txt, ".text": load_txt, ".md": load_md, ".markdown": load_md}
_BYTES_LOADERS: dict[str, BytesLoader] = {
    ".html": load_html,
    ".htm": load_html,
    ".rss": load_feed,
    ".atom": load_feed,
    ".xml": load_feed,
}
_RECORD_FORMATS = {".json": _records_from_json, ".jsonl": _records_from_jsonl, ".ndjson": _records_from_jsonl}
SUPPORTED_SUFFIXES = tuple(sorted({*_TEXT_LOADERS, *_BYTES_LOADERS, *_RECORD_FORMATS}))


def _apply_sidecar(path: Path, articles: list[Article]) -> list[Article]:
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    if not sidecar.is_file() or len(articles) != 1:
        return articles
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LoadError(str(path), f"sidecar {sidecar.name} is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise LoadError(str(path), f"sidecar {sidecar.name} must hold a JSON object")
    changes: dict[str, Any] = {}
    for name in ("title", "source", "url", "author"):
        if name in meta:
            changes[name] = clean_field(meta[name])
    if "published" in meta:
        changes["published"] = parse_date(meta["published"])
    if meta.get("id"):
        changes["key"] = f"id:{meta['id']}"
    changes = {k: v for k, v in changes.items() if v is not None or k in ("url",)}
    return [articles[0].with_metadata(**changes)]


def load_file(path: Path, max_bytes: int = 25_000_000) -> LoadResult:
    """Load one file into articles; every problem becomes a LoadFailure, never an exception."""
    result = LoadResult()
    suffix = path.suffix.lower()
    try:
        if suffix not in SUPPORTED_SUFFIXES:
            if not path.exists():
                raise LoadError(str(path), "no such file")
            raise LoadError(
                str(path),
                f"unsupported file type '{suffix or '(none)'}' (supported: {', '.join(SUPPORTED_SUFFIXES)})",
            )
        data = _read_bytes(path, max_bytes)
        if suffix in _RECORD_FORMATS:
            _load_records(path, _RECORD_FORMATS[suffix](path, _decode_utf8(path, data)), result)
            if not result.articles and not result.failures:
                raise LoadError(str(path), "no records")
        elif suffix in _TEXT_LOADERS:
            result.articles = _apply_sidecar(path, _TEXT_LOADERS[suffix](path, _decode_utf8(path, data)))
        else:
            result.articles = _apply_sidecar(path, _BYTES_LOADERS[suffix](path, data))
    except LoadError as e:
        result.failures.append(LoadFailure(e.path, e.reason))
    except Exception as e:  # a parser bug must not sink the batch
        result.failures.append(LoadFailure(str(path), f"could not parse ({type(e).__name__}: {e})"))
    return result


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files named directly, plus every file below named directories (hidden ones and sidecars skipped)."""
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if child.is_file() and not any(part.startswith(".") for part in rel):
                    if not child.name.endswith(SIDECAR_SUFFIX):
                        yield child
        else:
            yield path


def load_paths(paths: Iterable[str | Path], max_bytes: int = 25_000_000) -> LoadResult:
    """Load every file under ``paths``. Failures are collected per file, the rest still loads."""
    result = LoadResult()
    for path in iter_files(paths):
        one = load_file(path, max_bytes)
        result.articles.extend(one.articles)
        result.failures.extend(one.failures)
    return result
