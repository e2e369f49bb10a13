"""Which engineers are on one of the line's calls now: the line rings them for no other.

An engineer is busy from the moment they accept a call (a caller's, or a call-back) until its
end is in (Twilio's final status callback). A status callback that never came must not keep
someone busy for good: a call accepted longer ago than `stale_after` counts as ended.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.models import TicketCall


def busy_numbers(
    session: Session, *, now: datetime, stale_after: timedelta, except_sid: str | None = None
) -> frozenset[str]:
    """Return the phones (E.164) of engineers on a call now, leaving out call `except_sid`."""
    statement = select(TicketCall.answered_by_number).where(
        TicketCall.answered_by_number.is_not(None),
        TicketCall.ended_at.is_(None),
        TicketCall.answered_at > now - stale_after,
    )
    if except_sid is not None:
        statement = statement.where(TicketCall.sid != except_sid)
    return frozenset(session.scalars(statement.distinct()))
