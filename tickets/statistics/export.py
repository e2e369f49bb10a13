"""The statistics of a period as one tidy CSV table: figure, key, series, value."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from tickets.statistics.figures import OUTCOME_GROUPS, WEEKDAYS, Statistics
from tickets.statistics.percentiles import Spread

HEADER = ("figure", "key", "series", "value")
NO_ORGANISATION = "(no organisation)"
# A cell starting with one of these is a formula to a spreadsheet: names come from outside.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Row = tuple[str, str, str, object]


def _spread_rows(figure: str, spread: Spread) -> Iterator[Row]:
    yield figure, "", "count", spread.count
    yield figure, "", "median", "" if spread.median is None else spread.median
    yield figure, "", "p90", "" if spread.p90 is None else spread.p90


def _call_rows(stats: Statistics) -> Iterator[Row]:
    calls = stats.calls
    for group in OUTCOME_GROUPS:
        yield "calls", "", group, calls.totals[group]
    yield "calls", "", "all", calls.count
    rate = calls.answer_rate
    yield "answer_rate", "", "answered/ended", "" if rate is None else round(rate, 4)
    for day, counts in sorted(calls.per_day.items()):
        for group in OUTCOME_GROUPS:
            yield "calls_per_day", day.isoformat(), group, counts[group]
    for weekday, hours in zip(WEEKDAYS, calls.heat, strict=True):
        for hour, count in enumerate(hours):
            yield "calls_by_weekday_hour", weekday, f"{hour:02d}", count


def statistics_rows(stats: Statistics) -> Iterator[Row]:
    """Yield every figure of the page as (figure, key, series, value)."""
    yield "period", "from", "", stats.period.first.isoformat()
    yield "period", "to", "", stats.period.last.isoformat()
    yield from _call_rows(stats)
    yield from _spread_rows("time_to_accept_seconds", stats.time_to_accept)
    yield "urgent_tickets", "", "all", stats.urgent_tickets
    yield from _spread_rows("time_to_acknowledge_seconds", stats.time_to_acknowledge)
    for organisation in stats.organisations:
        name = organisation.name or NO_ORGANISATION
        yield "organisation", name, "tickets", organisation.tickets
        yield "organisation", name, "calls", organisation.calls
        yield "organisation", name, "answered", organisation.answered
    for engineer in stats.engineers:
        yield "engineer", engineer.name, "in_hours", engineer.in_hours
        yield "engineer", engineer.name, "out_of_hours", engineer.out_of_hours
    for label, calls in stats.office_choices:
        yield "office_menu", label, "calls", calls
    yield from _incident_rows(stats)


def _incident_rows(stats: Statistics) -> Iterator[Row]:
    incidents = stats.incidents
    if incidents is None:
        return
    yield "incidents", "", "all", incidents.count
    yield from _spread_rows("incident_time_to_acknowledge_seconds", incidents.time_to_acknowledge)
    for row in incidents.rows:
        key = str(row.number)
        yield "incident", key, "organisations", row.organisations
        yield "incident", key, "tickets", row.tickets
        yield "incident", key, "calls", row.calls


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def statistics_csv(stats: Statistics) -> str:
    """Return the figures as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    for row in statistics_rows(stats):
        writer.writerow([_cell(value) for value in row])
    return buffer.getvalue()
