"""Helpers for the incident tests: many client organisations, and their outage calls."""

from __future__ import annotations

from helpers import EMERGENCY_NUMBER
from sqlalchemy import select

from tickets import urgent
from tickets.incidents import Incident
from tickets.models import Contact, ContactPhone, Organization, Ticket


def super_phone(n: int) -> str:
    """Return the mobile number of organisation n's super user (NL, valid)."""
    return f"+3163{n:07d}"


def make_organisations(session, count: int, *, first: int = 1) -> list[Contact]:
    """Create `count` organisations, each with a super user on a Dutch mobile."""
    people = []
    for n in range(first, first + count):
        organization = Organization(name=f"Klant {n:02d}")
        person = Contact(
            organization=organization,
            name=f"Super {n:02d}",
            email=f"super{n}@klant{n}.example",
            role="super_user",
        )
        person.phones.append(ContactPhone(number=super_phone(n)))
        session.add(organization)
        people.append(person)
    session.commit()
    return people


def outage_call(phone, caller: str, *, key: str = "1"):
    """Call the emergency line as a known caller and press `key` at triage; the call goes on."""
    call = phone(to=EMERGENCY_NUMBER, from_=caller)
    root = call.press(call.start(), key)
    return call, root


def report(session, contact: Contact, *, sid: str, now, reason: str = "outage") -> Ticket:
    """Open (or join) the contact's urgent ticket and record its reason, as the webhooks do."""
    call = urgent.open_urgent_ticket(
        session,
        call_sid=sid,
        line="emergency",
        caller=contact.phones[0].number if contact.phones else None,
        contact=contact,
        in_hours=True,
        recognised_by="caller_id",
        repeat_window_minutes=30,
        now=now,
    )
    urgent.record_reason(session, call=call, reason=reason, now=now)
    return call.ticket


def all_incidents(session) -> list[Incident]:
    """Return every incident, oldest first, fresh from the database."""
    session.expire_all()
    return list(session.scalars(select(Incident).order_by(Incident.id)))
