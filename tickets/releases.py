"""Release weeks: the ISO week a planned ticket is expected to ship in.

Development runs in two-month cycles that end with each odd month (January, March, May, July,
September, November). A planned ticket ships at the end of a cycle: we suggest the ISO week of
the cycle's last working day, or of the next cycle's when the current one ends too soon to fit.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

import holidays

# A cycle ending within this many days is too close to fit new work: suggest the next one.
MIN_LEAD_DAYS = 14
WEEK_PATTERN = re.compile(r"(\d{4})-?W(\d{1,2})")
FIRST_YEAR = 2000
LAST_YEAR = 2199


class ReleaseWeekError(ValueError):
    """A release week is not a real ISO week written as YYYY-Www."""


def weeks_in_year(year: int) -> int:
    """Return how many ISO weeks `year` has (52, or 53 in a long year)."""
    return date(year, 12, 28).isocalendar().week


def format_week(year: int, week: int) -> str:
    """Return an ISO week written as YYYY-Www."""
    return f"{year:04d}-W{week:02d}"


def parse_week(text: str) -> str:
    """Return the release week in `text` as YYYY-Www, or raise ReleaseWeekError."""
    if not isinstance(text, str):
        raise ReleaseWeekError("the release week must be text written as YYYY-Www")
    cleaned = text.strip().upper().replace(" ", "")
    match = WEEK_PATTERN.fullmatch(cleaned)
    if not match:
        raise ReleaseWeekError(
            f"{text[:20]!r} is not a week written as YYYY-Www (for example 2025-W22)"
        )
    year, week = int(match.group(1)), int(match.group(2))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ReleaseWeekError(f"{year} is not a plausible release year")
    last = weeks_in_year(year)
    if not 1 <= week <= last:
        raise ReleaseWeekError(f"{year} has ISO weeks 1 to {last}; week {week} does not exist")
    return format_week(year, week)


def cycle_end_month(day: date) -> tuple[int, int]:
    """Return (year, month) of the odd month that ends the cycle `day` falls in."""
    if day.month % 2 == 1:
        return day.year, day.month
    if day.month == 12:
        return day.year + 1, 1
    return day.year, day.month + 1


def last_working_day(year: int, month: int, country: str = "NL") -> date:
    """Return the last weekday of a month that is not a public holiday."""
    public = holidays.country_holidays(country, years=year)
    day = date(year, month, calendar.monthrange(year, month)[1])
    while day.weekday() >= 5 or day in public:
        day -= timedelta(days=1)
    return day


def cycle_end(day: date, country: str = "NL") -> date:
    """Return the last working day of the development cycle `day` falls in."""
    return last_working_day(*cycle_end_month(day), country=country)


def suggest_release_week(today: date, country: str = "NL") -> str:
    """Suggest the release week for work planned on `today`."""
    end = cycle_end(today, country)
    if (end - today).days < MIN_LEAD_DAYS:
        end = cycle_end(end + timedelta(days=7), country)
    iso = end.isocalendar()
    return format_week(iso.year, iso.week)
