"""Medians and 90th percentiles of durations, computed alike on SQLite and PostgreSQL.

SQLite has no `percentile_cont`. Both databases count the values, then each percentile reads
the two values around its position from the sorted values (`ORDER BY ... LIMIT 2 OFFSET k`),
and Python interpolates between them: the same definition as PostgreSQL's `percentile_cont`
(and a spreadsheet's PERCENTILE.INC). Only two values per percentile leave the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

MEDIAN = 0.5
P90 = 0.9


@dataclass(frozen=True)
class Spread:
    """How many durations there were and their median and 90th percentile, in seconds."""

    count: int
    median: float | None
    p90: float | None


def percentile_position(count: int, fraction: float) -> tuple[int, float]:
    """Return the 0-based rank below the percentile and how far towards the next rank it lies."""
    position = (count - 1) * fraction
    below = math.floor(position)
    return below, position - below


def measure_spread(session: Session, duration: ColumnElement, *where) -> Spread:
    """Return the count, median and 90th percentile of `duration` over the rows `where` picks."""
    count = session.scalar(select(func.count()).where(*where)) or 0
    if count == 0:
        return Spread(0, None, None)
    values = {}
    for fraction in (MEDIAN, P90):
        below, weight = percentile_position(count, fraction)
        pair = session.scalars(
            select(duration).where(*where).order_by(duration).offset(below).limit(2)
        ).all()
        low = float(pair[0])
        high = float(pair[1]) if len(pair) > 1 else low
        values[fraction] = round(low + (high - low) * weight, 1)
    return Spread(count, values[MEDIAN], values[P90])
