"""The chat's date filter: the two fields checked where the user typed them (a field error, not
a chat message), and the filter shown as chips by the input and named in a refusal it causes."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class DateFilter:
    """A checked date range: ``errors`` maps a field ("since", "until") to what is wrong with it."""

    since: date | None = None
    until: date | None = None
    errors: tuple[tuple[str, str], ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.since or self.until)

    def error(self, name: str) -> str | None:
        return dict(self.errors).get(name)

    def phrase(self) -> str:
        """The filter in words, for a sentence: "published from 2024-03-01 to 2024-03-31"."""
        if self.since and self.until:
            return f"published from {self.since} to {self.until}"
        if self.since:
            return f"published on or after {self.since}"
        if self.until:
            return f"published on or before {self.until}"
        return ""


def _parse(value: object, label: str) -> tuple[date | None, str | None]:
    text = str(value or "").strip()
    if not text:
        return None, None
    try:
        return date.fromisoformat(text[:10] if len(text) > 10 and text[10] in " T" else text), None
    except ValueError:
        return None, f"“{text}” is not a date: pick one in the calendar or type it as YYYY-MM-DD ({label})."


def check_dates(since: object, until: object) -> DateFilter:
    """The range the two fields give, or the errors to show next to them. A reversed range is an
    error on "until": it would silently match nothing."""
    start, since_error = _parse(since, "e.g. 2024-03-01")
    end, until_error = _parse(until, "e.g. 2024-03-31")
    errors = [(name, e) for name, e in (("since", since_error), ("until", until_error)) if e]
    if start and end and end < start:
        errors.append(("until", f"“Published until” ({end}) is before “Published from” ({start}): swap them or clear one."))
    return DateFilter(start, end, tuple(errors)) if not errors else DateFilter(errors=tuple(errors))


def chips_html(dates: DateFilter) -> str:
    """The active filter as chips above the question box; nothing when no filter is on."""
    chips = []
    if dates.since:
        chips.append(f"from {dates.since}")
    if dates.until:
        chips.append(f"until {dates.until}")
    return chip_list_html("Only articles published", chips, "Active date filter", "change it under “Filters and options”")


def chip_list_html(label: str, chips: list[str], name: str, hint: str = "") -> str:
    """A filter's chips (plain text, escaped here) after ``label``; nothing when there are none."""
    if not chips:
        return ""
    items = "".join(f'<li class="chip">{html.escape(c)}</li>' for c in chips)
    hint_html = f'<span class="chips-hint">{html.escape(hint)}</span>' if hint else ""
    return (f'<div class="filter-chips" role="status"><span class="chips-label">{html.escape(label)}</span>'
            f'<ul aria-label="{html.escape(name)}">{items}</ul>{hint_html}</div>')


def date_errors_html(dates: DateFilter) -> str:
    """What is wrong with the date fields, for the line under them (announced by screen readers)."""
    if not dates.errors:
        return ""
    items = "".join(f"<li>{html.escape(message)}</li>" for _, message in dates.errors)
    return f'<ul class="field-error" role="alert">{items}</ul>'
