"""Plain JSON-ready dicts of tickets, their calls and timeline, for the API and the dashboard."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy.orm import selectinload

from tickets.models import Contact, StaffUser, Ticket, TicketCall, TicketEvent

E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def ticket_loading_options(*, with_events: bool = False) -> list:
    """Return the loader options that let `ticket_to_dict` run without lazy loads."""
    options = [
        selectinload(Ticket.contact),
        selectinload(Ticket.organization),
        selectinload(Ticket.acknowledged_by),
        selectinload(Ticket.assigned_to),
        selectinload(Ticket.calls),
    ]
    if with_events:
        options.append(selectinload(Ticket.events).selectinload(TicketEvent.staff))
    return options


def iso(moment: datetime | None) -> str | None:
    """Return a moment as ISO 8601 in UTC with its offset, to the second."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def e164_or_none(number: str | None) -> str | None:
    """Return `number` if it is written in E.164, else None (withheld or odd caller IDs)."""
    return number if number and E164.fullmatch(number) else None


def staff_to_dict(staff: StaffUser | None) -> dict | None:
    """Return who a staff member is, or None."""
    if staff is None:
        return None
    return {"name": staff.name, "email": staff.email}


def contact_to_dict(contact: Contact | None) -> dict | None:
    """Return who a client contact is, or None."""
    if contact is None:
        return None
    return {"id": contact.id, "name": contact.name, "email": contact.email, "role": contact.role}


def call_to_dict(call: TicketCall) -> dict:
    """Return one call of a ticket."""
    return {
        "sid": call.sid,
        "line": call.line,
        "caller": e164_or_none(call.caller),
        "contact_id": call.contact_id,
        "reason": call.reason,
        "outcome": call.outcome,
        "started_at": iso(call.started_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
        "duration": call.duration,
        "ring_seconds": call.ring_seconds,
        "answered_by": call.answered_by,
        "recording_url": call.recording_url,
        "recording_duration": call.recording_duration,
        "transcription": call.transcription,
    }


def event_to_dict(event: TicketEvent) -> dict:
    """Return one entry of a ticket's timeline."""
    return {
        "at": iso(event.at),
        "kind": event.kind,
        "detail": event.detail,
        "call_sid": event.call_sid,
        "staff": staff_to_dict(event.staff),
    }


def ticket_to_dict(ticket: Ticket, *, with_events: bool = False) -> dict:
    """Return a ticket with its calls (and its timeline when `with_events`)."""
    data = {
        "number": ticket.number,
        "priority": ticket.priority,
        "category": ticket.category,
        "status": ticket.status,
        "source": ticket.source,
        "reason": ticket.reason,
        "description": ticket.description,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "caller": e164_or_none(ticket.caller),
        "contact": contact_to_dict(ticket.contact),
        "organization": ticket.organization.name if ticket.organization else None,
        "organization_id": ticket.organization_id,
        "in_hours": ticket.in_hours,
        "verified": ticket.verified,
        "from_journal": ticket.from_journal,
        "acknowledged_at": iso(ticket.acknowledged_at),
        "acknowledged_by": staff_to_dict(ticket.acknowledged_by),
        "assigned_to": staff_to_dict(ticket.assigned_to),
        "waiting_question": ticket.waiting_question,
        "release_week": ticket.release_week,
        "rate_approved_at": iso(ticket.rate_approved_at),
        "rating": ticket.rating,
        "rating_comment": ticket.rating_comment,
        "closed_at": iso(ticket.closed_at),
        # The major incident's number (its id), or None.
        "incident": ticket.incident_id,
        "calls": [call_to_dict(call) for call in ticket.calls],
    }
    if with_events:
        data["events"] = [event_to_dict(event) for event in ticket.events]
    return data
