"""Write what happened on an emergency call to its ticket's timeline, once per call and step.

Retried webhooks repeat steps, so each event is added unless the very same one is there. A
step that changes the ticket itself retries on a concurrent edit by staff (its version).
Everything here flushes; the webhook that owns the step commits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import bindparam, exists, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.clock import utcnow
from tickets.models import Ticket, TicketCall, TicketEvent
from tickets.urgent import (
    CALL_RECORDED,
    DESCRIPTION,
    ENGINEER_ACCEPTED,
    ENGINEER_REFUSED,
    ENGINEER_RUNG,
    INCIDENT_TOLD,
    JOURNAL,
    REASON_RANK,
    TRIAGE,
)

# A call's timeline event, added in one statement unless the very same one is there already
# (a retried webhook): no round trip to look first, nothing for the session to flush later.
# On the table, not the class: Core statements skip the ORM's bulk-insert bookkeeping (the
# session still flushes what is pending before running it).
_EVENTS = TicketEvent.__table__
_EVENT_COLUMNS = ("ticket_id", "at", "kind", "detail", "call_sid")
_ADD_CALL_EVENT_ONCE = insert(_EVENTS).from_select(
    _EVENT_COLUMNS,
    select(*(bindparam(name, type_=_EVENTS.c[name].type) for name in _EVENT_COLUMNS)).where(
        ~exists().where(
            _EVENTS.c.ticket_id == bindparam("ticket_id"),
            _EVENTS.c.kind == bindparam("kind"),
            _EVENTS.c.call_sid == bindparam("call_sid"),
            _EVENTS.c.detail == bindparam("detail"),
        )
    ),
)


def call_event(ticket_id: int, call_sid: str, kind: str, detail: str, at: datetime) -> dict:
    """Return the parameters of `_ADD_CALL_EVENT_ONCE` for one event of a call."""
    return {"ticket_id": ticket_id, "call_sid": call_sid, "kind": kind, "detail": detail, "at": at}


def add_event(
    session: Session,
    *,
    ticket_id: int,
    kind: str,
    detail: str | None,
    call_sid: str | None,
    at: datetime,
) -> None:
    """Add a timeline event unless this call already has the very same one (retried webhook)."""
    if call_sid is not None and detail is not None:
        session.execute(_ADD_CALL_EVENT_ONCE, call_event(ticket_id, call_sid, kind, detail, at))
        return
    duplicate = session.scalar(
        select(TicketEvent.id).where(
            TicketEvent.ticket_id == ticket_id,
            TicketEvent.kind == kind,
            TicketEvent.call_sid == call_sid,
            TicketEvent.detail == detail if detail is not None else TicketEvent.detail.is_(None),
        )
    )
    if duplicate is None:
        session.add(
            TicketEvent(ticket_id=ticket_id, kind=kind, detail=detail, call_sid=call_sid, at=at)
        )


def add_call_event(
    session: Session, call: TicketCall, kind: str, detail: str | None, at: datetime | None = None
) -> None:
    """Add a timeline event for this call, unless it already has the very same one."""
    add_event(
        session,
        ticket_id=call.ticket_id,
        kind=kind,
        detail=detail,
        call_sid=call.sid,
        at=at or utcnow(),
    )


def note_from_journal(session: Session, *, call: TicketCall, detail: str, at: datetime) -> None:
    """Note on the call's timeline what the outage journal added to it."""
    add_call_event(session, call, JOURNAL, detail, at)
    session.flush()


def _change_ticket(session: Session, ticket_id: int, change: Callable[[Ticket], None]) -> None:
    """Apply `change` to the ticket and write it, retrying when staff saved it concurrently.

    Written (flushed), not committed: the version check is in the UPDATE, and the change is
    committed with the webhook's one commit at its end. A lost race rolls the transaction
    back, so `change` makes every write of the step (it runs again on the fresh ticket), and
    the step comes first in its webhook's transaction.
    """
    for attempt in range(3):
        if attempt == 0:
            # Usually loaded with the call moments ago; the version check catches staleness.
            ticket = session.get(Ticket, ticket_id)
        else:
            ticket = session.scalar(
                select(Ticket)
                .where(Ticket.id == ticket_id)
                .execution_options(populate_existing=True)
            )
        change(ticket)
        try:
            session.flush()
            return
        except StaleDataError:
            session.rollback()
            if attempt == 2:
                raise


def record_reason(
    session: Session, *, call: TicketCall, reason: str | None, now: datetime | None = None
) -> TicketCall:
    """Record the caller's triage choice; None means no usable choice was made.

    The reason belongs to the call; the ticket's reason is its most serious call's (an outage
    outranks an urgent bug), so an outage call joining an urgent-bug ticket makes it an outage,
    and a later urgent-bug call does not make an outage less.
    """
    now = now or utcnow()
    ticket_id, sid = call.ticket_id, call.sid

    def change(ticket: Ticket) -> None:
        # Inside the retried change, so a rollback after a concurrent edit loses nothing.
        add_event(
            session,
            ticket_id=ticket_id,
            kind=TRIAGE,
            detail=reason or "unknown",
            call_sid=sid,
            at=now,
        )
        if reason is not None:
            call.reason = reason
            if REASON_RANK.get(reason, 0) > REASON_RANK.get(ticket.reason or "", 0):
                ticket.reason = reason

    _change_ticket(session, ticket_id, change)
    return call


def record_description(
    session: Session,
    *,
    call: TicketCall,
    text: str | None,
    confidence: float | None = None,
    now: datetime | None = None,
) -> TicketCall:
    """Store the caller's spoken description on the ticket and as the call's transcription."""
    now = now or utcnow()
    if not text:
        add_call_event(session, call, DESCRIPTION, "skipped", now)
        session.flush()
        return call
    detail = text if confidence is None else f"{text} (confidence {confidence:.2f})"

    def change(ticket: Ticket) -> None:
        # Inside the retried change, so a rollback after a concurrent edit loses nothing.
        call.transcription = text
        add_call_event(session, call, DESCRIPTION, detail, now)
        if not ticket.description:
            ticket.description = text
        elif text not in ticket.description:
            ticket.description = f"{ticket.description}\n{text}"

    _change_ticket(session, call.ticket_id, change)
    return call


def rota_place(level: int | None, round: int | None) -> str:
    """Return where in the escalation a leg rang, for the timeline: " (level 2, round 2)"."""
    if not level:
        return ""
    return f" (level {level}" + (f", round {round})" if round and round > 1 else ")")


def record_engineers_rung(
    session: Session,
    *,
    call: TicketCall,
    engineers: list[str],
    level: int | None = None,
    round: int | None = None,
    now: datetime | None = None,
) -> TicketCall:
    """Note on the timeline which engineers' phones are ringing, and for which rota level.

    Written with the webhook's commit at its end (`ivr.flow.webhook`).
    """
    now = now or utcnow()
    where = rota_place(level, round)
    events = [
        call_event(call.ticket_id, call.sid, ENGINEER_RUNG, f"{name}{where}", now)
        for name in engineers
    ]
    if events:  # one batch (executemany), each still added only once per call
        session.execute(_ADD_CALL_EVENT_ONCE, events)
    return call


def record_engineer_response(
    session: Session,
    *,
    ticket: Ticket,
    call: TicketCall | None,
    engineer: str,
    accepted: bool,
    place: str = "",
    engineer_phone: str | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Record an engineer accepting (who answered, after how long) or refusing the call.

    `place` says where in the escalation the leg rang, so a refusal in round 2 is its own event.
    The accepting engineer's `engineer_phone` is busy on this call until its end is in.
    """
    now = now or utcnow()
    sid = call.sid if call is not None else None
    kind = ENGINEER_ACCEPTED if accepted else ENGINEER_REFUSED
    detail = f"{engineer}{place}"
    add_event(session, ticket_id=ticket.id, kind=kind, detail=detail, call_sid=sid, at=now)
    if accepted and call is not None and call.answered_at is None:
        call.answered_by = engineer
        call.answered_at = now
        call.answered_by_number = engineer_phone
        # Without autoflush the call is written once, with its ring time, at the commit.
        with session.no_autoflush:
            first_ring = session.scalar(
                select(TicketEvent.at)
                .where(TicketEvent.call_sid == call.sid, TicketEvent.kind == ENGINEER_RUNG)
                .order_by(TicketEvent.at, TicketEvent.id)
                .limit(1)
            )
        if first_ring is not None:
            call.ring_seconds = max(0, int((now - first_ring).total_seconds()))
    session.flush()
    return ticket


def record_incident_told(
    session: Session, *, call: TicketCall, incident: int, now: datetime | None = None
) -> TicketCall:
    """Note that the caller heard their outage is incident `incident`, known and worked on."""
    add_call_event(session, call, INCIDENT_TOLD, f"incident {incident}", now)
    return call


def keep_recording(
    call: TicketCall, recording_url: str, recording_sid: str | None, duration: int | None
) -> None:
    call.recording_url = recording_url
    call.recording_sid = recording_sid
    call.recording_duration = duration


def record_call_recording(
    session: Session,
    *,
    call: TicketCall,
    recording_url: str,
    recording_sid: str | None,
    duration: int | None,
    now: datetime | None = None,
) -> TicketCall:
    """Store the recording of the conversation between caller and engineer."""
    keep_recording(call, recording_url, recording_sid, duration)
    add_call_event(session, call, CALL_RECORDED, recording_url, now)
    session.flush()
    return call
