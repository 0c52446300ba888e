"""JSON and JSONL records: one article per record, with field aliases and a per-record problem."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rag.documents.articles import MAX_TITLE_CHARS, Article, clean_field, clean_text, read_date
from rag.errors import LoadError
from rag.ingest.formats.reading import LoadFailure, LoadResult, LoadWarning, Warn, _first_sentence_title, _ignore, html_to_text
from rag.results import Location


def _records_from_json(path: Path, text: str) -> Iterator[tuple[Location, Any]]:
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
        yield Location(str(path)), data
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield Location(str(path), record=i), item
    else:
        raise LoadError(str(path), "JSON must be an object or a list of objects")


def _json_problem(e: ValueError | RecursionError) -> str:
    if isinstance(e, RecursionError):
        return "JSON nested too deeply to read"
    return f"invalid JSON ({e})"  # e.g. an integer of more than 4,300 digits


def _records_from_jsonl(path: Path, text: str) -> Iterator[tuple[Location, Any]]:
    # Only "\n" ends a record: str.splitlines() would also cut at U+2028, form feeds and
    # other characters that JSON strings may hold raw.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = Location(str(path), line=lineno)
        record: Any
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            record = LoadError(str(where), f"invalid JSON ({e.msg} at column {e.colno})")
        except (ValueError, RecursionError) as e:
            record = LoadError(str(where), _json_problem(e))
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


def _load_records(path: Path, records: Iterable[tuple[Location, Any]], result: LoadResult) -> None:
    """Records to articles. Two records with the same id (or URL) are one article: the later
    one replaces the earlier, like an update, and a warning names both."""
    seen: dict[str, tuple[int, Location]] = {}  # article key -> (index in result.articles, where)
    for i, (where, record) in enumerate(records):
        if isinstance(record, LoadError):
            result.failures.append(LoadFailure(where, record.reason))
            continue
        if not isinstance(record, dict):
            result.failures.append(LoadFailure(where, "record is not a JSON object"))
            continue
        def warn(message: str, where: Location = where) -> None:
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
                f"duplicate {kind} '{clean_field(value, 80)}' (also on {earlier.label or 'the record'}): "
                "this later record replaces the earlier one"
            )
            result.articles[index] = article
            seen[article.key] = (index, where)
        else:
            seen[article.key] = (len(result.articles), where)
            result.articles.append(article)
