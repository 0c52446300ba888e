"""Plain text and Markdown: wire-style ``.txt`` (optional title, ``By`` byline, ``CITY (AGENCY) -``
dateline) and ``.md`` (optional YAML front matter, ``# Title``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rag.documents.articles import MAX_TITLE_CHARS, Article, clean_field, clean_text
from rag.errors import LoadError
from rag.ingest.formats.reading import _DATELINE, Warn, _first_sentence_title, _ignore
from rag.ingest.formats.records import _article_from_record

_BYLINE = re.compile(r"^by\s+(.{2,80})$", re.IGNORECASE)
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# Bounded span: an unbounded ".+?" rescans the rest of the line for every unclosed "*" (quadratic).
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)([^\n]{1,300}?)(?<=\S)\1")
_MD_HEADING = re.compile(r"^#{1,6}\s+", re.MULTILINE)


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
