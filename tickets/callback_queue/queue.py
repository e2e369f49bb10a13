"""Queue a caller's request to be called back, and start a call-back from the ticket.

Starting one writes the outbox row (`kind` CALL_BACK, `channel` "call") in the transaction
that starts it: the sender places the call through Twilio's Calls API once, whichever server
process claims the row (`ivr.messaging.sender`), rather than the request that the engineer's
click happens to land on. A Twilio answer lost in a crash may place a second call; the first
leg to reach the service claims the attempt and any other is refused (`calls.claim_leg`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from core.db import savepoint
from tickets import paging
from tickets.callback_queue.models import CALLING, DONE, WAITING, QueuedCallBack
from tickets.caller_texts import NO_COUNTRY
from tickets.models import OutboxMessage, StaffUser, Ticket, TicketCall, TicketEvent
from tickets.urgent import CALL_BACK_ASKED

# The outbox's message that rings the engineer first; its channel is a phone call.
CALL_BACK = "call_back"
CALL = "call"
# Timeline event of a call-back an engineer started.
CALL_BACK_STARTED = "call_back_started"
# An attempt that heard nothing back this long (a lost status callback) may be started again.
STALE_ATTEMPT = timedelta(minutes=10)
# Numbers a call-back may dial: never premium, shared-cost, personal or pager ones (nor, by
# their region, satellite ones).
CALLABLE_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }
)


class CallBackError(ValueError):
    """A call-back cannot be started as asked; `code` names why (the API's error code)."""

    code = "invalid_input"
    status_code = 409


class NoPhone(CallBackError):
    """The engineer has no phone number to ring."""

    code = "no_phone"


class NotCallable(CallBackError):
    """The ticket has no caller number the line may call back."""

    code = "not_callable"


class AlreadyCalling(CallBackError):
    """Someone is calling this ticket's caller back right now."""

    code = "call_back_in_progress"


def callable_number(
    number: str | None, *, in_directory: bool, countries: Sequence[str]
) -> str | None:
    """Return the number a call-back may dial, or None.

    Only a fixed or mobile number is ever dialled. One in the client directory (the caller
    was recognised by it) may be of any country; any other must be of one of `countries`: a
    caller ID can be spoofed, and a call-back must not be a way to make us call a far-away or
    premium number.
    """
    if not number:
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    if phonenumbers.number_type(parsed) not in CALLABLE_TYPES:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    if region in (None, NO_COUNTRY) or (not in_directory and region not in countries):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def number_of_call(call: TicketCall, countries: Sequence[str]) -> str | None:
    """Return the number to call a caller back on, from their call; None when there is none.

    Only a caller recognised on the call (caller ID or PIN) is called back, on the caller ID
    Twilio gave us, never on digits they typed.
    """
    if call.recognised_by is None:
        return None
    in_directory = call.recognised_by == "caller_id"
    return callable_number(call.caller, in_directory=in_directory, countries=countries)


def number_of_ticket(session: Session, ticket: Ticket, countries: Sequence[str]) -> str | None:
    """Return the number of the ticket's newest caller who may be called back, if any."""
    calls = session.scalars(
        select(TicketCall)
        .where(TicketCall.ticket_id == ticket.id, TicketCall.recognised_by.is_not(None))
        .order_by(TicketCall.started_at.desc(), TicketCall.id.desc())
    )
    for call in calls:
        number = number_of_call(call, countries)
        if number is not None:
            return number
    return None


def ask(
    session: Session, *, call: TicketCall, number: str, language: str, now: datetime
) -> QueuedCallBack:
    """Queue the caller's request on their ticket, once per call, in order of asking.

    The caller's earlier request for the same number that is still waiting keeps its place.
    Flushes; the webhook commits.
    """
    asked = session.scalar(select(QueuedCallBack).where(QueuedCallBack.asked_on == call.sid))
    if asked is not None:
        return asked
    waiting = session.scalar(
        select(QueuedCallBack)
        .where(
            QueuedCallBack.ticket_id == call.ticket_id,
            QueuedCallBack.number == number,
            QueuedCallBack.status != DONE,
        )
        .order_by(QueuedCallBack.requested_at, QueuedCallBack.id)
        .limit(1)
    )
    if waiting is not None:
        _note_asked(session, call, f"on {number}, already in the queue", now)
        return waiting
    request = QueuedCallBack(
        ticket_id=call.ticket_id, asked_on=call.sid, number=number, language=language
    )
    request.requested_at = now
    try:
        with savepoint(session):  # a retried webhook may ask at the very same moment
            session.add(request)
    except IntegrityError:
        return session.scalar(select(QueuedCallBack).where(QueuedCallBack.asked_on == call.sid))
    _note_asked(session, call, f"on {number}", now)
    return request


def _note_asked(session: Session, call: TicketCall, detail: str, now: datetime) -> None:
    """Note the request on the ticket's timeline, under the call that asked."""
    session.add(
        TicketEvent(
            ticket_id=call.ticket_id, kind=CALL_BACK_ASKED, detail=detail, call_sid=call.sid, at=now
        )
    )
    session.flush()


def queue_of(session: Session, ticket_ids: Iterable[int]) -> list[QueuedCallBack]:
    """Return the call-back requests of these tickets: open ones in order of asking, then done."""
    ids = list(ticket_ids)
    if not ids:
        return []
    found = session.scalars(
        select(QueuedCallBack)
        .where(QueuedCallBack.ticket_id.in_(ids))
        .options(joinedload(QueuedCallBack.ticket), joinedload(QueuedCallBack.engineer))
        .order_by(QueuedCallBack.requested_at, QueuedCallBack.id)
    ).all()
    return [r for r in found if r.status != DONE] + [r for r in found if r.status == DONE]


def _attempt_to_start(
    session: Session, *, ticket: Ticket, request_id: int | None, now: datetime
) -> QueuedCallBack | None:
    """Return the request to call back now: the one asked for, else the oldest waiting one."""
    requests = session.scalars(
        select(QueuedCallBack)
        .where(QueuedCallBack.ticket_id == ticket.id, QueuedCallBack.status != DONE)
        .order_by(QueuedCallBack.requested_at, QueuedCallBack.id)
    ).all()
    for request in requests:
        if request.status == CALLING and request.started_at > now - STALE_ATTEMPT:
            who = request.engineer.name if request.engineer is not None else "someone"
            raise AlreadyCalling(f"{who} is calling this ticket's caller back right now.")
    if request_id is not None:
        chosen = [request for request in requests if request.id == request_id]
        if not chosen:
            raise CallBackError("That call-back request is no longer in the queue.")
        return chosen[0]
    return requests[0] if requests else None


def start(
    session: Session,
    *,
    ticket: Ticket,
    engineer: StaffUser,
    countries: Sequence[str],
    now: datetime,
    request_id: int | None = None,
) -> QueuedCallBack:
    """Start a call-back: the engineer's phone rings first, then the caller is dialled.

    Takes the request asked for, else the ticket's oldest waiting one; without any, the
    ticket's newest caller who may be called back. Queues the call in the outbox; flushes.
    """
    if not engineer.phone:
        raise NoPhone(f"{engineer.name} has no phone number: add one to the account first.")
    request = _attempt_to_start(session, ticket=ticket, request_id=request_id, now=now)
    if request is None:
        number = number_of_ticket(session, ticket, countries)
        if number is None:
            raise NotCallable(f"Ticket {ticket.number} has no caller number to call back.")
        request = QueuedCallBack(ticket_id=ticket.id, number=number, requested_at=now)
        session.add(request)
    # Checked again: the number may have been purged or erased since the caller asked.
    if callable_number(request.number, in_directory=True, countries=countries) is None:
        raise NotCallable(f"Ticket {ticket.number}'s caller number is no longer kept.")
    request.status, request.engineer_id, request.started_at = CALLING, engineer.id, now
    request.call_sid, request.outcome, request.finished_at = None, None, None
    request.attempts = (request.attempts or 0) + 1
    session.flush()
    session.add(
        OutboxMessage(
            ticket_id=ticket.id,
            staff_id=engineer.id,
            kind=CALL_BACK,
            channel=CALL,
            recipient=engineer.phone,
            recipient_name=engineer.name,
            language=request.language or "nl",
            detail=str(request.id),
            idempotency_key=paging.new_key(),
            created_at=now,
            next_attempt_at=now,
        )
    )
    detail = f"{engineer.name} calls {request.number} back (their own phone rings first)"
    session.add(
        TicketEvent(
            ticket_id=ticket.id, kind=CALL_BACK_STARTED, detail=detail, staff_id=engineer.id, at=now
        )
    )
    session.flush()
    return request


def is_waiting(request: QueuedCallBack) -> bool:
    """Return whether the request is still in the queue (not being called, not done)."""
    return request.status == WAITING
