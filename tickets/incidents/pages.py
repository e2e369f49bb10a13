"""Page a major incident once, like a ticket: its tickets stop paging on their own.

The incident's paging is a `Page` row of its own, stepped through the rota by the sender like
a ticket's. Acknowledging it (dashboard, API, SMS reply) stops it and acknowledges every ticket
in it. Tickets joining it later page nobody; once it is acknowledged, level 1 gets at most one
digest of newly joined organisations every `incidents.digest_minutes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.helpdesk_settings import INCIDENT_UPDATED
from tickets import paging
from tickets.helpdesk import events as helpdesk
from tickets.incidents.documents import tell_helpdesk
from tickets.incidents.models import ACKNOWLEDGED, DIGEST, JOINED, OPEN, Incident, IncidentUpdate
from tickets.incidents.rules import policy
from tickets.incidents.turns import lock_open
from tickets.models import (
    OPEN_STATUSES,
    OutboxMessage,
    Page,
    StaffUser,
    Ticket,
    TicketEvent,
)

# The state of a ticket's page once its incident is paged instead.
IN_INCIDENT = "in_incident"
# The message to level 1 listing organisations that joined an acknowledged incident.
INCIDENT_DIGEST = "incident_digest"


class NotOpen(ValueError):
    """The incident is resolved: it cannot be changed any more."""


def is_paged(session: Session, incident: Incident) -> bool:
    """Return whether the incident is (or was) paged: its tickets then page nobody."""
    return session.scalar(select(Page.id).where(Page.incident_id == incident.id)) is not None


def start(
    session: Session,
    *,
    incident: Incident,
    now: datetime,
    in_hours: bool = True,
    rules: paging.PagingPolicy | None = None,
) -> Page | None:
    """Page the rota about the incident, level 1 at once; nothing when paging is off.

    Out of hours (without `paging.out_of_hours`) the incident pages nobody, and its tickets
    wait for the opening summary as every ticket does.
    """
    rules = rules or paging.policy()
    if not rules.enabled or (not in_hours and not rules.out_of_hours):
        return None
    page = Page(incident_id=incident.id, state="active", level=0, round=1, started_at=now)
    session.add(page)
    paging.step(session, page=page, now=now, rules=rules)
    session.flush()
    return page


def _organisation_is_new(session: Session, incident: Incident, ticket: Ticket) -> bool:
    """Return whether no other ticket of the ticket's organisation is in the incident."""
    if ticket.organization_id is None:
        return False
    others = session.scalar(
        select(func.count(Ticket.id)).where(
            Ticket.incident_id == incident.id,
            Ticket.organization_id == ticket.organization_id,
            Ticket.id != ticket.id,
        )
    )
    return not others


def _acknowledge_ticket(
    session: Session, *, ticket: Ticket, incident: Incident, staff: StaffUser, via: str, now
) -> None:
    """Acknowledge a ticket of the acknowledged incident, as its acknowledger; tell its caller."""
    if ticket.acknowledged_at is not None or ticket.status not in OPEN_STATUSES:
        return
    ticket.acknowledged_at, ticket.acknowledged_by_id = now, staff.id
    detail = f"acknowledged with incident {incident.number} by {staff.name} ({via})"
    session.add(
        TicketEvent(
            ticket_id=ticket.id, staff_id=staff.id, kind="acknowledged", detail=detail, at=now
        )
    )
    paging.stop(session, ticket_id=ticket.id, state="acknowledged", why=detail, now=now)
    paging.tell_caller(session, ticket=ticket, kind=paging.CALLER_ACK, now=now)
    change = helpdesk.Change("acknowledged", detail)
    helpdesk.ticket_updated(session, ticket=ticket, staff=staff, changes=[change], at=now)


def absorb(session: Session, *, incident: Incident, ticket: Ticket, now: datetime) -> None:
    """Take a ticket that just joined into the incident's paging.

    A paged incident stands for its tickets: the ticket's own paging stops. A ticket joining
    an acknowledged incident is acknowledged with it, and a new organisation is put in the
    next digest to level 1.
    """
    why = f"part of incident {incident.number}"
    if is_paged(session, incident):
        paging.stop(session, ticket_id=ticket.id, state=IN_INCIDENT, why=why, now=now)
    if incident.acknowledged_at is None:
        return
    staff = incident.acknowledged_by
    if staff is not None:
        _acknowledge_ticket(
            session, ticket=ticket, incident=incident, staff=staff, via="incident", now=now
        )
    if incident.digest_due_at is None and _organisation_is_new(session, incident, ticket):
        last = incident.last_digest_at
        incident.digest_due_at = now if last is None else max(now, last + policy().digest)


def acknowledge(
    session: Session, *, incident: Incident, staff: StaffUser, via: str, now: datetime
) -> bool:
    """Acknowledge the incident: its paging stops, and so does that of every ticket in it.

    Everyone else who was paged for it is told who took it; each open ticket in it is
    acknowledged with it. Return whether this was the first acknowledgement.
    """
    if not lock_open(session, incident, now):
        raise NotOpen(f"Incident {incident.number} is resolved.")
    if incident.acknowledged_at is not None:
        return False
    incident.acknowledged_at, incident.acknowledged_by_id = now, staff.id
    said = f"{staff.name} ({via})"
    session.add(
        IncidentUpdate(
            incident_id=incident.id, kind=ACKNOWLEDGED, text=said, author=staff.email, at=now
        )
    )
    why = f"incident {incident.number} acknowledged by {staff.name}"
    paging.stop(session, incident_id=incident.id, state="acknowledged", why=why, now=now)
    paging.tell_the_paged(session, incident_id=incident.id, staff=staff, via=via)
    tickets = session.scalars(
        select(Ticket).where(Ticket.incident_id == incident.id).order_by(Ticket.id)
    ).all()
    for ticket in tickets:
        _acknowledge_ticket(
            session, ticket=ticket, incident=incident, staff=staff, via=via, now=now
        )
    session.flush()
    tell_helpdesk(session, incident, INCIDENT_UPDATED, now)
    return True


# ------------------------------------------------------------------ the digest


def due_digests(session: Session, now: datetime) -> Sequence[Incident]:
    """Return open incidents whose digest is due, locked so another instance skips them."""
    return session.scalars(
        select(Incident)
        .where(Incident.status == OPEN, Incident.digest_due_at <= now)
        .order_by(Incident.id)
        .with_for_update(skip_locked=True)
    ).all()


def _newly_joined(session: Session, incident: Incident) -> list[str]:
    """Return the organisations that joined since the acknowledgement or the last digest.

    Told in order of the timeline's entries, not their times: a join in the same second as
    the acknowledgement is still new. An organisation already in the incident is not new.
    """
    entries = session.execute(
        select(IncidentUpdate.kind, IncidentUpdate.text)
        .where(
            IncidentUpdate.incident_id == incident.id,
            IncidentUpdate.kind.in_((JOINED, ACKNOWLEDGED, DIGEST)),
        )
        .order_by(IncidentUpdate.id)
    ).all()
    told: set[str] = set()
    new: dict[str, None] = {}
    for kind, name in entries:
        if kind == JOINED:
            new.setdefault(name)
        else:
            told.update(new)
            new.clear()
    return [name for name in new if name not in told]


def send_digest(
    session: Session,
    *,
    incident: Incident,
    now: datetime,
    rules: paging.PagingPolicy | None = None,
) -> list[str]:
    """Send level 1 one digest of the organisations that joined since the last; return them."""
    rules = rules or paging.policy()
    names = _newly_joined(session, incident)
    engineers = paging.level_one(session, now, rules) if names else ()
    incident.digest_due_at, incident.last_digest_at = None, now
    if not names or not rules.enabled:
        return []
    detail = "\n".join(names)
    for engineer in engineers:
        paging.message_engineer(
            session,
            None,
            engineer,
            rules,
            kind=INCIDENT_DIGEST,
            incident_id=incident.id,
            detail=detail,
        )
    said = ", ".join(names) + " (to " + ", ".join(e.name for e in engineers) + ")"
    session.add(IncidentUpdate(incident_id=incident.id, kind=DIGEST, text=said, at=now))
    return names


# ------------------------------------------------------------------ SMS replies


def paged_incidents(session: Session, staff: StaffUser, *, now: datetime) -> list[Incident]:
    """Return the incidents this staff member was paged for within `paging.PAGED_WITHIN`."""
    addresses = [address for address in (staff.phone, staff.email) if address]
    ids = session.scalars(
        select(OutboxMessage.incident_id)
        .where(
            OutboxMessage.incident_id.is_not(None),
            OutboxMessage.kind.in_((paging.PAGE, INCIDENT_DIGEST)),
            (OutboxMessage.staff_id == staff.id) | OutboxMessage.recipient.in_(addresses),
            OutboxMessage.created_at >= now - paging.PAGED_WITHIN,
        )
        .distinct()
    ).all()
    if not ids:
        return []
    return list(
        session.scalars(select(Incident).where(Incident.id.in_(ids)).order_by(Incident.id.desc()))
    )
