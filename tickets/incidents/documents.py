"""An incident as JSON: for the API, the command line and its helpdesk events."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.helpdesk import events as helpdesk
from tickets.incidents.models import RESOLUTION, UPDATE, Incident, IncidentUpdate
from tickets.models import Organization, Ticket
from tickets.serialize import iso, staff_to_dict

# What support said: the updates the API lists (and callers were texted).
SAID = (UPDATE, RESOLUTION)


def said_updates(session: Session, incident: Incident) -> list[IncidentUpdate]:
    """Return support's updates and the resolution of an incident, oldest first."""
    return list(
        session.scalars(
            select(IncidentUpdate)
            .where(IncidentUpdate.incident_id == incident.id, IncidentUpdate.kind.in_(SAID))
            .order_by(IncidentUpdate.at, IncidentUpdate.id)
        )
    )


def members(session: Session, incident: Incident) -> list[tuple[Ticket, str | None]]:
    """Return the incident's tickets with their organisation's name, oldest first."""
    rows = session.execute(
        select(Ticket, Organization.name)
        .outerjoin(Organization, Organization.id == Ticket.organization_id)
        .where(Ticket.incident_id == incident.id)
        .order_by(Ticket.id)
    ).all()
    return [(ticket, name) for ticket, name in rows]


def incident_to_dict(session: Session, incident: Incident) -> dict:
    """Return the incident as `GET /api/incidents` lists it."""
    tickets = members(session, incident)
    organizations = list(dict.fromkeys(name for _, name in tickets if name))
    return {
        "number": incident.number,
        "status": incident.status,
        "summary": incident.summary,
        "opened_at": iso(incident.opened_at),
        "opened_by": incident.opened_by,
        "acknowledged_at": iso(incident.acknowledged_at),
        "acknowledged_by": staff_to_dict(incident.acknowledged_by),
        "resolved_at": iso(incident.resolved_at),
        "tickets": [ticket.number for ticket, _ in tickets],
        "organizations": organizations,
        "updates": [
            {
                "at": iso(update.at),
                "kind": update.kind,
                "text": update.text,
                "author": update.author,
            }
            for update in said_updates(session, incident)
        ],
    }


def tell_helpdesk(session: Session, incident: Incident, type: str, at) -> None:
    """Write the helpdesk event `type` with the incident as the API shows it now."""
    if not helpdesk.policy().receivers_of(type):
        return
    session.flush()
    helpdesk.emit(
        session, type, f"incident:{incident.id}", incident_to_dict(session, incident), at=at
    )
