"""Put an emergency call on its urgent ticket: join an open one or open one, once per call.

A call arrives recognised (a directory contact, by caller ID or PIN), unverified (a caller who
went on without a confirmed PIN) or from the outage journal (served while the database was
away); `Arrival` holds how they differ, so one function opens or joins for all three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, joinedload

from core.db import insert_or_get
from tickets import metrics
from tickets.helpdesk import events as helpdesk
from tickets.models import OPEN_STATUSES, Contact, Organization, Ticket, TicketCall, TicketEvent
from tickets.urgent import (
    CALL_JOINED,
    JOURNAL,
    RECOGNISED,
    RECOGNISED_BY,
    TICKET_OPENED,
    TRIAGE,
    UNVERIFIED,
    URGENT,
)

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


def is_joined_call(session: Session, call: TicketCall) -> bool:
    """Return whether the call was added to a ticket an earlier call opened."""
    first = session.scalar(
        select(TicketCall.id)
        .where(TicketCall.ticket_id == call.ticket_id)
        .order_by(TicketCall.started_at, TicketCall.id)
        .limit(1)
    )
    return first != call.id


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


def _ticket_to_join(
    session: Session,
    arrival: Arrival,
    *,
    caller: str | None,
    contact: Contact | None,
    window_minutes: int,
    at: datetime,
) -> Ticket | None:
    """Return the open urgent ticket this call joins, by the arrival's rule, if any."""
    if window_minutes <= 0:
        return None
    since = at - timedelta(minutes=window_minutes)
    if arrival.join == BY_ORGANIZATION and contact is not None and contact.is_entitled:
        values = {"organization_id": contact.organization_id, "since": since}
        return session.scalar(_TICKET_TO_JOIN, values)
    if arrival.join == BY_NUMBER and caller:
        return session.scalar(_UNVERIFIED_TICKET_TO_JOIN, {"caller": caller, "since": since})
    return None


def _open_or_join(
    session: Session,
    arrival: Arrival,
    *,
    call_sid: str,
    line: str,
    caller: str | None,
    contact: Contact | None,
    in_hours: bool,
    window_minutes: int,
    at: datetime,
) -> tuple[TicketCall, bool]:
    """Add the call to its open urgent ticket, or to a new one; say whether it joined.

    When a major outage hits, many people of one organisation call at once. Writing the
    organisation's row first locks it until this transaction commits (a row lock on
    PostgreSQL, the write lock on SQLite), so the calls decide "join or open" one after
    another and each sees the ticket the one before it opened: one ticket, every call on it.
    """
    if contact is not None and contact.organization_id is not None:
        session.execute(
            update(Organization)
            .where(Organization.id == contact.organization_id)
            .values(last_emergency_call_at=at)
        )
    ticket = _ticket_to_join(
        session, arrival, caller=caller, contact=contact, window_minutes=window_minutes, at=at
    )
    joined = ticket is not None
    if ticket is None:
        ticket = _new_ticket(
            session,
            caller=caller,
            contact=contact,
            in_hours=in_hours,
            verified=arrival.verified,
            from_journal=arrival.from_journal,
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
        started_at=at,
        recognised_by=arrival.recognised_by,
        reason=arrival.reason,
    )
    session.add(call)
    if not joined:
        if arrival.reason is not None:
            ticket.reason = arrival.reason
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


# What an arriving call's open urgent ticket is found by.
BY_ORGANIZATION = "organization"  # its organisation's (a contact who may use the line)
BY_NUMBER = "number"  # its caller's number (unverified callers, never a withheld one)


@dataclass(frozen=True)
class Arrival:
    """How a call comes to its urgent ticket: all that differs between the ways it can arrive."""

    how: str  # the metric's label: caller_id, pin, unverified or journal
    verified: bool
    join: str  # BY_ORGANIZATION or BY_NUMBER
    opened: str  # the timeline's words when the call opens a ticket
    joined: str  # ... and when it joins one
    notes: tuple[tuple[str, str], ...] = ()  # more timeline events of the call: (kind, detail)
    reason: str | None = None  # known on arrival: an unverified caller chose at triage
    recognised_by: str | None = None
    from_journal: bool = False


def recognised(contact: Contact, recognised_by: str) -> Arrival:
    """Return the arrival of a directory contact recognised by caller ID or PIN."""
    how = RECOGNISED_BY.get(recognised_by, recognised_by)
    return Arrival(
        how=recognised_by,
        verified=True,
        join=BY_ORGANIZATION,
        opened="opened by an emergency call {when}",
        joined=f"{contact.name} called again; the call was added to this open ticket",
        notes=((RECOGNISED, f"{contact.name} ({contact.role}) by {how}"),),
        recognised_by=recognised_by,
    )


def unverified(*, reason: str, because: str) -> Arrival:
    """Return the arrival of a caller who goes on without a confirmed PIN.

    Nobody is identified: the ticket has no contact and no organisation. A later unverified
    call from the same number joins it while it is open, so one caller dialling again and
    again makes one ticket; withheld numbers join nothing (two such callers may be anyone).
    """
    return Arrival(
        how="unverified",
        verified=False,
        join=BY_NUMBER,
        opened="opened by an unverified emergency call {when}",
        joined="an unverified call from the same number was added to this open ticket",
        notes=((UNVERIFIED, because), (TRIAGE, reason)),
        reason=reason,
    )


def journalled(*, note: str) -> Arrival:
    """Return the arrival of a call served while the database was away (the outage journal).

    The caller could not be checked during the call, so the ticket is not verified, even when
    the caller ID matches a contact now.
    """
    return Arrival(
        how="journal",
        verified=False,
        join=BY_ORGANIZATION,
        opened="opened from the outage journal for an emergency call {when}",
        joined="an unverified call during a database outage was added to this open ticket",
        notes=((JOURNAL, note),),
        from_journal=True,
    )


def open_ticket(
    session: Session,
    *,
    arrival: Arrival,
    call_sid: str,
    line: str,
    caller: str | None,
    contact: Contact | None,
    in_hours: bool,
    repeat_window_minutes: int,
    at: datetime,
    may_exist: bool = True,
) -> TicketCall:
    """Put the call on its open urgent ticket, or open one; once per call (retried webhooks).

    `may_exist=False` says the call's first webhook is being answered (its call log row was
    new a moment ago): no earlier webhook can have put it on a ticket, so there is no look.
    Flushed in a savepoint, not committed: the webhook commits it at once (see `ivr.flow`).
    """

    def add() -> tuple[TicketCall, bool]:
        call, joined = _open_or_join(
            session,
            arrival,
            call_sid=call_sid,
            line=line,
            caller=caller,
            contact=contact,
            in_hours=in_hours,
            window_minutes=repeat_window_minutes,
            at=at,
        )
        when = "in working hours" if in_hours else "outside working hours"
        if joined:
            _note(session, call, CALL_JOINED, arrival.joined)
        else:
            _note(session, call, TICKET_OPENED, arrival.opened.format(when=when))
        for kind, detail in arrival.notes:
            _note(session, call, kind, detail)
        return call, joined

    return _once_per_call(session, call_sid, add, how=arrival.how, may_exist=may_exist)
