"""Turn files into Articles: one loader per format, and a walker that reports every failure.

Formats: ``.txt`` (wire style: optional title, ``By`` byline, ``CITY (AGENCY) -`` dateline),
``.md`` (optional YAML front matter, ``# Title``), ``.html`` (main text via trafilatura),
``.json`` / ``.jsonl`` (records), and RSS / Atom feeds (``.rss``, ``.atom``, ``.xml``).
A single-article file may have a sidecar ``<stem>.meta.json`` with metadata overrides.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .articles import MAX_TITLE_CHARS, Article, clean_field, clean_text, read_date, terminal_safe
from .errors import LoadError

SIDECAR_SUFFIX = ".meta.json"
_BYLINE = re.compile(r"^by\s+(.{2,80})$", re.IGNORECASE)
_DATELINE = re.compile(r"^([A-Z][A-Za-z .,'’-]{1,40}?)\s*\(([^()\n]{1,40})\)\s*[-–—]+\s*")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# Bounded span: an unbounded ".+?" rescans the rest of the line for every unclosed "*" (quadratic).
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)([^\n]{1,300}?)(?<=\S)\1")
_MD_HEADING = re.compile(r"^#{1,6}\s+", re.MULTILINE)


@dataclass
class LoadFailure:
    """One file or record that could not be loaded, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class LoadWarning(LoadFailure):
    """Something fixed or dropped while loading (a guessed encoding, an unreadable date, a
    repeated id); the article itself was loaded."""


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)


Warn = Callable[[str], None]


def _ignore(message: str) -> None:
    pass


# ---------------------------------------------------------------- reading bytes


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing files over ``max_bytes`` before reading them; the read itself
    also stops at the limit, in case the file grows in between."""
    size = path.stat().st_size
    if size <= max_bytes:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) <= max_bytes:
            return data
        size = len(data)
    raise LoadError(
        str(path),
        f"file is {size:,} bytes; the limit is {max_bytes:,} (RAG_MAX_FILE_BYTES): split the file or raise the limit",
    )


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    if not path.exists():
        raise LoadError(str(path), "no such file")
    if not path.is_file():
        raise LoadError(str(path), "not a regular file")
    data = _read_bounded(path, max_bytes)
    if not data.strip():
        raise LoadError(str(path), "empty file")
    return data


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\x0b\x0c\r\x1b") + b"\x7f"
_ASCII = bytes(range(128))
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def _bom_encoding(data: bytes) -> str | None:
    return next((encoding for bom, encoding in _BOMS if data.startswith(bom)), None)


def _check_not_binary(path: Path, data: bytes) -> None:
    """A few stray control bytes are cleaned out of text later; many mean it is not text."""
    if _bom_encoding(data) in ("utf-16", "utf-32"):
        return  # their NUL bytes are text
    sample = data[:65536]
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if controls > max(2, len(sample) // 20):
        raise LoadError(
            str(path),
            f"binary file ({controls:,} control bytes in the first {len(sample):,}), not text; "
            "if it is UTF-16 text without a byte-order mark, save it as UTF-8",
        )


_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")


def _cp1252_fallback(e: UnicodeError) -> tuple[str, int]:
    assert isinstance(e, UnicodeDecodeError)
    bad = e.object[e.start : e.end]
    # Windows-1252 leaves five bytes undefined; Latin-1 makes those C1 controls, which clean_text drops.
    return "".join(bytes([b]).decode("cp1252" if b not in _CP1252_UNDEFINED else "latin-1") for b in bad), e.end


codecs.register_error("rag-cp1252-fallback", _cp1252_fallback)


def decode_text(path: Path, data: bytes, warn: Warn = _ignore) -> str:
    """The text of a file: UTF-8 (the norm), the encoding its byte-order mark names, UTF-8 with
    stray Windows-1252 bytes (pasted from old files), or else the encoding charset_normalizer
    detects. Every guess is reported through ``warn``; undecodable bytes are a LoadError."""
    if encoding := _bom_encoding(data):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as e:
            name = encoding.upper().replace("-SIG", "")
            raise LoadError(
                str(path), f"starts with a {name} byte-order mark but is not valid {name} (byte offset {e.start:,}); save it as UTF-8"
            ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        first_bad = e.start
    non_ascii = len(data.translate(None, _ASCII))
    utf8 = sum(len(m) for m in _UTF8_MULTIBYTE.findall(data))
    if utf8 and utf8 >= non_ascii - utf8:  # mostly UTF-8: read the strays as Windows-1252
        warn(
            f"not valid UTF-8 throughout: {non_ascii - utf8:,} stray byte(s), the first at offset {first_bad:,}, "
            "were read as Windows-1252; save the file as UTF-8 to be sure"
        )
        return data.decode("utf-8", errors="rag-cp1252-fallback")
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise LoadError(
            str(path),
            f"not UTF-8 text (byte 0x{data[first_bad]:02x} at offset {first_bad}) and no other encoding fits; convert it to UTF-8",
        )
    # Among equally good single-byte guesses, Western European (Windows-1252) is the likeliest.
    if best.encoding != "cp1252" and (
        "cp1252" in best.could_be_from_charset
        or any(m.encoding == "cp1252" and m.chaos <= best.chaos and m.coherence >= best.coherence for m in matches)
    ):
        warn("not UTF-8; read as cp1252 (detected): check the text, or save the file as UTF-8")
        return data.decode("cp1252", errors="rag-cp1252-fallback")
    warn(f"not UTF-8; read as {best.encoding} (detected): check the text, or save the file as UTF-8")
    return str(best)


# ---------------------------------------------------------------- per-format loaders


def _first_sentence_title(text: str) -> str:
    body = _DATELINE.sub("", text, count=1).strip()
    first = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0]
    if len(first) > 110:
        first = first[:110].rsplit(" ", 1)[0] + "…"
    return first


def load_txt(path: Path, text: str, warn: Warn = _ignore) -> list[Article]:
    text = clean_text(text)
    if not text:
        raise LoadError(str(path), "no text (only spaces or control characters)")
    lines = [ln.strip() for ln in text.split("\n")]
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


class _FrontMatterLoader:
    """yaml.SafeLoader that leaves dates as strings, so "2023-13-45" is a warning from
    read_date, not a ValueError from PyYAML's date constructor that sinks the file."""

    _class: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls._class is None:
            import yaml

            class Loader(yaml.SafeLoader):
                pass

            Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
            cls._class = Loader
        return cls._class


def load_md(path: Path, text: str, warn: Warn = _ignore) -> list[Article]:
    import yaml

    meta: dict[str, Any] = {}
    text = text.lstrip("\ufeff")
    if text.startswith("---"):
        parts = text.split("\n---", 1)
        if len(parts) == 2:
            try:
                loaded = yaml.load(parts[0][3:], Loader=_FrontMatterLoader.get())  # a SafeLoader subclass
            except yaml.YAMLError as e:
                raise LoadError(str(path), f"invalid YAML front matter: {e}") from None
            except RecursionError:
                raise LoadError(str(path), "YAML front matter nested too deeply to read") from None
            if isinstance(loaded, dict):
                meta = loaded
            text = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    title = clean_field(meta.get("title"), MAX_TITLE_CHARS)
    if title is None and (m := re.search(r"^#\s+(.+)$", text, re.MULTILINE)):
        title = m.group(1).strip()
        text = text[: m.start()] + text[m.end() :]
    body = _MD_HEADING.sub("", _MD_LINK.sub(r"\1", text))
    body = clean_text(_MD_EMPHASIS.sub(r"\2", body))
    if not body:
        raise LoadError(str(path), "no article text in the Markdown file")
    record = {**meta, "title": title or _first_sentence_title(body), "text": body}
    return [_article_from_record(record, path, default_key=f"file:{path.resolve()}", warn=warn)]


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


def _records_from_json(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LoadError(
            str(path), f"invalid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    except (ValueError, RecursionError) as e:
        raise LoadError(str(path), _json_problem(e)) from None
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        data = data["articles"]
    if isinstance(data, dict):
        yield str(path), data
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield f"{path}[{i}]", item
    else:
        raise LoadError(str(path), "JSON must be an object or a list of objects")


def _json_problem(e: ValueError | RecursionError) -> str:
    if isinstance(e, RecursionError):
        return "JSON nested too deeply to read"
    return f"invalid JSON ({e})"  # e.g. an integer of more than 4,300 digits


def _records_from_jsonl(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    # Only "\n" ends a record: str.splitlines() would also cut at U+2028, form feeds and
    # other characters that JSON strings may hold raw.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        record: Any
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            record = LoadError(where, f"invalid JSON ({e.msg} at column {e.colno})")
        except (ValueError, RecursionError) as e:
            record = LoadError(where, _json_problem(e))
        yield where, record


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


def _article_from_record(record: dict[str, Any], path: Path, default_key: str, warn: Warn = _ignore) -> Article:
    text = _pick(record, "text")
    if not isinstance(text, str) or not clean_text(text):
        raise LoadError(str(path), "record has no text (expected one of: text, body, content)")
    text = clean_text(html_to_text(text) if re.search(r"<(p|div|br|a|b|i|span)\b", text, re.I) else text)
    title = clean_field(_pick(record, "title"), MAX_TITLE_CHARS) or _first_sentence_title(text)
    first_line, _, rest = text.partition("\n")
    if rest.strip() and first_line.strip().lower() == title.lower():
        text = rest.strip()  # the headline repeated as the body's first line
    url = clean_field(_pick(record, "url"))
    explicit_id = clean_field(_pick(record, "id"))
    key = f"id:{explicit_id}" if explicit_id else (f"url:{url}" if url else default_key)
    published, problem = read_date(_pick(record, "published"))
    if problem:
        warn(f"published date {problem}; the article is kept without a date")
    return Article(
        title=title,
        text=text,
        key=key,
        source=clean_field(_pick(record, "source")),
        url=url,
        author=clean_field(_pick(record, "author")),
        published=published,
        origin=str(path),
    )


def _record_label(path: Path, where: str) -> str:
    """'line 3' for 'feed.jsonl:3', 'record 2' for 'list.json[2]'."""
    rest = where[len(str(path)) :]
    return f"line {rest[1:]}" if rest.startswith(":") else f"record {rest[1:-1]}" if rest else "the record"


def _load_records(path: Path, records: Iterable[tuple[str, Any]], result: LoadResult) -> None:
    """Records to articles. Two records with the same id (or URL) are one article: the later
    one replaces the earlier, like an update, and a warning names both."""
    seen: dict[str, tuple[int, str]] = {}  # article key -> (index in result.articles, where)
    for i, (where, record) in enumerate(records):
        if isinstance(record, LoadError):
            result.failures.append(LoadFailure(where, record.reason))
            continue
        if not isinstance(record, dict):
            result.failures.append(LoadFailure(where, "record is not a JSON object"))
            continue
        def warn(message: str, where: str = where) -> None:
            result.warnings.append(LoadWarning(where, message))

        try:
            article = _article_from_record(record, path, default_key=f"file:{path.resolve()}#{i}", warn=warn)
        except LoadError as e:
            result.failures.append(LoadFailure(where, e.reason))
            continue
        if article.key in seen:
            index, earlier = seen[article.key]
            kind, _, value = article.key.partition(":")
            warn(
                f"duplicate {kind} '{clean_field(value, 80)}' (also on {_record_label(path, earlier)}): "
                "this later record replaces the earlier one"
            )
            result.articles[index] = article
            seen[article.key] = (index, where)
        else:
            seen[article.key] = (len(result.articles), where)
            result.articles.append(article)


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


# ---------------------------------------------------------------- dispatch and walking

TextLoader = Callable[[Path, str, Warn], list[Article]]
BytesLoader = Callable[[Path, bytes, Warn], list[Article]]
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


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def _apply_sidecar(path: Path, articles: list[Article], data: bytes | None, warn: Warn = _ignore) -> list[Article]:
    if data is None or len(articles) != 1:
        return articles
    sidecar = sidecar_path(path)
    try:
        meta = json.loads(data.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise LoadError(str(path), f"sidecar {sidecar.name} is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise LoadError(str(path), f"sidecar {sidecar.name} must hold a JSON object")
    changes: dict[str, Any] = {}
    for name in ("title", "source", "url", "author"):
        if name in meta:
            changes[name] = clean_field(meta[name], MAX_TITLE_CHARS if name == "title" else 2000)
    if "published" in meta:
        changes["published"], problem = read_date(meta["published"])
        if problem:
            warn(f"sidecar {sidecar.name}: published date {problem}; the article is kept without a date")
    if explicit_id := clean_field(meta.get("id")):
        changes["key"] = f"id:{explicit_id}"
    changes = {k: v for k, v in changes.items() if v is not None or k in ("url",)}
    return [articles[0].with_metadata(**changes)]


def read_file(path: Path, max_bytes: int = 25_000_000) -> tuple[bytes, bytes | None]:
    """The bytes of a supported file and of its sidecar (None when it has none); raises LoadError.
    Split from parsing so a distributed engine can read on one machine and parse on another."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        if not path.exists():
            raise LoadError(str(path), "no such file")
        raise LoadError(
            str(path),
            f"unsupported file type '{suffix or '(none)'}' (supported: {', '.join(SUPPORTED_SUFFIXES)})",
        )
    data = _read_bytes(path, max_bytes)
    sidecar = sidecar_path(path)
    if suffix in _RECORD_FORMATS or not sidecar.is_file():
        return data, None
    try:
        return data, _read_bounded(sidecar, max_bytes)
    except OSError as e:
        raise LoadError(str(path), f"cannot read sidecar {sidecar.name}: {e}") from None


def load_bytes(path: Path, data: bytes, sidecar: bytes | None = None) -> LoadResult:
    """Parse the bytes ``read_file`` returned for ``path`` into articles; every problem becomes a
    LoadFailure, never an exception. Touches no file: ``path`` only names the articles."""
    result = LoadResult()
    suffix = path.suffix.lower()

    def warn(message: str) -> None:
        result.warnings.append(LoadWarning(str(path), message))

    try:
        _check_not_binary(path, data)
        if suffix in _RECORD_FORMATS:
            _load_records(path, _RECORD_FORMATS[suffix](path, decode_text(path, data, warn)), result)
            if not result.articles and not result.failures:
                raise LoadError(str(path), "no records")
        elif suffix in _TEXT_LOADERS:
            text = decode_text(path, data, warn)
            result.articles = _apply_sidecar(path, _TEXT_LOADERS[suffix](path, text, warn), sidecar, warn)
        else:
            result.articles = _apply_sidecar(path, _BYTES_LOADERS[suffix](path, data, warn), sidecar, warn)
    except LoadError as e:
        result.failures.append(LoadFailure(e.path, e.reason))
    except RecursionError:
        result.failures.append(LoadFailure(str(path), "nested too deeply to read (the parser ran out of stack)"))
    except Exception as e:  # a parser bug must not sink the batch
        result.failures.append(LoadFailure(str(path), f"could not parse ({type(e).__name__}: {e})"))
    return result


def name_problem(path: Path) -> str | None:
    """Why a file's name cannot be indexed: one that is not UTF-8 (Python holds its bad bytes
    as lone surrogates, which SQLite, JSON and terminals all refuse)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8; rename it (e.g. `convmv -f latin1 -t utf8`) to index it"
    return None


def shown_path(path: Path | str) -> str:
    """A path as reports and terminals show it: undecodable bytes and controls as escapes."""
    return terminal_safe(str(path))


def load_file(path: Path, max_bytes: int = 25_000_000) -> LoadResult:
    """Load one file into articles; every problem becomes a LoadFailure, never an exception."""
    if problem := name_problem(path):
        return LoadResult(failures=[LoadFailure(shown_path(path), problem)])
    try:
        data, sidecar = read_file(path, max_bytes)
    except LoadError as e:
        return LoadResult(failures=[LoadFailure(e.path, e.reason)])
    except OSError as e:
        return LoadResult(failures=[LoadFailure(str(path), f"cannot read ({e.strerror or e})")])
    return load_bytes(path, data, sidecar)


def _walk(top: Path, follow_symlinks: bool, skipped: list[LoadFailure]) -> list[Path]:
    """Files below ``top`` (hidden ones and sidecars skipped), walked with a stack rather than
    recursion (a 1,100-deep tree must not hit Python's recursion limit). Symbolic links that
    lead out of ``top`` are skipped with a reason unless ``follow_symlinks``; followed folders
    are entered once (a link back up would loop)."""
    root = top.resolve()
    seen: set[tuple[int, int]] = set()
    found: list[Path] = []
    stack = [top]
    follow_hint = "pass --follow-symlinks (add(..., follow_symlinks=True)) to index what links point to"
    while stack:
        folder = stack.pop()
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            skipped.append(LoadFailure(shown_path(folder), f"cannot read the folder ({e.strerror or e})"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    target = path.resolve()
                    if not follow_symlinks and not target.is_relative_to(root):
                        skipped.append(LoadFailure(shown_path(path), f"skipped: a symbolic link to "
                                                   f"{shown_path(target)}, outside {shown_path(top)}; {follow_hint}"))
                        continue
                    if target.is_dir():
                        if follow_symlinks:  # inside the folder, its files are reached through the real path
                            stack.append(path)
                        continue
                    if not target.exists():
                        skipped.append(LoadFailure(shown_path(path), "skipped: a broken symbolic link"))
                        continue
                if entry.is_dir():
                    stack.append(path)
                elif entry.is_file() and not entry.name.endswith(SIDECAR_SUFFIX):
                    found.append(path)
            except OSError as e:
                skipped.append(LoadFailure(shown_path(path), f"cannot read ({e.strerror or e})"))
    return sorted(found)


def iter_files(
    paths: Iterable[str | Path], follow_symlinks: bool = False, skipped: list[LoadFailure] | None = None
) -> Iterator[Path]:
    """Files named directly, plus every file below named directories (hidden ones and sidecars
    skipped; links out of a directory too, unless ``follow_symlinks``: see :func:`_walk`).
    What was skipped, and why, is appended to ``skipped``."""
    skipped = skipped if skipped is not None else []
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            yield from _walk(path, follow_symlinks, skipped)
        else:
            yield path


def load_paths(paths: Iterable[str | Path], max_bytes: int = 25_000_000, follow_symlinks: bool = False) -> LoadResult:
    """Load every file under ``paths``. Failures are collected per file, the rest still loads."""
    result = LoadResult()
    for path in iter_files(paths, follow_symlinks, result.failures):
        one = load_file(path, max_bytes)
        result.articles.extend(one.articles)
        result.failures.extend(one.failures)
        result.warnings.extend(one.warnings)
    return result
