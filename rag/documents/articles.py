"""The Article record and its normalisation (text clean-up, ids, content hashes, dates)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

from dateutil import parser as dateutil_parser

# C0/C1 controls (tab and newline are handled apart), lone surrogates (from JSON "\\ud800"
# escapes; they cannot even be encoded to UTF-8), byte-order marks and noncharacters.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff\ufdd0-\ufdef\ufffe\uffff]")
# Vertical tab, form feed, NEL and the Unicode line/paragraph separators break lines.
_LINE_BREAKS = re.compile("\r\n?|[\x0b\x0c\x85\u2028\u2029]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\b")
MAX_TITLE_CHARS = 300  # the title is embedded with every chunk: a runaway one would swamp them
MAX_FIELD_CHARS = 2000  # source, author, url, id
MAX_DATE_CHARS = 80  # longer strings are not dates, and dateparser is slow on them
EARLIEST_YEAR = 1600  # the first printed newspapers; earlier "published" dates are mistakes


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
    # The id of an article read back from an index (to add it again, e.g. undoing a removal):
    # its key is not stored, only the id made from it.
    indexed_id: str | None = None

    @property
    def id(self) -> str:
        """Stable id derived from ``key`` (an explicit id, the URL, or the file it came from)."""
        return self.indexed_id or article_id(self.key)

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
    text = _CONTROL.sub("", _LINE_BREAKS.sub("\n", text))
    text = unicodedata.normalize("NFC", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


# What must not reach a terminal as is: C0/C1 controls other than newline and tab (escape
# sequences can retitle the window, clear the screen, fake output), bidi controls (they reorder
# what is shown), and the lone surrogates Python uses for bytes of a name that is not UTF-8.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """``text`` with every control, bidi override and undecodable byte written as an escape
    (``\\x1b``): safe to print, and still says what the name was."""
    return _UNSAFE.sub(_escape, text)


def _scalar(value: object) -> str | None:
    if isinstance(value, (str, int, float, date)) and not isinstance(value, bool):
        return str(value)
    return None


def clean_field(value: object, max_chars: int = MAX_FIELD_CHARS) -> str | None:
    """A short metadata value as a single clean line, or None when empty.

    Only text, numbers and flat lists of them count: a nested structure (YAML aliases can make
    one enormous) is not a title or an author. Values over ``max_chars`` are cut with "…".
    """
    if isinstance(value, (list, tuple)):
        text = ", ".join(v for v in (_scalar(item) for item in value[:50]) if v)
    else:
        text = _scalar(value) or ""
    text = " ".join(_CONTROL.sub("", _LINE_BREAKS.sub(" ", text)).split())
    if len(text) > max_chars:
        text = text[: max_chars - 1].rsplit(" ", 1)[0].rstrip() + "…"
    return unicodedata.normalize("NFC", text) or None


def parse_date(value: object) -> date | None:
    """A published date from a string, datetime or epoch number; None when it cannot be read.

    Invalid dates are dropped rather than failing the whole article: the text is still useful.
    """
    return read_date(value)[0]


def read_date(value: object, today: date | None = None) -> tuple[date | None, str | None]:
    """A published date, and when a value was given but cannot be used, why not (for a warning).

    Refused: impossible dates (month 13), strings without a year, dates before 1600 or more
    than a year after ``today``, and values that are not text, a date or an epoch number.
    """
    if value is None or value == "" or value == []:
        return None, None
    parsed, problem = _read_date(value)
    if parsed is None:
        return None, problem
    today = today or date.today()
    if parsed.year < EARLIEST_YEAR:
        return None, f"{_shown(value)} is before {EARLIEST_YEAR}"
    if parsed > today + timedelta(days=366):
        return None, f"{_shown(value)} is more than a year in the future"
    return parsed, None


def _shown(value: object) -> str:
    """A value quoted for a message: clean, one line, short."""
    if isinstance(value, str):
        return "'" + (clean_field(value, 60) or "") + "'"
    return clean_field(repr(value), 60) or ""


def _read_date(value: object) -> tuple[date | None, str | None]:
    if isinstance(value, datetime):
        return value.date(), None
    if isinstance(value, date):
        return value, None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None, f"{_shown(value)} is not a date (expected text or an epoch number)"
    if isinstance(value, (int, float)):
        seconds = float(value)
        if abs(seconds) > 1e11:  # epoch milliseconds, as JavaScript writes them
            seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc).date(), None
        except (OverflowError, OSError, ValueError):
            return None, f"{_shown(value)} is not a valid epoch time"
    text = value.strip()
    if not text:
        return None, None
    if len(text) > MAX_DATE_CHARS:
        return None, f"{_shown(value)} is too long to be a date ({len(text):,} characters)"
    if m := _ISO_DATE.match(text):
        # dateutil would read "2023-13-01" as 13 January: an ISO date is year-month-day or nothing.
        try:
            date(*(int(g) for g in m.groups()))
        except ValueError as e:
            return None, f"{_shown(value)} is not a valid date ({e})"
    try:
        # A default year of 1 shows when the string had no year ("5" would otherwise be the
        # 5th of this month).
        parsed = dateutil_parser.parse(text, default=datetime(1, 1, 1))
        if parsed.year == 1:
            return None, f"{_shown(value)} has no year"
        return parsed.date(), None
    except (ValueError, OverflowError, TypeError):
        pass
    import dateparser  # slower, but reads "19 Oct. 2023", "vor 2 Tagen" and friends

    try:
        parsed = dateparser.parse(text, settings={"PREFER_DAY_OF_MONTH": "first"})
    except (ValueError, OverflowError, TypeError, RecursionError):
        parsed = None
    if parsed is None:
        return None, f"{_shown(value)} is not a date that can be read"
    return parsed.date(), None
