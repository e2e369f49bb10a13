"""Decide whether a line or team is open, and when it opens next."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

from core.settings_types import WEEKDAYS, Schedule


@functools.lru_cache(maxsize=8)
def _public_holidays(country: str) -> holidays.HolidayBase:
    """Return the (lazily growing) public-holiday calendar of a country."""
    return holidays.country_holidays(country)


def is_working_day(schedule: Schedule, day: date, *, country: str) -> bool:
    """Return whether `day` is a working day of the schedule."""
    if WEEKDAYS[day.weekday()] not in schedule.days:
        return False
    if day in schedule.closed_dates:
        return False
    return not (schedule.public_holidays_closed and day in _public_holidays(country))


def is_open(
    schedule: Schedule,
    when: datetime,
    *,
    zone: ZoneInfo,
    country: str,
    override: str = "auto",
) -> bool:
    """Return whether the schedule is open at the aware moment `when`, honouring an override."""
    if override == "open":
        return True
    if override == "closed":
        return False
    local = when.astimezone(zone)
    if not is_working_day(schedule, local.date(), country=country):
        return False
    return schedule.opens <= local.time().replace(tzinfo=None) < schedule.closes


def next_opening(
    schedule: Schedule, when: datetime, *, zone: ZoneInfo, country: str
) -> datetime | None:
    """Return the next local moment after `when` at which the schedule opens (None if never)."""
    local = when.astimezone(zone)
    for offset in range(0, 400):
        day = local.date() + timedelta(days=offset)
        if not is_working_day(schedule, day, country=country):
            continue
        opening = datetime.combine(day, schedule.opens, tzinfo=zone)
        if opening > local:
            return opening
    return None


def describe_moment(moment: datetime | None, now: datetime, speak) -> str:
    """Say when `moment` is relative to `now`, with the speaker's `when_*` prompts."""
    if moment is None:
        return speak.text("when_unknown")
    local_now = now.astimezone(moment.tzinfo)
    clock = f"{moment.hour:02d}:{moment.minute:02d}"
    days_ahead = (moment.date() - local_now.date()).days
    if days_ahead == 0:
        return speak.text("when_today", time=clock)
    if days_ahead == 1:
        return speak.text("when_tomorrow", time=clock)
    weekdays = speak.text("weekday_names").split(",")
    months = speak.text("month_names").split(",")
    return speak.text(
        "when_date",
        weekday=weekdays[moment.weekday()].strip(),
        day=moment.day,
        month=months[moment.month - 1].strip(),
        time=clock,
    )


def describe_hours(schedule: Schedule, speak) -> str:
    """Say the schedule's opening hours, e.g. 'op werkdagen van 08:30 tot 17:30'."""
    return speak.text(
        "hours_summary",
        opens=f"{schedule.opens.hour:02d}:{schedule.opens.minute:02d}",
        closes=f"{schedule.closes.hour:02d}:{schedule.closes.minute:02d}",
    )


def describe_since(moment: datetime, now: datetime, speak, *, zone: ZoneInfo) -> str:
    """Say a past local moment as a person would: '10 uur 2', 'gisteren 16 uur 30'."""
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    values = {
        "hour": local.hour,
        "minute": local.minute,
        "hour12": local.hour % 12 or 12,
        "ampm": "a.m." if local.hour < 12 else "p.m.",
    }
    clock = speak.text("clock_hour" if local.minute == 0 else "clock_time", **values)
    days_ago = (today - local.date()).days
    if days_ago <= 0:
        return clock
    if days_ago == 1:
        return speak.text("since_yesterday", time=clock)
    weekdays = speak.text("weekday_names").split(",")
    months = speak.text("month_names").split(",")
    return speak.text(
        "since_date",
        weekday=weekdays[local.weekday()].strip(),
        day=local.day,
        month=months[local.month - 1].strip(),
        time=clock,
    )
