"""Medians and 90th percentiles of durations, computed alike on SQLite and PostgreSQL.

SQLite has no `percentile_cont`. One query per duration numbers the sorted values with
`row_number()` and counts them with `count(*) OVER ()`, and returns only the (at most four)
values on either side of each percentile's position; Python interpolates between them. That
is the definition of PostgreSQL's `percentile_cont` (and of a spreadsheet's PERCENTILE.INC):
position (n - 1) * p in the sorted values, counted from 0. The positions are worked out in
integers on both sides, so they agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

MEDIAN = Fraction(1, 2)
P90 = Fraction(9, 10)


@dataclass(frozen=True)
class Spread:
    """How many durations there were and their median and 90th percentile, in seconds."""

    count: int
    median: float | None
    p90: float | None


def percentile_position(count: int, fraction: Fraction) -> tuple[int, Fraction]:
    """Return the 0-based rank at or below the percentile and how far on towards the next."""
    position = (count - 1) * fraction
    below = position.numerator // position.denominator
    return below, position - below


def measure_spread(session: Session, duration: ColumnElement, *where) -> Spread:
    """Return the count, median and 90th percentile of `duration` over the rows `where` picks."""
    ranked = (
        select(
            duration.label("value"),
            (func.row_number().over(order_by=duration) - 1).label("rank"),
            func.count().over().label("total"),
        )
        .where(*where)
        .subquery()
    )
    wanted = []
    for fraction in (MEDIAN, P90):
        below = (ranked.c.total - 1) * fraction.numerator // fraction.denominator
        wanted += [ranked.c.rank == below, ranked.c.rank == below + 1]
    rows = session.execute(select(ranked).where(or_(*wanted))).all()
    if not rows:
        return Spread(0, None, None)
    count = int(rows[0].total)
    values = {int(row.rank): float(row.value) for row in rows}
    figures = []
    for fraction in (MEDIAN, P90):
        below, weight = percentile_position(count, fraction)
        low = values[below]
        high = values.get(below + 1, low)
        figures.append(round(low + (high - low) * float(weight), 1))
    return Spread(count, *figures)
