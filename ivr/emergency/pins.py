"""Stop PIN guessing on the emergency line: count wrong PINs per number and across all numbers.

Per number (withheld callers share one key): too many recent wrong PINs close PIN entry for that
number. Across all numbers: too many recent wrong PINs pause PIN checks line-wide for a while
(`tickets.pin_guard`), so spoofing many numbers buys no more guesses. Neither refuses a caller:
one whose PIN cannot be checked may go on unverified, and the engineer decides.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, distinct, func, select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.settings import EmergencyLine
from ivr.emergency.triage import is_locked_out
from ivr.models import PinFailure
from tickets import pin_guard

log = logging.getLogger(__name__)

# Why a PIN cannot be checked now.
LOCKED = "locked"  # too many recent wrong PINs from this number (or from withheld numbers)
PAUSED = "paused"  # too many recent wrong PINs from all numbers: PIN checks are paused
UNCOUNTED = "uncounted"  # the attempt could not be counted, so it is not checked either


def recent_failures(
    session: Session, *, caller_key: str | None = None, minutes: int, now: datetime | None = None
) -> int:
    """Return how many wrong PINs `caller_key` (None: all numbers) entered in the last `minutes`."""
    since = (now or utcnow()) - timedelta(minutes=minutes)
    query = select(func.count(PinFailure.id)).where(PinFailure.at >= since)
    if caller_key is not None:
        query = query.where(PinFailure.caller_key == caller_key)
    return session.scalar(query)


def numbers_with_failures(session: Session, *, minutes: int, now: datetime) -> int:
    """Return from how many numbers (withheld ones as one) wrong PINs came in the last `minutes`."""
    since = now - timedelta(minutes=minutes)
    return session.scalar(
        select(func.count(distinct(PinFailure.caller_key))).where(PinFailure.at >= since)
    )


def failures_in_call(session: Session, *, call_sid: str) -> int:
    """Return how many wrong PINs were entered during one call."""
    return session.scalar(select(func.count(PinFailure.id)).where(PinFailure.call_sid == call_sid))


def record_pin_failure(
    session: Session, *, caller_key: str, call_sid: str, now: datetime | None = None
) -> PinFailure:
    """Store a PIN attempt as wrong (never the PIN itself); a right one is forgotten again."""
    failure = PinFailure(caller_key=caller_key, call_sid=call_sid, at=now or utcnow())
    session.add(failure)
    session.flush()
    return failure


def forget_pin_failure(session: Session, *, failure: PinFailure) -> None:
    """Remove an attempt counted as wrong before its PIN turned out right."""
    session.execute(delete(PinFailure).where(PinFailure.id == failure.id))


def why_unchecked(
    session: Session,
    *,
    caller_key: str,
    limits: EmergencyLine,
    now: datetime,
    counted: int = 0,
) -> str | None:
    """Return why a PIN from `caller_key` cannot be checked now (PAUSED, LOCKED), or None.

    `counted` is 1 when the attempt being decided on is already stored as a failure: calls
    that check PINs at the same moment then see each other's attempts, and together they
    cannot get past either limit.
    """
    if pin_guard.active_pause(session, now=now) is not None:
        return PAUSED
    if pause_when_guessed(session, limits=limits, now=now, counted=counted):
        return PAUSED
    failures = recent_failures(
        session, caller_key=caller_key, minutes=limits.pin_lockout_minutes, now=now
    )
    if is_locked_out(failures - counted, limits.pin_lockout_failures):
        return LOCKED
    return None


def pause_when_guessed(
    session: Session, *, limits: EmergencyLine, now: datetime, counted: int = 0
) -> bool:
    """Pause PIN checks line-wide once all numbers' wrong PINs reach the limit; return if so."""
    failures = recent_failures(session, minutes=limits.pin_guard_minutes, now=now)
    if not is_locked_out(failures - counted, limits.pin_guard_failures):
        return False
    numbers = numbers_with_failures(session, minutes=limits.pin_guard_minutes, now=now)
    pause = pin_guard.pause_pin_checks(
        session,
        failures=failures,
        numbers=numbers,
        window_minutes=limits.pin_guard_minutes,
        minutes=limits.pin_pause_minutes,
        now=now,
    )
    if pause is not None:
        log.warning(
            "PIN checks paused on the emergency line for %d minutes: %s; "
            "callers whose number is not recognised go on unverified",
            limits.pin_pause_minutes,
            pin_guard.describe_pause(pause),
        )
    return True
