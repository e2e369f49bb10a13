"""Local days and hours of stored UTC moments, worked out in SQL alike on SQLite and PostgreSQL.

Neither database is asked about time zones (SQLite knows none). Python works out the desk's
UTC offset over the period instead (one piece per daylight-saving change, so two or three
pieces a year), and SQL adds the offset that applies to each moment to its seconds since
1970: the result counts wall-clock seconds in the desk's zone, and dividing by 3,600 numbers
its local hour. A local hour number maps back to a local date, hour and weekday in Python.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, case, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

LOCAL_EPOCH = datetime(1970, 1, 1)


class epoch_seconds(FunctionElement):  # noqa: N801 - named like the SQL functions it stands for
    """Whole seconds since 1970-01-01 UTC of a stored moment (fractions cut off)."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds)
def _epoch_seconds_sqlite(element, compiler, **kw) -> str:
    # SQLite keeps UTC moments as text; strftime reads them as UTC.
    return f"CAST(STRFTIME('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_seconds_postgresql(element, compiler, **kw) -> str:
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


def _offset_seconds(zone: ZoneInfo, moment: datetime) -> int:
    return int(moment.astimezone(zone).utcoffset().total_seconds())


def _next_change(zone: ZoneInfo, after: datetime, before: datetime) -> datetime:
    """Return the first whole second after `after` with another offset, knowing `before` has."""
    offset = _offset_seconds(zone, after)
    low, high = int(after.timestamp()), int(before.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_seconds(zone, datetime.fromtimestamp(middle, UTC)) == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def offset_pieces(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """Return (from, offset in seconds) for each stretch of one UTC offset within [start, end).

    Checked day by day, so it assumes no zone changes its offset twice within a day.
    """
    pieces = [(start, _offset_seconds(zone, start))]
    moment = start
    while moment < end:
        following = min(moment + timedelta(days=1), end)
        if _offset_seconds(zone, following) != pieces[-1][1]:
            change = _next_change(zone, moment, following)
            pieces.append((change, _offset_seconds(zone, change)))
        moment = following
    return pieces


def local_hour_number(column, zone: ZoneInfo, start: datetime, end: datetime) -> ColumnElement:
    """Return SQL numbering the local wall-clock hour of `column`, for moments in [start, end)."""
    pieces = offset_pieces(zone, start, end)
    local_offset: ColumnElement = literal(pieces[-1][1], BigInteger)
    if len(pieces) > 1:
        local_offset = case(
            *[
                (column < until, literal(offset, BigInteger))
                for (_, offset), (until, _) in zip(pieces, pieces[1:], strict=False)
            ],
            else_=literal(pieces[-1][1], BigInteger),
        )
    # Moments after 1970 only: integer division then rounds down on both databases.
    return (epoch_seconds(column) + local_offset) // literal(3600, BigInteger)


def local_hour(number: int) -> datetime:
    """Return the naive local date and hour a local hour number stands for."""
    return LOCAL_EPOCH + timedelta(hours=number)
