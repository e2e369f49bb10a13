"""Settle how an emergency call ended: its outcome only ever moves forward, its end once.

Twilio's callbacks can arrive late, twice or out of order, so an outcome is ranked
(`OUTCOME_RANK`) and never moves back; the call's end is settled once, from the events its
timeline holds, together with what it causes (paging, the caller's text, helpdesk events).
Everything here flushes; the webhook that owns the step commits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utcnow
from tickets.helpdesk import events as helpdesk
from tickets.models import TicketCall, TicketEvent
from tickets.urgent import (
    CALL_BACK_ASKED,
    CALL_ENDED,
    ENGINEER_ACCEPTED,
    ENGINEER_REFUSED,
    ENGINEER_RUNG,
    ENGINEERS_BUSY,
    ENGINEERS_UNAVAILABLE,
    INCIDENT_TOLD,
    LINE_CLOSED,
    OUTCOME_RANK,
    TRIAGE,
    VOICEMAIL,
)
from tickets.urgent.opening import find_ticket_call
from tickets.urgent.timeline import add_call_event, keep_recording


def _settle(call: TicketCall, outcome: str) -> bool:
    """Move the call to `outcome` when that is progress; return whether it moved."""
    if OUTCOME_RANK.get(outcome, 0) <= OUTCOME_RANK.get(call.outcome, 0):
        return False
    call.outcome = outcome
    return True


def record_dial_outcome(session: Session, *, call: TicketCall, outcome: str) -> TicketCall:
    """Settle what the ringing of engineers came to: answered or abandoned while ringing."""
    _settle(call, outcome)
    session.flush()
    return call


def record_engineers_unavailable(
    session: Session, *, call: TicketCall, now: datetime | None = None
) -> TicketCall:
    """Note that no engineer accepted the call."""
    add_call_event(session, call, ENGINEERS_UNAVAILABLE, None, now)
    session.flush()
    return call


def record_voicemail(
    session: Session,
    *,
    call: TicketCall,
    recording_url: str,
    recording_sid: str | None,
    duration: int | None,
    now: datetime | None = None,
) -> TicketCall:
    """Store the caller's voicemail on the call; its outcome becomes voicemail."""
    # A voicemail never replaces the recording of a conversation an engineer answered.
    if call.recording_url is None or call.outcome != "answered":
        keep_recording(call, recording_url, recording_sid, duration)
    _settle(call, "voicemail")
    add_call_event(session, call, VOICEMAIL, recording_url, now)
    session.flush()
    return call


def record_engineers_busy(
    session: Session, *, call: TicketCall, now: datetime | None = None
) -> TicketCall:
    """Note that every engineer was on another call: nobody was rung for this one."""
    add_call_event(session, call, ENGINEERS_BUSY, None, now)
    return call


def record_line_closed(session: Session, *, call: TicketCall, now: datetime | None = None) -> None:
    """Note that the line was closed and the caller offered a voicemail at once.

    Written with the webhook's commit; a call that leaves no message then ends as
    `closed_no_message`, not as a caller who hung up.
    """
    add_call_event(session, call, LINE_CLOSED, "outside working hours", now)


def outcome_from_events(kinds: set[str]) -> str:
    """Return the outcome of a call that ended, from the timeline events it left."""
    if ENGINEER_ACCEPTED in kinds:
        return "answered"
    if VOICEMAIL in kinds:
        return "voicemail"
    if CALL_BACK_ASKED in kinds:
        return "call_back"
    if LINE_CLOSED in kinds:
        return "closed_no_message"
    if ENGINEERS_UNAVAILABLE in kinds:
        return "refused" if ENGINEER_REFUSED in kinds else "no_answer"
    if ENGINEERS_BUSY in kinds:
        return "no_answer"
    if ENGINEER_RUNG in kinds:
        return "abandoned_while_ringing"
    if INCIDENT_TOLD in kinds:
        return "informed"
    if TRIAGE in kinds:
        return "abandoned_after_triage"
    return "abandoned_before_triage"


def settle_ticket_call(
    session: Session,
    *,
    sid: str,
    duration: int | None,
    now: datetime | None = None,
    then: Callable[[Session, TicketCall], None] | None = None,
    from_timeline: bool = True,
) -> TicketCall | None:
    """Settle a ticket call that ended: its outcome if still open, its duration and end.

    `then` adds what the end of the call causes (paging, the caller's SMS) to the same
    transaction, so the settled call and its consequences are written together or not at all.
    Without `from_timeline` the outcome is kept as recorded (a call-back's is the caller's
    answer, not the engineer's).
    """
    call = find_ticket_call(session, sid)
    if call is None or call.ended_at is not None:
        return call
    now = now or utcnow()
    if from_timeline:
        kinds = set(
            session.scalars(select(TicketEvent.kind).where(TicketEvent.call_sid == call.sid))
        )
        _settle(call, outcome_from_events(kinds))
    call.ended_at = now
    call.duration = duration
    detail = f"{call.outcome}, {duration if duration is not None else '?'} s"
    add_call_event(session, call, CALL_ENDED, detail, now)
    helpdesk.call_ended(session, call=call, at=now)
    if then is not None:
        then(session, call)
    session.flush()
    return call
