"""Dates in questions: "yesterday", "last week", "on Thursday", "in October 2023" resolved against
a reference date (the question's date, else today) into a published-date range.

The range logic (what "last week" spans) is here; reading the date words themselves, in any
format or language dateparser knows, is dateparser's job.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m} | {
    m.lower(): i for i, m in enumerate(calendar.month_abbr) if m
}
_WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
_MONTH_RE = "|".join(sorted((m for m in _MONTHS if len(m) > 3 or m == "may"), key=len, reverse=True))
_WEEKDAY_RE = "|".join(_WEEKDAYS)
_COUNTS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split()) if i}
_COUNTS["a"] = 1
# News reports an event a day or two after it happens; ranges are widened by this much.
REPORTING_LAG = timedelta(days=2)


@dataclass(frozen=True)
class DateRange:
    since: date
    until: date
    phrase: str  # the words in the question that gave the range

    def widened(self) -> DateRange:
        """The range of publication dates that can report on this range of event dates."""
        return DateRange(self.since, self.until + REPORTING_LAG, self.phrase)


def _month_range(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _parse_day(text: str, today: date) -> date | None:
    import dateparser

    parsed = dateparser.parse(
        text,
        settings={"RELATIVE_BASE": datetime.combine(today, datetime.min.time()), "PREFER_DATES_FROM": "past", "STRICT_PARSING": True},
    )
    return parsed.date() if parsed else None


def resolve_dates(question: str, today: date) -> DateRange | None:
    """The date range a question refers to, or None when it names no time."""
    q = question.lower()
    if m := re.search(r"\b(yesterday|today|tonight|this morning)\b", q):
        day = today - timedelta(days=1) if m.group(1) == "yesterday" else today
        return DateRange(day, day, m.group(0))
    if m := re.search(r"\b(last|this|past) (week|month|year)\b", q):
        which, unit = m.groups()
        if unit == "week":
            monday = today - timedelta(days=today.weekday())
            if which == "this":
                return DateRange(monday, today, m.group(0))
            if which == "past":
                return DateRange(today - timedelta(days=7), today, m.group(0))
            return DateRange(monday - timedelta(days=7), monday - timedelta(days=1), m.group(0))
        if unit == "month":
            if which == "past":
                return DateRange(today - timedelta(days=30), today, m.group(0))
            year, month = (today.year, today.month) if which == "this" else (
                (today.year - 1, 12) if today.month == 1 else (today.year, today.month - 1)
            )
            since, until = _month_range(year, month)
            return DateRange(since, min(until, today), m.group(0))
        year = today.year if which == "this" else today.year - 1
        return DateRange(date(year, 1, 1), min(date(year, 12, 31), today), m.group(0))
    if m := re.search(rf"\b(\d{{1,3}}|{'|'.join(_COUNTS)}) (day|week|month)s? ago\b", q):
        n, unit = int(_COUNTS.get(m.group(1), m.group(1))), m.group(2)
        days = {"day": 1, "week": 7, "month": 30}[unit] * n
        center = today - timedelta(days=days)
        slack = {"day": 0, "week": 3, "month": 15}[unit]
        return DateRange(center - timedelta(days=slack), center + timedelta(days=slack), m.group(0))
    # An explicit day: "on 19 October 2023", "October 19, 2023", "2023-10-19".
    explicit = re.search(
        rf"\b(\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}(?:st|nd|rd|th)? (?:{_MONTH_RE})\.?,? \d{{4}}|(?:{_MONTH_RE})\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}})\b",
        q,
    )
    if explicit and (day := _parse_day(explicit.group(1), today)):
        return DateRange(day, day, explicit.group(0))
    if m := re.search(rf"\bon (?:last )?({_WEEKDAY_RE})\b", q):
        back = (today.weekday() - _WEEKDAYS[m.group(1)]) % 7
        day = today - timedelta(days=back)
        return DateRange(day, day, m.group(0))
    if m := re.search(rf"\b(?:in|during|since) ({_MONTH_RE})\.?(?: (\d{{4}}))?\b", q):
        month = _MONTHS[m.group(1)]
        if m.group(2):
            year = int(m.group(2))
        else:  # the latest such month that is not in the future
            year = today.year if month <= today.month else today.year - 1
        since, until = _month_range(year, month)
        return DateRange(since, until, m.group(0))
    if m := re.search(r"\bin (19\d\d|20\d\d)\b", q):
        year = int(m.group(1))
        return DateRange(date(year, 1, 1), date(year, 12, 31), m.group(0))
    return None
