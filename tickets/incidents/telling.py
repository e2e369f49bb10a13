"""Keep everyone on an incident informed: support's updates and its resolution, texted once.

Each update is texted once to every caller on the incident's tickets who may be texted (the
one rule of `tickets.caller_texts`), through the outbox, in the update's own transaction. The
incident's row is locked first (`turns.lock_open`), so an update and a ticket joining take
turns: the update reaches the ticket's caller, or the caller hears the update on the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.helpdesk_settings import INCIDENT_RESOLVED, INCIDENT_UPDATED
from tickets import caller_texts, paging
from tickets.helpdesk import events as helpdesk
from tickets.incidents.documents import tell_helpdesk
from tickets.incidents.models import RESOLUTION, RESOLVED, UPDATE, Incident, IncidentUpdate
from tickets.incidents.pages import NotOpen
from tickets.incidents.turns import lock_open
from tickets.models import (
    ERASED,
    OPEN_STATUSES,
    OutboxMessage,
    StaffUser,
    Ticket,
    TicketCall,
    TicketEvent,
)

# An update is texted as it is written: two SMS parts at most.
MAX_UPDATE = 300


@dataclass(frozen=True)
class Caller:
    """A number that called about one of the incident's tickets, as its first call knew it."""

    number: str
    ticket_id: int
    call_sid: str
    recognised: bool


def clean_text(text: str | None, *, required: bool) -> str:
    """Return an update's text on one line, or raise ValueError when missing or too long."""
    cleaned = " ".join(str(text or "").split())
    if required and not cleaned:
        raise ValueError("The text of the update is required.")
    if len(cleaned) > MAX_UPDATE:
        raise ValueError(f"The text is too long for an SMS (at most {MAX_UPDATE} characters).")
    return cleaned


def callers(session: Session, incident: Incident) -> list[Caller]:
    """Return each number that called about the incident's tickets, once.

    A number counts as recognised when any of its calls recognised the caller.
    """
    rows = session.execute(
        select(TicketCall.caller, TicketCall.ticket_id, TicketCall.sid, TicketCall.recognised_by)
        .join(Ticket, Ticket.id == TicketCall.ticket_id)
        .where(Ticket.incident_id == incident.id, TicketCall.caller.is_not(None))
        .order_by(TicketCall.started_at, TicketCall.id)
    ).all()
    found: dict[str, Caller] = {}
    for number, ticket_id, sid, recognised_by in rows:
        known = found.get(number)
        if known is None or (recognised_by is not None and not known.recognised):
            found[number] = Caller(number, ticket_id, sid, recognised_by is not None)
    return [caller for caller in found.values() if caller.number != ERASED]


def _languages(session: Session, numbers: list[str], default: str) -> dict[str, str]:
    """Return the language each number was texted its ticket in (the language of its call)."""
    rows = session.execute(
        select(OutboxMessage.recipient, OutboxMessage.language).where(
            OutboxMessage.kind == caller_texts.CALLER_TICKET, OutboxMessage.recipient.in_(numbers)
        )
    ).all()
    languages = {number: default for number in numbers}
    languages.update(dict(rows))
    return languages


def text_callers(
    session: Session, *, incident: Incident, kind: str, detail: str, now: datetime
) -> int:
    """Queue one text of `kind` to every caller of the incident who may be texted; say how many."""
    rules = paging.policy()
    if not rules.caller_sms:
        return 0
    found = callers(session, incident)
    languages = _languages(session, [caller.number for caller in found], rules.staff_language)
    queued = 0
    for caller in found:
        why = caller_texts.why_not_textable(
            session,
            number=caller.number,
            recognised=caller.recognised,
            rules=rules.callers,
            now=now,
        )
        if why is not None:
            paging.note_not_texted(session, caller.ticket_id, why, caller.call_sid, now)
            continue
        session.add(
            OutboxMessage(
                ticket_id=caller.ticket_id,
                incident_id=incident.id,
                kind=kind,
                channel="sms",
                recipient=caller.number,
                language=languages[caller.number],
                detail=detail,
                idempotency_key=paging.new_key(),
                created_at=now,
                next_attempt_at=now,
            )
        )
        queued += 1
    return queued


@dataclass(frozen=True)
class Told:
    """What an update or a resolution wrote, and how many callers it texted."""

    update: IncidentUpdate
    texted: int


def post_update(
    session: Session, *, incident: Incident, text: str, author: str, now: datetime
) -> Told:
    """Add support's update: what new callers hear from now on, texted to every caller once."""
    said = clean_text(text, required=True)
    if not lock_open(session, incident, now):
        raise NotOpen(f"Incident {incident.number} is resolved.")
    update = IncidentUpdate(incident_id=incident.id, kind=UPDATE, text=said, author=author, at=now)
    session.add(update)
    kind = caller_texts.CALLER_INCIDENT
    texted = text_callers(session, incident=incident, kind=kind, detail=said, now=now)
    tell_helpdesk(session, incident, INCIDENT_UPDATED, now)
    return Told(update, texted)


def _resolve_ticket(
    session: Session, *, ticket: Ticket, incident: Incident, staff: StaffUser | None, now
) -> None:
    """Resolve an open ticket with its incident; its caller is told by the incident's text."""
    if ticket.status not in OPEN_STATUSES:
        return
    detail = f"{ticket.status} → resolved; with incident {incident.number}"
    ticket.status = "resolved"
    staff_id = staff.id if staff is not None else None
    session.add(
        TicketEvent(ticket_id=ticket.id, staff_id=staff_id, kind="status", detail=detail, at=now)
    )
    why = f"resolved with incident {incident.number}"
    paging.stop(session, ticket_id=ticket.id, state="cancelled", why=why, now=now)
    change = helpdesk.Change("status", detail)
    helpdesk.ticket_updated(session, ticket=ticket, staff=staff, changes=[change], at=now)


def resolve(
    session: Session,
    *,
    incident: Incident,
    text: str | None,
    author: str,
    now: datetime,
    staff: StaffUser | None = None,
    resolve_tickets: bool = False,
) -> Told:
    """Resolve the incident and tell every caller once; its tickets resolved too, or left open.

    A ticket resolved with it sends no "ticket resolved" text of its own: the incident's
    text says so. Tickets left open follow their own lifecycle from here.
    """
    said = clean_text(text, required=False)
    if not lock_open(session, incident, now):
        raise NotOpen(f"Incident {incident.number} is already resolved.")
    incident.status, incident.open_slot = RESOLVED, None
    incident.resolved_at, incident.resolved_by, incident.digest_due_at = now, author, None
    update = IncidentUpdate(
        incident_id=incident.id, kind=RESOLUTION, text=said, author=author, at=now
    )
    session.add(update)
    why = f"incident {incident.number} resolved"
    paging.stop(session, incident_id=incident.id, state="cancelled", why=why, now=now)
    if resolve_tickets:
        tickets = session.scalars(
            select(Ticket).where(Ticket.incident_id == incident.id).order_by(Ticket.id)
        ).all()
        for ticket in tickets:
            _resolve_ticket(session, ticket=ticket, incident=incident, staff=staff, now=now)
    session.flush()
    end = caller_texts.CALLER_INCIDENT_END
    texted = text_callers(session, incident=incident, kind=end, detail=said, now=now)
    tell_helpdesk(session, incident, INCIDENT_RESOLVED, now)
    return Told(update, texted)
