"""The Article record and its normalisation (text clean-up, ids, content hashes, dates)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone

from dateutil import parser as dateutil_parser

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Article:
    """One news article, normalised. ``key`` says what makes two versions "the same article"."""

    title: str
    text: str
    key: str
    source: str | None = None
    url: str | None = None
    author: str | None = None
    published: date | None = None
    origin: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable id derived from ``key`` (an explicit id, the URL, or the file it came from)."""
        return article_id(self.key)

    @property
    def content_hash(self) -> str:
        """Hash of what gets indexed; identical content from anywhere is a duplicate."""
        h = hashlib.sha256()
        h.update(self.title.strip().lower().encode("utf-8"))
        h.update(b"\0")
        h.update(" ".join(self.text.split()).encode("utf-8"))
        return h.hexdigest()

    def with_metadata(self, **changes: object) -> Article:
        return replace(self, **changes)  # type: ignore[arg-type]


def article_id(key: str) -> str:
    """The index id of the article whose identity is ``key`` (e.g. ``"id:" + a JSON record's id``)."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def clean_text(text: str) -> str:
    """Unicode NFC, no control characters, tidy spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_field(value: object) -> str | None:
    """A short metadata value as a single clean line, or None when empty."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value if v)
    text = " ".join(_CONTROL.sub("", str(value)).split())
    return text or None


def parse_date(value: object) -> date | None:
    """A published date from a string, datetime or epoch number; None when it cannot be read.

    Invalid dates are dropped rather than failing the whole article: the text is still useful.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc).date()
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()
    if not text:
        return None
    try:
        return dateutil_parser.parse(text).date()
    except (ValueError, OverflowError, TypeError):
        pass
    import dateparser  # slower, but reads "19 Oct. 2023", "vor 2 Tagen" and friends

    parsed = dateparser.parse(text, settings={"PREFER_DAY_OF_MONTH": "first"})
    return parsed.date() if parsed else None
