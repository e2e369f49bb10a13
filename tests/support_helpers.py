"""Helpers for the support dashboard and lifecycle tests: staff, tickets and signed-in clients."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta

from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from core.clock import utcnow
from tickets.models import Contact, Organization, StaffUser, Ticket, TicketCall, TicketEvent

PASSWORD = "correct horse battery"
CSRF_PATTERN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class IsolatedClient(FlaskClient):
    """A test client; each request gets its own app context, `g` and session, as in production."""


@functools.cache
def _password_hash() -> str:
    # A cheap hash keeps tests fast; accounts made by `create_staff` use the strong default.
    return generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def make_staff(
    session,
    *,
    email: str = "agent@otys.test",
    name: str = "Agent Smith",
    role: str = "agent",
    phone: str | None = None,
) -> StaffUser:
    """Create a staff account with the shared test password; with a phone, an engineer."""
    staff = StaffUser(
        email=email, name=name, role=role, password_hash=_password_hash(), phone=phone
    )
    session.add(staff)
    session.commit()
    return staff


def make_organization(session, name: str = "Acme Recruitment") -> Organization:
    """Create a client organisation."""
    organization = Organization(name=name)
    session.add(organization)
    session.commit()
    return organization


def make_ticket(
    session,
    *,
    organization: Organization | None = None,
    contact: Contact | None = None,
    created_at: datetime | None = None,
    **fields,
) -> Ticket:
    """Create a ticket (urgent phone outage unless told otherwise) and commit it."""
    values = {
        "priority": "urgent",
        "category": "bug",
        "status": "new",
        "source": "phone",
        "reason": "outage",
        "caller": "+31612345678",
        "in_hours": True,
        "created_at": created_at or utcnow(),
    }
    values.update(fields)
    ticket = Ticket(organization=organization, contact=contact, **values)
    session.add(ticket)
    session.commit()
    return ticket


def make_call_ticket(session, *, organization: Organization, sid: str = "CA" + "1" * 32) -> Ticket:
    """Create an urgent ticket with a contact, one recorded call and its timeline."""
    contact = Contact(
        organization=organization, name="Petra de Boer", email="petra@acme.test", role="super_user"
    )
    session.add(contact)
    ticket = make_ticket(
        session,
        organization=organization,
        contact=contact,
        description="De hele omgeving geeft een foutmelding",
    )
    started = ticket.created_at
    session.add(
        TicketCall(
            ticket_id=ticket.id,
            sid=sid,
            line="emergency",
            caller=ticket.caller,
            outcome="answered",
            started_at=started,
            duration=95,
            ring_seconds=12,
            answered_by="Support engineer 1",
            recording_url="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            recording_duration=80,
            transcription="the whole environment shows an error",
        )
    )
    for offset, kind, detail in [
        (0, "recognised", "caller ID: Petra de Boer"),
        (5, "triage", "1: major outage"),
        (9, "engineer_rung", "Support engineer 1, Support engineer 2"),
        (21, "engineer_accepted", "Support engineer 1"),
    ]:
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                kind=kind,
                detail=detail,
                call_sid=sid,
                at=started + timedelta(seconds=offset),
            )
        )
    session.commit()
    return ticket


def csrf_token(html: str) -> str:
    """Return the CSRF token rendered in a page."""
    match = CSRF_PATTERN.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client, email: str = "agent@otys.test", password: str = PASSWORD):
    """Sign in through the login form and return the response."""
    page = client.get("/support/login")
    token = csrf_token(page.get_data(as_text=True))
    return client.post(
        "/support/login",
        data={"email": email, "password": password, "csrf_token": token},
    )


def page_token(client, path: str = "/support") -> str:
    """Return a valid CSRF token of the signed-in session."""
    return csrf_token(client.get(path).get_data(as_text=True))


def token_for(session, staff: StaffUser) -> str:
    """Issue an API token for `staff` and commit it, as the command or page that issues one does."""
    from tickets.staff import issue_token

    token = issue_token(session, staff=staff)
    session.commit()
    return token
