"""Stop PIN guessing on the emergency line: count failures per caller and close PIN entry."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.models import PinFailure
from tickets.db import utcnow

log = logging.getLogger(__name__)


def recent_failures(
    session: Session, *, caller_key: str, minutes: int, now: datetime | None = None
) -> int:
    """Return how many wrong PINs `caller_key` entered in the last `minutes`."""
    since = (now or utcnow()) - timedelta(minutes=minutes)
    return session.scalar(
        select(func.count(PinFailure.id)).where(
            PinFailure.caller_key == caller_key, PinFailure.at >= since
        )
    )


def failures_in_call(session: Session, *, call_sid: str) -> int:
    """Return how many wrong PINs were entered during one call."""
    return session.scalar(select(func.count(PinFailure.id)).where(PinFailure.call_sid == call_sid))


def record_pin_failure(
    session: Session, *, caller_key: str, call_sid: str, now: datetime | None = None
) -> PinFailure:
    """Store a wrong PIN attempt (never the PIN itself) and log it for support."""
    failure = PinFailure(caller_key=caller_key, call_sid=call_sid, at=now or utcnow())
    session.add(failure)
    session.commit()
    log.warning("wrong PIN on the emergency line from %s (call %s)", caller_key, call_sid)
    return failure
