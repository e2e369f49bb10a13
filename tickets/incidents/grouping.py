"""Group outage reports into one major incident: open it (by itself or by hand), join tickets.

At most one incident is open at a time. The database holds that rule (`Incident.open_slot` is
unique), so two instances opening one at once end with one: the loser's insert fails inside a
savepoint and it joins the winner's. Deciding whether the threshold is reached takes turns
(`turns.take_turn`), so reports arriving together count each other. Everything here flushes;
the webhook, view or command that owns the unit of work commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from core.db import savepoint
from core.helpdesk_settings import INCIDENT_OPENED, INCIDENT_UPDATED
from tickets.incidents import pages
from tickets.incidents.documents import tell_helpdesk
from tickets.incidents.models import (
    AUTOMATIC,
    JOINED,
    OPEN,
    OPENED,
    THE_OPEN_SLOT,
    UPDATE,
    Incident,
    IncidentUpdate,
)
from tickets.incidents.rules import IncidentPolicy, policy
from tickets.incidents.turns import lock_open, take_turn
from tickets.models import OPEN_STATUSES, Organization, Ticket, TicketCall, TicketEvent

OUTAGE = "outage"
URGENT = "urgent"
# Timeline event of a ticket that became part of an incident.
INCIDENT_JOINED = "incident_joined"
MAX_SUMMARY = 1000


class AlreadyOpen(ValueError):
    """Another incident is open: post an update to it instead."""


def current_incident(session: Session) -> Incident | None:
    """Return the open incident, if any."""
    return session.scalar(select(Incident).where(Incident.open_slot == THE_OPEN_SLOT))


def spoken_text(incident: Incident) -> str:
    """Return what a new caller hears about the incident: the newest update, else the summary."""
    session = object_session(incident)
    newest = None
    if session is not None and incident.id is not None:
        newest = session.scalar(
            select(IncidentUpdate.text)
            .where(IncidentUpdate.incident_id == incident.id, IncidentUpdate.kind == UPDATE)
            .order_by(IncidentUpdate.at.desc(), IncidentUpdate.id.desc())
            .limit(1)
        )
    return (newest or incident.summary or "").strip()


def open_incident(
    session: Session, *, summary: str, opened_by: str, now: datetime
) -> Incident | None:
    """Add an open incident; None when another one is open (also one opened this very moment).

    The insert runs in a savepoint: when a concurrent transaction took the one open slot, only
    the savepoint is rolled back, and the caller's transaction goes on.
    """
    take_turn(session)
    incident = Incident(
        status=OPEN,
        open_slot=THE_OPEN_SLOT,
        summary=summary,
        opened_at=now,
        opened_by=opened_by,
        changed_at=now,
    )
    try:
        with savepoint(session):
            session.add(incident)
            session.flush()
    except IntegrityError:
        return None
    said = summary or "opened by itself: several organisations report a major outage"
    session.add(
        IncidentUpdate(incident_id=incident.id, kind=OPENED, text=said, author=opened_by, at=now)
    )
    return incident


def _reports(session: Session, since: datetime) -> list[tuple[int, int]]:
    """Return (ticket id, organisation id) of recent outage reports in no incident."""
    return list(
        session.execute(
            select(Ticket.id, Ticket.organization_id)
            .join(TicketCall, TicketCall.ticket_id == Ticket.id)
            .where(
                TicketCall.reason == OUTAGE,
                TicketCall.started_at >= since,
                Ticket.organization_id.is_not(None),
                Ticket.priority == URGENT,
                Ticket.status.in_(OPEN_STATUSES),
                Ticket.incident_id.is_(None),
            )
            .distinct()
        ).all()
    )


def join(session: Session, *, incident: Incident, ticket: Ticket, now: datetime) -> None:
    """Make the ticket part of the incident (it keeps its own lifecycle); once.

    The incident's row must be locked (`lock_open`) or new in this transaction.
    """
    if ticket.incident_id is not None:
        return
    ticket.incident_id = incident.id
    organization = session.get(Organization, ticket.organization_id or 0)
    name = organization.name if organization is not None else "?"
    session.add(
        IncidentUpdate(incident_id=incident.id, kind=JOINED, text=name, ticket_id=ticket.id, at=now)
    )
    detail = f"part of incident {incident.number}"
    session.add(TicketEvent(ticket_id=ticket.id, kind=INCIDENT_JOINED, detail=detail, at=now))
    session.flush()
    pages.absorb(session, incident=incident, ticket=ticket, now=now)


def _join_reports(
    session: Session, *, incident: Incident, ticket_ids: list[int], now: datetime
) -> None:
    """Join the tickets of earlier reports, skipping any another transaction is changing.

    Skipping locked rows keeps two triage transactions from waiting on each other: the
    transaction holding such a ticket joins it itself when it reports.
    """
    if not ticket_ids:
        return
    tickets = session.scalars(
        select(Ticket)
        .where(Ticket.id.in_(ticket_ids), Ticket.incident_id.is_(None))
        .order_by(Ticket.id)
        .with_for_update(skip_locked=True)
    ).all()
    for other in tickets:
        join(session, incident=incident, ticket=other, now=now)


def _begin(
    session: Session,
    *,
    incident: Incident,
    reports: list[int],
    now: datetime,
    in_hours: bool,
) -> Incident:
    """Page the new incident, join the reports' tickets, and tell the helpdesk."""
    pages.start(session, incident=incident, now=now, in_hours=in_hours)
    _join_reports(session, incident=incident, ticket_ids=reports, now=now)
    tell_helpdesk(session, incident, INCIDENT_OPENED, now)
    return incident


def _open_for_reports(
    session: Session, *, ticket: Ticket, now: datetime, rules: IncidentPolicy
) -> Incident | None:
    """Open an incident when enough organisations reported an outage; join their tickets."""
    take_turn(session)
    incident = current_incident(session)
    if incident is not None:
        return incident
    reports = _reports(session, now - rules.window)
    organizations = {organization_id for _, organization_id in reports}
    organizations.add(ticket.organization_id)
    if len(organizations) < rules.threshold:
        return None
    incident = open_incident(session, summary="", opened_by=AUTOMATIC, now=now)
    if incident is None:  # opened by hand this very moment: join that one
        return current_incident(session)
    ids = sorted({ticket_id for ticket_id, _ in reports} | {ticket.id})
    return _begin(session, incident=incident, reports=ids, now=now, in_hours=ticket.in_hours)


def note_outage_report(
    session: Session, *, ticket: Ticket, now: datetime, rules: IncidentPolicy | None = None
) -> Incident | None:
    """Note that the ticket's caller reports a major outage; return the incident it is now in.

    Called in the triage's transaction once the call's reason is recorded. The ticket joins
    the open incident, or opens one with the recent reports when `threshold` organisations
    reported within `window`. A ticket of no organisation (an unverified caller) joins none.
    Flushes, does not commit.
    """
    rules = rules or policy()
    if ticket.incident_id is not None:  # its incident; a resolved one is no longer news
        incident = session.get(Incident, ticket.incident_id)
        return incident if incident is not None and incident.is_open else None
    if (
        ticket.organization_id is None
        or ticket.priority != URGENT
        or ticket.status not in OPEN_STATUSES
    ):
        return None
    for _ in range(2):  # the open incident may be resolved while we look: then decide again
        incident = current_incident(session) or _open_for_reports(
            session, ticket=ticket, now=now, rules=rules
        )
        if incident is None:
            return None
        if lock_open(session, incident, now):
            if ticket.incident_id is None:
                join(session, incident=incident, ticket=ticket, now=now)
                tell_helpdesk(session, incident, INCIDENT_UPDATED, now)
            return incident
    return None


def open_by_hand(session: Session, *, summary: str, opened_by: str, now: datetime) -> Incident:
    """Open an incident with support's summary, before or after the first reports.

    Recent outage reports join it. Raises AlreadyOpen while another incident is open.
    """
    text = " ".join((summary or "").split())
    if not text:
        raise ValueError("The summary is required.")
    if len(text) > MAX_SUMMARY:
        raise ValueError(f"The summary is too long (at most {MAX_SUMMARY} characters).")
    incident = open_incident(session, summary=text, opened_by=opened_by, now=now)
    if incident is None:
        raise AlreadyOpen(
            f"Incident {current_incident(session).number} is open: post an update to it."
        )
    reports = sorted({ticket_id for ticket_id, _ in _reports(session, now - policy().window)})
    return _begin(session, incident=incident, reports=reports, now=now, in_hours=True)
