"""Group outage reports into one major incident: open it (by itself or by hand), join tickets.

At most one incident is open at a time. The database holds that rule (`Incident.open_slot` is
unique), so two instances opening one at once end with one: the loser's insert fails inside a
savepoint and it joins the winner's. Deciding whether the threshold is reached takes turns
(a transaction-scoped advisory lock on PostgreSQL; SQLite writes one transaction at a time),
so reports arriving together count each other. Everything here flushes; the webhook, view or
command that owns the unit of work commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from core.settings import Incidents as IncidentSettings
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
from tickets.models import OPEN_STATUSES, Organization, Ticket, TicketCall, TicketEvent

OUTAGE = "outage"
URGENT = "urgent"
# Timeline event of a ticket that became part of an incident.
INCIDENT_JOINED = "incident_joined"
# Any fixed number: PostgreSQL lets one transaction at a time decide whether to open one.
GROUPING_LOCK = 720_184_921


@dataclass(frozen=True)
class IncidentPolicy:
    """The `[incidents]` settings the ticket side needs."""

    threshold: int = 3
    window: timedelta = timedelta(minutes=10)
    digest: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: IncidentSettings) -> IncidentPolicy:
        """Return the policy of the `[incidents]` settings."""
        return cls(
            threshold=settings.threshold,
            window=timedelta(minutes=settings.window_minutes),
            digest=timedelta(minutes=settings.digest_minutes),
        )


def policy() -> IncidentPolicy:
    """Return the running service's incident policy (the defaults outside a configured app)."""
    if has_app_context():
        configured = current_app.config.get("INCIDENTS")
        if configured is not None:
            return configured
    return IncidentPolicy()


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


def lock_open(session: Session, incident_id: int, now: datetime) -> bool:
    """Take the incident's row lock (SQLite: the write lock) if it is still open; say whether.

    Joins, updates, acknowledging and resolving all start here, so they take turns: an update
    sees every ticket that joined before it, and a ticket joining after it hears it.
    """
    changed = session.execute(
        update(Incident)
        .where(Incident.id == incident_id, Incident.status == OPEN)
        .values(changed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(changed)


def _take_turn(session: Session) -> None:
    """Wait for any other transaction deciding whether to open an incident.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: its one write lock, taken by a
    write that changes nothing; it also begins the transaction, so the savepoint below is
    nested in it (a savepoint outside one would commit on release).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": GROUPING_LOCK})
    else:
        session.execute(
            update(Incident)
            .where(Incident.open_slot == THE_OPEN_SLOT)
            .values(changed_at=Incident.changed_at)
            .execution_options(synchronize_session=False)
        )


def open_incident(
    session: Session, *, summary: str, opened_by: str, now: datetime
) -> Incident | None:
    """Open an incident; None when another one is open (also one opened at this very moment).

    The insert runs in a savepoint: when a concurrent transaction took the one open slot, only
    the savepoint is rolled back, and the caller's transaction goes on.
    """
    _take_turn(session)
    incident = Incident(
        status=OPEN,
        open_slot=THE_OPEN_SLOT,
        summary=summary,
        opened_at=now,
        opened_by=opened_by,
        changed_at=now,
    )
    try:
        with session.begin_nested():
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
    """Make the ticket part of the incident (it keeps its own lifecycle); once."""
    if ticket.incident_id is not None:
        return
    ticket.incident_id = incident.id
    organization = (
        session.get(Organization, ticket.organization_id) if ticket.organization_id else None
    )
    name = organization.name if organization is not None else "?"
    session.add(
        IncidentUpdate(incident_id=incident.id, kind=JOINED, text=name, ticket_id=ticket.id, at=now)
    )
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            kind=INCIDENT_JOINED,
            detail=f"part of incident {incident.number}",
            at=now,
        )
    )
    session.flush()


def _join_reports(
    session: Session, *, incident: Incident, ticket_ids: list[int], now: datetime
) -> None:
    """Join the tickets of earlier reports; one another transaction is changing waits for it.

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


def _open_for_reports(
    session: Session, *, ticket: Ticket, now: datetime, rules: IncidentPolicy
) -> Incident | None:
    """Open an incident when enough organisations reported an outage; join their tickets."""
    _take_turn(session)
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
    others = sorted({ticket_id for ticket_id, _ in reports} - {ticket.id})
    _join_reports(session, incident=incident, ticket_ids=others, now=now)
    return incident


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
    if ticket.incident_id is not None:
        return session.get(Incident, ticket.incident_id)
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
        if lock_open(session, incident.id, now):
            join(session, incident=incident, ticket=ticket, now=now)
            return incident
        session.expire(incident)
    return None
