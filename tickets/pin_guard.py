"""The line-wide pause of PIN checks on the emergency line, as the call flow and support see it.

The call flow counts wrong PINs; when all numbers together enter too many, it pauses PIN checks
here for a while, and callers whose number is not recognised go on unverified. Support sees the
pause on every dashboard page while it lasts, and on the audit trail. The pause is one row
(id 1), so calls that trip it at the same moment pause it once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import insert_or_get
from tickets.audit import note_change
from tickets.models import PinGuard

GUARD_ROW = 1
# Who the audit trail names for a pause the line started by itself.
LINE_ACTOR = "emergency line"

# Built once: every PIN attempt asks for it.
_ACTIVE_PAUSE = (
    select(PinGuard)
    .where(PinGuard.id == GUARD_ROW, PinGuard.paused_until > bindparam("now"))
    .execution_options(populate_existing=True)
)


def active_pause(session: Session, *, now: datetime | None = None) -> PinGuard | None:
    """Return the pause of PIN checks in force at `now`, if any."""
    return session.scalar(_ACTIVE_PAUSE, {"now": now or utcnow()})


def describe_pause(pause: PinGuard) -> str:
    """Return what tripped a pause, for the audit trail and the dashboard."""
    return (
        f"{pause.failures} wrong PINs within {pause.window_minutes} minutes, "
        f"from {pause.numbers} number{'s' if pause.numbers != 1 else ''}"
    )


def pause_pin_checks(
    session: Session,
    *,
    failures: int,
    numbers: int,
    window_minutes: int,
    minutes: int,
    now: datetime | None = None,
) -> PinGuard | None:
    """Pause PIN checks for `minutes` unless a pause is in force; return a new pause, else None.

    The pause and its row on the audit trail are written together, in the caller's transaction.
    """
    now = now or utcnow()
    insert_or_get(
        session,
        find=lambda: session.get(PinGuard, GUARD_ROW),
        add=lambda: _add_guard(session),
    )
    # One conditional UPDATE: of calls tripping it together, exactly one finds it unpaused (a
    # row lock on PostgreSQL, the write lock on SQLite).
    result = session.execute(
        update(PinGuard)
        .where(
            PinGuard.id == GUARD_ROW,
            or_(PinGuard.paused_until.is_(None), PinGuard.paused_until <= now),
        )
        .values(
            paused_at=now,
            paused_until=now + timedelta(minutes=minutes),
            failures=failures,
            numbers=numbers,
            window_minutes=window_minutes,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    pause = active_pause(session, now=now)
    detail = f"{describe_pause(pause)}; PIN checks paused for {minutes} minutes"
    note_change(session, actor=LINE_ACTOR, action="pin_checks_paused", detail=detail)
    session.flush()
    return pause


def _add_guard(session: Session) -> PinGuard:
    guard = PinGuard(id=GUARD_ROW)
    session.add(guard)
    return guard
