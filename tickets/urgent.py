"""Urgent tickets opened by emergency calls: open or join, attach calls, record what happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.exc import StaleDataError

from core.clock import utcnow
from core.db import insert_or_get
from tickets import metrics
from tickets.helpdesk import events as helpdesk
from tickets.models import (
    OPEN_STATUSES,
    Contact,
    Organization,
    Ticket,
    TicketCall,
    TicketEvent,
)

URGENT = "urgent"
# The line emergency calls come in on (`TicketCall.line`); the telephone side names it too.
EMERGENCY_LINE = "emergency"
RECOGNISED_BY = {"caller_id": "caller ID", "pin": "PIN"}

# Every outcome a ticket call can have, ranked. Later knowledge may improve an outcome (a
# voicemail arriving after the hang-up was settled), but an outcome never moves back to a
# lower rank, nor sideways between final outcomes.
OUTCOME_RANK = {
    "in_progress": 0,
    "abandoned_before_triage": 1,
    "abandoned_after_triage": 1,
    "abandoned_while_ringing": 1,
    "no_answer": 1,
    "refused": 1,
    "informed": 1,
    "voicemail": 2,
    "call_back": 2,
    "answered": 3,
}

# Timeline event kinds written for emergency calls.
TICKET_OPENED = "ticket_opened"
CALL_JOINED = "call_joined"
RECOGNISED = "recognised"
TRIAGE = "triage"
DESCRIPTION = "description"
ENGINEER_RUNG = "engineer_rung"
ENGINEER_REFUSED = "engineer_refused"
ENGINEER_ACCEPTED = "engineer_accepted"
ENGINEERS_UNAVAILABLE = "engineers_unavailable"
# Every engineer was on another call: nobody was rung, the caller was offered a call-back.
ENGINEERS_BUSY = "engineers_busy"
# The caller heard that their outage is a known incident (what, since when, the newest update).
INCIDENT_TOLD = "incident_told"
# The caller asked to be called back (tickets.callback_queue).
CALL_BACK_ASKED = "call_back_asked"
VOICEMAIL = "voicemail"
CALL_RECORDED = "call_recorded"
CALL_ENDED = "call_ended"
JOURNAL = "journal"
UNVERIFIED = "unverified"


# Hot lookups built once: SQLAlchemy then skips building and hashing the query per webhook.
_CALL_BY_SID = (
    select(TicketCall)
    .where(TicketCall.sid == bindparam("sid"))
    .options(joinedload(TicketCall.ticket))
)
_TICKET_BY_ID = (
    select(Ticket)
    .where(Ticket.id == bindparam("ticket_id"))
    .options(joinedload(Ticket.contact), joinedload(Ticket.organization))
)
_CALL_ON_TICKET = (
    select(TicketCall)
    .where(TicketCall.sid == bindparam("sid"), TicketCall.ticket_id == bindparam("ticket_id"))
    .options(
        joinedload(TicketCall.ticket).joinedload(Ticket.contact),
        joinedload(TicketCall.ticket).joinedload(Ticket.organization),
    )
)
_TICKET_TO_JOIN = (
    select(Ticket)
    .join(TicketCall)
    .where(
        Ticket.organization_id == bindparam("organization_id"),
        Ticket.priority == URGENT,
        Ticket.status.in_(OPEN_STATUSES),
        TicketCall.started_at >= bindparam("since"),
    )
    .order_by(TicketCall.started_at.desc(), Ticket.id.desc())
    .limit(1)
)
# An unverified caller's open ticket, by their number: their later calls join it.
_UNVERIFIED_TICKET_TO_JOIN = (
    select(Ticket)
    .join(TicketCall)
    .where(
        Ticket.caller == bindparam("caller"),
        Ticket.verified.is_(False),
        Ticket.from_journal.is_(False),
        Ticket.priority == URGENT,
        Ticket.status.in_(OPEN_STATUSES),
        TicketCall.started_at >= bindparam("since"),
    )
    .order_by(TicketCall.started_at.desc(), Ticket.id.desc())
    .limit(1)
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


def find_ticket_call(session: Session, sid: str | None) -> TicketCall | None:
    """Return the ticket call of a CallSid, with its ticket loaded."""
    if not sid:
        return None
    return session.scalar(_CALL_BY_SID, {"sid": sid})


def find_ticket(session: Session, number: str | None) -> Ticket | None:
    """Return the ticket with this ticket number, or None when there is none or it is odd."""
    ticket_id = Ticket.id_from_number(number) if number else None
    if ticket_id is None:
        return None
    return session.scalar(_TICKET_BY_ID, {"ticket_id": ticket_id})


def find_call_on_ticket(session: Session, *, ticket: Ticket, sid: str | None) -> TicketCall | None:
    """Return the ticket's call with this sid, else its newest call still in progress."""
    if sid:
        call = session.scalar(
            select(TicketCall).where(TicketCall.sid == sid, TicketCall.ticket_id == ticket.id)
        )
        if call is not None:
            return call
    return session.scalar(
        select(TicketCall)
        .where(TicketCall.ticket_id == ticket.id, TicketCall.outcome == "in_progress")
        .order_by(TicketCall.started_at.desc(), TicketCall.id.desc())
        .limit(1)
    )


def find_ticket_and_call(
    session: Session, *, number: str | None, sid: str | None
) -> tuple[Ticket | None, TicketCall | None]:
    """Return the ticket with this number and its call with this sid, else its newest in progress.

    The usual case, the caller's call on the ticket, is one query that loads the ticket too.
    """
    ticket_id = Ticket.id_from_number(number) if number else None
    if ticket_id is None:
        return None, None
    if sid:
        call = session.scalar(_CALL_ON_TICKET, {"sid": sid, "ticket_id": ticket_id})
        if call is not None:
            return call.ticket, call
    ticket = session.scalar(_TICKET_BY_ID, {"ticket_id": ticket_id})
    if ticket is None:
        return None, None
    return ticket, find_call_on_ticket(session, ticket=ticket, sid=None)


def _open_ticket_to_join(
    session: Session, *, organization_id: int, since: datetime
) -> Ticket | None:
    """Return the organisation's open urgent ticket with a call since `since`, if any."""
    return session.scalar(_TICKET_TO_JOIN, {"organization_id": organization_id, "since": since})


def _call_event(ticket_id: int, call_sid: str, kind: str, detail: str, at: datetime) -> dict:
    """Return the parameters of `_ADD_CALL_EVENT_ONCE` for one event of a call."""
    return {"ticket_id": ticket_id, "call_sid": call_sid, "kind": kind, "detail": detail, "at": at}


def _add_event(
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
        session.execute(_ADD_CALL_EVENT_ONCE, _call_event(ticket_id, call_sid, kind, detail, at))
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


def _add_call_event(
    session: Session, call: TicketCall, kind: str, detail: str | None, at: datetime | None = None
) -> None:
    """Add a timeline event for this call, unless it already has the very same one."""
    _add_event(
        session,
        ticket_id=call.ticket_id,
        kind=kind,
        detail=detail,
        call_sid=call.sid,
        at=at or utcnow(),
    )


def _when(in_hours: bool) -> str:
    return "in working hours" if in_hours else "outside working hours"


def _new_ticket(
    session: Session,
    *,
    caller: str | None,
    contact: Contact | None,
    in_hours: bool,
    verified: bool,
    from_journal: bool,
    at: datetime,
) -> Ticket:
    """Add a new urgent ticket."""
    ticket = Ticket(
        priority=URGENT,
        category="bug",
        status="new",
        source="phone",
        caller=caller,
        contact_id=contact.id if contact is not None else None,
        organization_id=contact.organization_id if contact is not None else None,
        in_hours=in_hours,
        verified=verified,
        from_journal=from_journal,
        created_at=at,
        updated_at=at,
    )
    session.add(ticket)
    session.flush()
    return ticket


def _open_or_join(
    session: Session,
    *,
    call_sid: str,
    line: str,
    caller: str | None,
    contact: Contact | None,
    in_hours: bool,
    may_join: bool,
    repeat_window_minutes: int,
    verified: bool,
    from_journal: bool,
    at: datetime,
    recognised_by: str | None = None,
    existing: Ticket | None = None,
) -> tuple[TicketCall, bool]:
    """Add the call to `existing`, its organisation's open urgent ticket, or a new one; say which.

    When a major outage hits, many people of one organisation call at once. Writing the
    organisation's row first locks it until this transaction commits (a row lock on
    PostgreSQL, the write lock on SQLite), so the calls decide "join or open" one after
    another and each sees the ticket the one before it opened: one ticket, every call on it.
    """
    ticket = existing
    if contact is not None and contact.organization_id is not None:
        session.execute(
            update(Organization)
            .where(Organization.id == contact.organization_id)
            .values(last_emergency_call_at=at)
        )
    if ticket is None and may_join and repeat_window_minutes > 0:
        ticket = _open_ticket_to_join(
            session,
            organization_id=contact.organization_id,
            since=at - timedelta(minutes=repeat_window_minutes),
        )
    joined = ticket is not None
    if ticket is None:
        ticket = _new_ticket(
            session,
            caller=caller,
            contact=contact,
            in_hours=in_hours,
            verified=verified,
            from_journal=from_journal,
            at=at,
        )
    # Setting the relationships too spares a query when the flow reads call.ticket next.
    call = TicketCall(
        ticket_id=ticket.id,
        ticket=ticket,
        sid=call_sid,
        line=line,
        caller=caller,
        contact_id=contact.id if contact is not None else None,
        contact=contact,
        recognised_by=recognised_by,
        started_at=at,
    )
    session.add(call)
    if not joined:
        helpdesk.ticket_created(session, ticket=ticket, call=call)
    return call, joined


def _note(session: Session, call: TicketCall, kind: str, detail: str) -> None:
    """Add an event of a call being opened: new, so no duplicate to look for."""
    session.add(
        TicketEvent(
            ticket_id=call.ticket_id,
            kind=kind,
            detail=detail,
            call_sid=call.sid,
            at=call.started_at,
        )
    )


def _once_per_call(
    session: Session,
    call_sid: str,
    add: Callable[[], tuple[TicketCall, bool]],
    *,
    how: str,
    may_exist: bool = True,
) -> TicketCall:
    """Put the call on a ticket unless it already is (a retried webhook); count new tickets.

    `add` returns the call and whether it joined an open ticket. The count follows the commit,
    so a call that lost the race to a concurrent retry opens nothing here.
    """
    added: list[tuple[TicketCall, bool]] = []

    def add_and_keep() -> TicketCall:
        added.append(add())
        return added[-1][0]

    call = insert_or_get(
        session,
        find=lambda: find_ticket_call(session, call_sid),
        add=add_and_keep,
        look_first=may_exist,
    )
    if added and added[-1][0] is call and not added[-1][1]:
        metrics.count_urgent_ticket_opened(how)
    return call


def open_urgent_ticket(
    session: Session,
    *,
    call_sid: str,
    line: str,
    caller: str | None,
    contact: Contact,
    in_hours: bool,
    recognised_by: str,
    repeat_window_minutes: int,
    now: datetime | None = None,
    may_exist: bool = True,
) -> TicketCall:
    """Attach the call to its organisation's open urgent ticket, or open one; once per call.

    `may_exist=False` says the call's first webhook is being answered (its call log row was
    new a moment ago): no earlier webhook can have put it on a ticket, so there is no look.
    """

    def add() -> tuple[TicketCall, bool]:
        call, joined = _open_or_join(
            session,
            call_sid=call_sid,
            line=line,
            caller=caller,
            contact=contact,
            in_hours=in_hours,
            may_join=True,
            repeat_window_minutes=repeat_window_minutes,
            verified=True,
            from_journal=False,
            at=now or utcnow(),
            recognised_by=recognised_by,
        )
        if joined:
            detail = f"{contact.name} called again; the call was added to this open ticket"
            _note(session, call, CALL_JOINED, detail)
        else:
            _note(session, call, TICKET_OPENED, f"opened by an emergency call {_when(in_hours)}")
        how = RECOGNISED_BY.get(recognised_by, recognised_by)
        _note(session, call, RECOGNISED, f"{contact.name} ({contact.role}) by {how}")
        return call, joined

    return _once_per_call(session, call_sid, add, how=recognised_by, may_exist=may_exist)


def open_unverified_ticket(
    session: Session,
    *,
    call_sid: str,
    line: str,
    caller: str | None,
    in_hours: bool,
    reason: str,
    because: str,
    repeat_window_minutes: int,
    now: datetime | None = None,
) -> TicketCall:
    """Open an urgent ticket for a caller who goes on without a confirmed PIN; once per call.

    Nobody is identified: the ticket has no contact and no organisation, and it is marked
    unverified. A later unverified call from the same number, while the ticket is open and
    had a call within `repeat_window_minutes`, joins it: one caller dialling again and again
    makes one ticket. Withheld numbers join nothing (two such callers may be anyone).
    `because` says why on its timeline.
    """
    at = now or utcnow()

    def add() -> tuple[TicketCall, bool]:
        existing = None
        if caller and repeat_window_minutes > 0:
            since = at - timedelta(minutes=repeat_window_minutes)
            existing = session.scalar(
                _UNVERIFIED_TICKET_TO_JOIN, {"caller": caller, "since": since}
            )
        call, joined = _open_or_join(
            session,
            call_sid=call_sid,
            line=line,
            caller=caller,
            contact=None,
            in_hours=in_hours,
            may_join=False,
            repeat_window_minutes=0,
            verified=False,
            from_journal=False,
            at=at,
            existing=existing,
        )
        call.reason = reason
        if joined:
            detail = "an unverified call from the same number was added to this open ticket"
            _note(session, call, CALL_JOINED, detail)
        else:
            call.ticket.reason = reason
            detail = f"opened by an unverified emergency call {_when(in_hours)}"
            _note(session, call, TICKET_OPENED, detail)
        _note(session, call, UNVERIFIED, because)
        _note(session, call, TRIAGE, reason)
        return call, joined

    return _once_per_call(session, call_sid, add, how="unverified")


def open_journalled_ticket(
    session: Session,
    *,
    call_sid: str,
    line: str,
    caller: str | None,
    contact: Contact | None,
    in_hours: bool,
    repeat_window_minutes: int,
    at: datetime,
    note: str,
) -> TicketCall:
    """Record a call served while the database was away: an unverified urgent ticket, once.

    The caller could not be checked during the call, so the ticket is not verified even when
    the caller ID matches a contact now; it is marked as coming from the outage journal.
    """

    def add() -> tuple[TicketCall, bool]:
        call, joined = _open_or_join(
            session,
            call_sid=call_sid,
            line=line,
            caller=caller,
            contact=contact,
            in_hours=in_hours,
            may_join=contact is not None and contact.is_entitled,
            repeat_window_minutes=repeat_window_minutes,
            # The caller could not be checked during the call.
            verified=False,
            from_journal=True,
            at=at,
        )
        if joined:
            detail = "an unverified call during a database outage was added to this open ticket"
            _note(session, call, CALL_JOINED, detail)
        else:
            detail = f"opened from the outage journal for an emergency call {_when(in_hours)}"
            _note(session, call, TICKET_OPENED, detail)
        _note(session, call, JOURNAL, note)
        return call, joined

    return _once_per_call(session, call_sid, add, how="journal")


def note_from_journal(session: Session, *, call: TicketCall, detail: str, at: datetime) -> None:
    """Note on the call's timeline what the outage journal added to it."""
    _add_call_event(session, call, JOURNAL, detail, at)
    session.commit()


def is_joined_call(session: Session, call: TicketCall) -> bool:
    """Return whether the call was added to a ticket an earlier call opened."""
    first = session.scalar(
        select(TicketCall.id)
        .where(TicketCall.ticket_id == call.ticket_id)
        .order_by(TicketCall.started_at, TicketCall.id)
        .limit(1)
    )
    return first != call.id


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

    The reason belongs to the call; the ticket keeps the first reason it was given, so a
    later call that joins the open ticket does not rewrite why it was opened.
    """
    now = now or utcnow()
    ticket_id, sid = call.ticket_id, call.sid

    def change(ticket: Ticket) -> None:
        # Inside the retried change, so a rollback after a concurrent edit loses nothing.
        _add_event(
            session,
            ticket_id=ticket_id,
            kind=TRIAGE,
            detail=reason or "unknown",
            call_sid=sid,
            at=now,
        )
        if reason is not None:
            call.reason = reason
            if ticket.reason is None:
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
        _add_call_event(session, call, DESCRIPTION, "skipped", now)
        session.commit()
        return call
    detail = text if confidence is None else f"{text} (confidence {confidence:.2f})"

    def change(ticket: Ticket) -> None:
        # Inside the retried change, so a rollback after a concurrent edit loses nothing.
        call.transcription = text
        _add_call_event(session, call, DESCRIPTION, detail, now)
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
        _call_event(call.ticket_id, call.sid, ENGINEER_RUNG, f"{name}{where}", now)
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
    _add_event(session, ticket_id=ticket.id, kind=kind, detail=detail, call_sid=sid, at=now)
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
    session.commit()
    return ticket


def _settle(call: TicketCall, outcome: str) -> bool:
    """Move the call to `outcome` when that is progress; return whether it moved."""
    if OUTCOME_RANK.get(outcome, 0) <= OUTCOME_RANK.get(call.outcome, 0):
        return False
    call.outcome = outcome
    return True


def record_dial_outcome(session: Session, *, call: TicketCall, outcome: str) -> TicketCall:
    """Settle what the ringing of engineers came to: answered or abandoned while ringing."""
    _settle(call, outcome)
    session.commit()
    return call


def record_engineers_unavailable(
    session: Session, *, call: TicketCall, now: datetime | None = None
) -> TicketCall:
    """Note that no engineer accepted the call."""
    _add_call_event(session, call, ENGINEERS_UNAVAILABLE, None, now)
    session.commit()
    return call


def record_engineers_busy(
    session: Session, *, call: TicketCall, now: datetime | None = None
) -> TicketCall:
    """Note that every engineer was on another call: nobody was rung for this one."""
    _add_call_event(session, call, ENGINEERS_BUSY, None, now)
    return call


def record_incident_told(
    session: Session, *, call: TicketCall, incident: int, now: datetime | None = None
) -> TicketCall:
    """Note that the caller heard their outage is incident `incident`, known and worked on."""
    _add_call_event(session, call, INCIDENT_TOLD, f"incident {incident}", now)
    return call


def _keep_recording(
    call: TicketCall, recording_url: str, recording_sid: str | None, duration: int | None
) -> None:
    call.recording_url = recording_url
    call.recording_sid = recording_sid
    call.recording_duration = duration


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
        _keep_recording(call, recording_url, recording_sid, duration)
    _settle(call, "voicemail")
    _add_call_event(session, call, VOICEMAIL, recording_url, now)
    session.commit()
    return call


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
    _keep_recording(call, recording_url, recording_sid, duration)
    _add_call_event(session, call, CALL_RECORDED, recording_url, now)
    session.commit()
    return call


def outcome_from_events(kinds: set[str]) -> str:
    """Return the outcome of a call that ended, from the timeline events it left."""
    if ENGINEER_ACCEPTED in kinds:
        return "answered"
    if VOICEMAIL in kinds:
        return "voicemail"
    if CALL_BACK_ASKED in kinds:
        return "call_back"
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
    _add_call_event(session, call, CALL_ENDED, detail, now)
    helpdesk.call_ended(session, call=call, at=now)
    if then is not None:
        then(session, call)
    session.commit()
    return call
