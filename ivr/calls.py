"""Keep the call log: one row per inbound call, its trail of choices and how it ended."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ivr.lines import caller_id
from ivr.models import CALL_FINAL_STATUSES, CallLog
from tickets.db import utcnow

MAX_TRAIL = 4000


def _clip(value: str | None, limit: int = 64) -> str | None:
    """Cut an untrusted value to the column's size."""
    return None if value is None else value[:limit]


# Built once: nearly every webhook looks its call up, so skip building the query each time.
_CALL_BY_SID = select(CallLog).where(CallLog.sid == bindparam("sid"))


def get_call(session: Session, sid: str) -> CallLog | None:
    """Return the call log row of a CallSid, if any."""
    return session.scalar(_CALL_BY_SID, {"sid": sid})


def record_call_start(
    session: Session,
    *,
    sid: str,
    line: str,
    from_number: str | None,
    to_number: str | None,
    language: str,
) -> CallLog:
    """Create the call's log row, or return it when Twilio retried the first webhook."""
    call = get_call(session, sid)
    if call is not None:
        return call
    call = CallLog(
        sid=_clip(sid),
        line=line,
        from_number=_clip(from_number),
        caller_id=caller_id(from_number),
        to_number=_clip(to_number),
        language=language,
        status="in-progress",
    )
    session.add(call)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        call = get_call(session, sid)
    return call


def note_step(session: Session, *, sid: str, step: str, language: str | None = None) -> None:
    """Append a step (`menu:1`, `dial:finance:no-answer`) to the call's trail."""
    call = get_call(session, sid)
    if call is None:
        return
    trail = f"{call.choices} {step}".strip()
    call.choices = trail[-MAX_TRAIL:]
    if language:
        call.language = language
    session.commit()


def _as_int(value: str | None, *, limit: int = 10**7) -> int | None:
    """Parse a non-negative integer Twilio sent; None when odd."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= limit else None


def record_call_status(
    session: Session,
    *,
    sid: str,
    status: str,
    line: str,
    from_number: str | None = None,
    to_number: str | None = None,
    duration: str | None = None,
    sequence: str | None = None,
) -> CallLog:
    """Record a status callback; a final status is never overwritten by a later one."""
    call = get_call(session, sid)
    if call is None:
        call = record_call_start(
            session,
            sid=sid,
            line=line,
            from_number=from_number,
            to_number=to_number,
            language="nl",
        )
    if call.status in CALL_FINAL_STATUSES:
        return call
    status = (status or "").strip().lower()[:20]
    number = _as_int(sequence)
    if number is not None and call.last_sequence is not None and number < call.last_sequence:
        return call
    if number is not None:
        call.last_sequence = number
    if status:
        call.status = status
    if status in CALL_FINAL_STATUSES:
        call.ended_at = utcnow()
        call.duration = _as_int(duration)
    session.commit()
    return call


def parse_twilio_timestamp(value: str | None) -> datetime | None:
    """Parse Twilio's RFC 2822 Timestamp parameter; None when absent or odd."""
    from email.utils import parsedate_to_datetime

    try:
        parsed = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
