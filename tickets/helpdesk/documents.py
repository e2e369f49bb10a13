"""Build the JSON document of a helpdesk event, at its first attempt, as the API shapes it.

A ticket's or call's event holds the columns of the rows as they were at the event
(`tickets.helpdesk.events.state_of`); here they become the API's ticket and call shapes
(`tickets.serialize`), with the references (contact, organisation, staff) looked up now. Other
events (incidents) hold their document already and are sent as they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from core.helpdesk_settings import CALL_ENDED, TICKET_CREATED, TICKET_UPDATED
from tickets.helpdesk import events
from tickets.helpdesk.models import HelpdeskDelivery
from tickets.models import Contact, Organization, StaffUser, Ticket, TicketCall
from tickets.serialize import call_to_dict, iso, staff_to_dict, ticket_to_dict


def _ticket(session: Session, state: dict, calls: list[dict]) -> dict:
    """Return the API's ticket from its columns at the event and those of its calls."""
    ticket = events.restore(Ticket, state)
    # Set on a detached object that is never added to the session: nothing is written.
    ticket.contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    ticket.organization = (
        session.get(Organization, ticket.organization_id) if ticket.organization_id else None
    )
    ticket.acknowledged_by = _staff(session, ticket.acknowledged_by_id)
    ticket.assigned_to = _staff(session, ticket.assigned_to_id)
    ticket.calls = [events.restore(TicketCall, call) for call in calls]
    return ticket_to_dict(ticket)


def _staff(session: Session, staff_id: int | None) -> StaffUser | None:
    return session.get(StaffUser, staff_id) if staff_id else None


def _ticket_event(session: Session, data: dict) -> dict:
    """ticket.created: the ticket with its calls, as at the event."""
    return _ticket(session, data["ticket"], data.get("calls", []))


def _ticket_update(session: Session, data: dict) -> dict:
    """ticket.updated: the ticket as it became, and what changed, by whom, when."""
    document = _ticket(session, data["ticket"], data.get("calls", []))
    document["changes"] = data.get("changes", [])
    document["changed_by"] = staff_to_dict(_staff(session, data.get("by_id")))
    return document


def _call_event(session: Session, data: dict) -> dict:
    """call.ended: the call (outcome, who answered, the recording) and its ticket without calls."""
    document = call_to_dict(events.restore(TicketCall, data["call"]))
    ticket = _ticket(session, data["ticket"], [])
    ticket.pop("calls", None)
    document["ticket"] = ticket
    return document


# Types whose stored data is finished here; any other type's data is its document already.
FINISHERS: dict[str, Callable[[Session, dict], dict]] = {
    CALL_ENDED: _call_event,
    TICKET_CREATED: _ticket_event,
    TICKET_UPDATED: _ticket_update,
}


def envelope(type: str, occurred_at: datetime, data: dict) -> str:
    """Return the body of an event: `type`, `timestamp` and `data`, as compact JSON."""
    document = {"type": type, "timestamp": iso(occurred_at), "data": data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def render(session: Session, row: HelpdeskDelivery) -> str:
    """Return the body a delivery sends, building it (once) from what the event held."""
    if row.body is not None:
        return row.body
    data = json.loads(row.data or "{}")
    finish = FINISHERS.get(row.type)
    return envelope(row.type, row.occurred_at, finish(session, data) if finish else data)
