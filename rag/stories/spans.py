"""The period a briefing covers: a date (YYYY-MM-DD) or a span back from its end ("7d", "2w")."""

from __future__ import annotations

import re
from datetime import date, timedelta

from rag.errors import RagError

DEFAULT_DAYS = 7
_SPAN = re.compile(r"^\s*(\d{1,4})\s*([dw])\s*$", re.I)


def _day(value: date | str | None, name: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise RagError(f"{name}={value!r} is not a date; use YYYY-MM-DD" + (" or a span like 7d or 2w" if name == "since" else "")) from None


def period(since: date | str | None, until: date | str | None, today: date | None = None) -> tuple[date, date]:
    """(first, last) day, inclusive. ``until`` defaults to ``today`` (default: the real today);
    ``since`` is a date, or "Nd" / "Nw" for the N days / weeks ending at ``until`` (default 7d)."""
    end = _day(until, "until") or today or date.today()
    if since is None:
        since = f"{DEFAULT_DAYS}d"
    if isinstance(since, str) and (m := _SPAN.match(since)):
        days = int(m.group(1)) * (7 if m.group(2).lower() == "w" else 1)
        if days < 1:
            raise RagError(f"since={since!r} is an empty span; use at least 1d")
        return end - timedelta(days=days - 1), end
    start = _day(since, "since")
    assert start is not None
    if start > end:
        raise RagError(f"since ({start}) is after until ({end})")
    return start, end
