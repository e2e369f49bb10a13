"""The period a statistics page shows: whole local days, at most a year, by default 30."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_DAYS = 30
MAX_DAYS = 366


class PeriodError(ValueError):
    """The period asked for cannot be shown; the message says why."""


@dataclass(frozen=True)
class Period:
    """The local calendar days `first` to `last` (both included) in the desk's time zone."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        """Return the UTC moment the first day begins."""
        return _midnight(self.first, self.zone)

    @property
    def end(self) -> datetime:
        """Return the UTC moment after the last day ends (excluded)."""
        return _midnight(self.last + timedelta(days=1), self.zone)

    def days(self) -> list[date]:
        """Return every day of the period, in order."""
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def choose_period(first: date | None, last: date | None, *, today: date, zone: ZoneInfo) -> Period:
    """Return the period asked for: until today and 30 days long unless told otherwise.

    Raises PeriodError when the start is after the end or the span is over MAX_DAYS days.
    """
    last = last or (max(today, first) if first else today)
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise PeriodError("The period starts after it ends: choose a start on or before the end.")
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodError(f"Choose a period of at most {MAX_DAYS} days.")
    return Period(first, last, zone)
