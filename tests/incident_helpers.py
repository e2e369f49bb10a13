"""Helpers for the incident tests: many client organisations, and their outage calls."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import AUTH_TOKEN, EMERGENCY_NUMBER
from message_servers import MailServer
from sqlalchemy import select

from bench.standin import TwilioStandIn
from tickets.incidents import Incident
from tickets.models import Contact, ContactPhone, Organization, Ticket
from tickets.urgent import opening, timeline


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
    call = opening.open_ticket(
        session,
        arrival=opening.recognised(contact, "caller_id"),
        call_sid=sid,
        line="emergency",
        caller=contact.phones[0].number if contact.phones else None,
        contact=contact,
        in_hours=True,
        repeat_window_minutes=30,
        at=now,
    )
    session.commit()  # the first webhook commits the ticket at once
    timeline.record_reason(session, call=call, reason=reason, now=now)
    return call.ticket


def all_incidents(session) -> list[Incident]:
    """Return every incident, oldest first, fresh from the database."""
    session.expire_all()
    return list(session.scalars(select(Incident).order_by(Incident.id)))


# ------------------------------------------------------------------ paging and texts

ACCOUNT_SID = "AC" + "6" * 32
SMS_FROM = "+31612340000"
ANNA, BAS, CARLA = "+31620000001", "+31620000002", "+31620000003"
ENGINEERS = (ANNA, BAS, CARLA)


@pytest.fixture(scope="module")
def twilio():
    """A stand-in of Twilio's REST API (Messages and Calls) for the incident tests' account.

    A fixture: a test module binds it with `mail` (`twilio, mail = incident_helpers.twilio,
    incident_helpers.mail`) and passes both to `messaging_overrides`.
    """
    standin = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def mail():
    """A local SMTP server that keeps what it receives (a fixture, like `twilio`)."""
    server = MailServer().start()
    yield server
    server.stop()


def messaging_overrides(twilio, mail, **more) -> dict:
    """Return settings that send SMS to the stand-in and e-mail to the mail server."""
    twilio.sent.clear()
    twilio.fail_next = twilio.requests = 0
    mail.messages.clear()
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_url": twilio.url,
        "paging.sms_from": SMS_FROM,
        "paging.smtp_url": mail.url,
        **more,
    }


def make_engineers(session, now) -> dict:
    """Create Anna and Bas on level 1 and Carla on level 2, for a week around `now`."""
    from support_helpers import make_staff

    from tickets.rota import add_override

    people = {
        "anna": make_staff(session, email="anna@otys.test", name="Anna Jansen", phone=ANNA),
        "bas": make_staff(session, email="bas@otys.test", name="Bas de Vries", phone=BAS),
        "carla": make_staff(session, email="carla@otys.test", name="Carla Smit", phone=CARLA),
    }
    week = (now - timedelta(days=1), now + timedelta(days=6))
    for level, who in ((1, "anna"), (1, "bas"), (2, "carla")):
        add_override(
            session, level=level, staff=people[who], starts_at=week[0], ends_at=week[1], added_by=""
        )
    return people


def reply_sms(client, from_: str, body: str) -> str | None:
    """Send an engineer's SMS reply, signed; return the answer's text."""
    from helpers import PUBLIC_URL, parse_twiml, sign

    data = {"MessageSid": "SM" + "7" * 32, "From": from_, "To": SMS_FROM, "Body": body}
    signature = sign(PUBLIC_URL + "/sms/incoming", data)
    answer = client.post("/sms/incoming", data=data, headers={"X-Twilio-Signature": signature})
    message = parse_twiml(answer).find("Message")
    return message.text if message is not None else None


def texts_to(twilio, number: str) -> list[str]:
    """Return the bodies of the SMS sent to `number`, in order."""
    return [sms.body for sms in twilio.to(number)]
