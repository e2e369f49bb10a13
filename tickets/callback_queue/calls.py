"""The call of a call-back: its engineer's leg claimed once, its ticket call, how it ended.

The call is a ticket call like any other (line CALL_BACK_LINE): its outcome, who answered and
its recording show on the ticket's timeline. The engineer is busy on it from the moment they
accept (`tickets.busy`) until Twilio reports its end.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.callback_queue.models import (
    ANSWERED,
    CALLING,
    CUSTOMER_MISSED,
    DONE,
    ENGINEER_DECLINED,
    ENGINEER_MISSED,
    NOT_PLACED,
    WAITING,
    QueuedCallBack,
)
from tickets.models import StaffUser, TicketCall, TicketEvent
from tickets.urgent import opening, timeline

# `TicketCall.line` of a call-back: an outbound call, not counted with the calls that came in.
CALL_BACK_LINE = "call_back"
# Timeline event of an attempt that ended.
CALL_BACK_ENDED = "call_back_ended"
OUTCOME_WORDS = {
    ANSWERED: "the caller answered",
    ENGINEER_MISSED: "the engineer's phone was not answered; back in the queue",
    ENGINEER_DECLINED: "the engineer did not accept; back in the queue",
    CUSTOMER_MISSED: "the caller did not answer; back in the queue",
    NOT_PLACED: "the call could not be placed; back in the queue",
}


def find(session: Session, request_id: int | None) -> QueuedCallBack | None:
    """Return the call-back request our own URL names, if there is one."""
    if request_id is None:
        return None
    return session.get(QueuedCallBack, request_id)


def claim_leg(session: Session, *, request: QueuedCallBack, call_sid: str) -> bool:
    """Return whether this engineer's leg is the current attempt's; the first one claims it.

    A second call of the same attempt (Twilio's answer lost in a crash, the call placed again)
    is refused, so the caller is dialled once.
    """
    if request.status != CALLING:
        return False
    if request.call_sid is None:
        request.call_sid = call_sid
        session.flush()
        return True
    return request.call_sid == call_sid


def placed(session: Session, *, request_id: int, call_sid: str) -> None:
    """Note the CallSid Twilio gave the attempt, unless its leg already claimed it."""
    request = session.get(QueuedCallBack, request_id)
    if request is not None and request.status == CALLING and request.call_sid is None:
        request.call_sid = call_sid


def open_call(
    session: Session, *, request: QueuedCallBack, call_sid: str, engineer: str, now: datetime
) -> TicketCall:
    """Return the attempt's ticket call, added on the engineer's first webhook; once per sid."""
    call = opening.find_ticket_call(session, call_sid)
    if call is not None:
        return call
    ticket = request.ticket
    call = TicketCall(
        ticket_id=ticket.id,
        ticket=ticket,
        sid=call_sid,
        line=CALL_BACK_LINE,
        caller=request.number,
        contact_id=ticket.contact_id,
        reason=ticket.reason,
        started_at=now,
    )
    session.add(call)
    session.flush()
    timeline.record_engineers_rung(session, call=call, engineers=[engineer], now=now)
    return call


def attempt_ended(
    session: Session, *, request: QueuedCallBack, outcome: str, now: datetime
) -> QueuedCallBack:
    """End the current attempt: done when the caller answered, else back in the queue."""
    if request.status != CALLING:
        return request
    request.outcome, request.finished_at = outcome, now
    request.status = DONE if outcome == ANSWERED else WAITING
    who = request.engineer.name if request.engineer is not None else "?"
    session.add(
        TicketEvent(
            ticket_id=request.ticket_id,
            kind=CALL_BACK_ENDED,
            detail=f"{who}: {OUTCOME_WORDS.get(outcome, outcome)}",
            call_sid=request.call_sid,
            at=now,
        )
    )
    session.flush()
    return request


def not_placed(session: Session, *, request_id: int, error: str, now: datetime) -> None:
    """Put an attempt whose call could not be placed back in the queue."""
    request = session.get(QueuedCallBack, request_id)
    if request is not None and request.status == CALLING and request.call_sid is None:
        attempt_ended(session, request=request, outcome=NOT_PLACED, now=now)


def engineer_of(session: Session, request: QueuedCallBack) -> StaffUser | None:
    """Return the engineer of the request's current attempt."""
    if request.engineer_id is None:
        return None
    return session.get(StaffUser, request.engineer_id)


def call_of(session: Session, request: QueuedCallBack) -> TicketCall | None:
    """Return the ticket call of the request's current attempt, if its leg reached us."""
    if request.call_sid is None:
        return None
    return session.scalar(select(TicketCall).where(TicketCall.sid == request.call_sid))
