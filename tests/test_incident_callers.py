"""What a caller hears while an incident is open, and the choices after it (issue 21).

Signed webhooks as Twilio sends them; the caller texts' rule decides the SMS promise (paging
and caller texts on, the twilio REST client pointed at the stand-in).
"""

from __future__ import annotations

from datetime import timedelta

import incident_helpers
import pytest
from helpers import EMERGENCY_NUMBER, dialled, spoken
from incident_helpers import (
    ENGINEERS,
    all_incidents,
    make_engineers,
    make_organisations,
    messaging_overrides,
    outage_call,
    super_phone,
)
from sqlalchemy import select

from tickets.callback_queue import QueuedCallBack
from tickets.incidents.telling import post_update
from tickets.models import Ticket, TicketCall

LANDLINE = "+31318555004"  # a Dutch fixed line: called back, never texted
NEWS = "De database wordt hersteld, verwacht binnen een uur."


# The stand-ins of Twilio and of a mail server, shared with the other incident tests.
twilio, mail = incident_helpers.twilio, incident_helpers.mail


@pytest.fixture
def settings_overrides(twilio, mail):
    return messaging_overrides(twilio, mail)


@pytest.fixture
def incident(session, clock, phone):
    """Three organisations' outage reports at 10:00 to 10:02 open incident 1; an update follows."""
    make_organisations(session, 6)
    make_engineers(session, clock.now)
    for n in (1, 2, 3):
        call, _ = outage_call(phone, super_phone(n))
        call.hang_up()
        clock.now += timedelta(minutes=1)
    [incident] = all_incidents(session)
    post_update(session, incident=incident, text=NEWS, author="Support", now=clock.now)
    session.commit()
    clock.now += timedelta(minutes=3)
    return incident


def ticket_of(session, number: str) -> Ticket:
    session.expire_all()
    call = session.scalar(select(TicketCall).where(TicketCall.caller == number))
    return call.ticket


def test_the_fourth_caller_hears_the_outage_is_known_with_their_ticket_number(
    phone, session, incident
):
    call, root = outage_call(phone, super_phone(4))
    ticket = ticket_of(session, super_phone(4))
    says = [verb for verb in root if verb.tag == "Say"]
    # The ticket number first, as digits in one <Say>, before anything else can happen.
    assert says[0].text == "Ticketnummer " + " ".join(ticket.number) + "."
    gather = root.find("Gather")
    heard = " ".join(say.text for say in gather.iter("Say"))
    assert "Deze storing is bekend sinds 10 uur 2; onze engineers werken eraan." in heard
    assert f"Laatste nieuws: {NEWS}" in heard
    assert "Updates krijgt u per sms." in heard
    assert "Toch een engineer spreken, toets 1. Teruggebeld worden, toets 2." in heard
    assert dialled(root) == []  # nobody rings unless the caller asks for it
    assert ticket.incident_id == incident.id


def test_the_callers_who_opened_the_incident_heard_nothing_of_it(phone, session, incident):
    third = ticket_of(session, super_phone(3))
    kinds = {event.kind for event in third.events}
    assert "incident_told" not in kinds and "engineer_rung" in kinds


def test_no_sms_promise_to_a_caller_who_may_not_be_texted(phone, session, incident):
    from tickets.models import Contact

    contact = session.scalar(select(Contact).where(Contact.name == "Super 05"))
    contact.phones[0].number = LANDLINE
    session.commit()
    _, root = outage_call(phone, LANDLINE)
    heard = spoken(root)
    assert "bekend sinds" in heard
    assert "sms" not in heard.lower()
    # A directory number may still be called back.
    assert "Teruggebeld worden, toets 2." in heard


@pytest.mark.parametrize("settings_overrides", [{"paging.caller_sms": False}])
def test_no_sms_promise_when_caller_texts_are_off(phone, session, incident):
    _, root = outage_call(phone, super_phone(4))
    assert "bekend sinds" in spoken(root) and "sms" not in spoken(root).lower()


def test_key_1_puts_the_caller_through_without_repeating_the_ticket_number(
    phone, session, incident
):
    call, root = outage_call(phone, super_phone(4))
    root = call.press(root, "1")
    assert sorted(dialled(root)) == sorted(ENGINEERS[:2])  # level 1: Anna and Bas
    assert spoken(root) == "Dit gesprek wordt opgenomen."


def test_key_2_queues_a_call_back_on_the_callers_own_number(phone, session, incident):
    call, root = outage_call(phone, super_phone(4))
    root = call.press(root, "2")
    assert "We bellen u terug op dit nummer" in spoken(root)
    assert root[-1].tag == "Hangup" and dialled(root) == []
    call.hang_up()
    [request] = session.scalars(select(QueuedCallBack)).all()
    ticket = ticket_of(session, super_phone(4))
    assert (request.ticket_id, request.number, request.status) == (
        ticket.id,
        super_phone(4),
        "waiting",
    )
    session.expire_all()
    [call_row] = [c for c in ticket.calls]
    assert call_row.outcome == "call_back"


def test_silence_says_goodbye_and_the_ticket_stays_in_the_incident(phone, session, incident):
    call, root = outage_call(phone, super_phone(4))
    root = call.silence(root)
    assert spoken(root) == "Uw ticket blijft open, u hoeft niets meer te doen. Tot ziens."
    assert root[-1].tag == "Hangup"
    call.hang_up()
    ticket = ticket_of(session, super_phone(4))
    assert ticket.status == "new" and ticket.incident_id == incident.id
    assert ticket.calls[-1].outcome == "informed"


def test_an_odd_key_asks_once_more(phone, session, incident):
    call, root = outage_call(phone, super_phone(4))
    root = call.press(root, "7")
    assert spoken(root).startswith("Die keuze bestaat niet. Toch een engineer spreken, toets 1.")
    root = call.press(root, "9")
    assert spoken(root).endswith("Tot ziens.") and root.find("Gather") is None


def test_an_urgent_bug_is_not_held_back_by_the_incident(phone, session, incident):
    _, root = outage_call(phone, super_phone(4), key="2")
    assert "bekend" not in spoken(root)
    assert sorted(dialled(root)) == sorted(ENGINEERS[:2])


def test_a_caller_after_the_resolution_hears_nothing_of_it(phone, session, clock, incident):
    from tickets.incidents.telling import resolve

    resolve(session, incident=incident, text="Opgelost.", author="Support", now=clock.now)
    session.commit()
    clock.now += timedelta(minutes=1)
    _, root = outage_call(phone, super_phone(4))
    assert "bekend" not in spoken(root) and dialled(root)


def test_an_english_caller_hears_it_in_english_with_supports_words(phone, session, clock, incident):
    call = phone(to="+31318584900", from_=super_phone(4))
    call.start()
    root = call.post("/voice/emergency/start?via=office&lang=en")
    root = call.press(root, "1")
    heard = spoken(root)
    assert "This outage is known since 10:02 a.m.; our engineers are working on it." in heard
    latest = [say for say in root.iter("Say") if NEWS in (say.text or "")]
    assert [say.get("language") for say in latest] == ["en-GB"]


def test_the_since_moment_is_said_as_a_person_would(phone, session, clock, incident):
    clock.now += timedelta(days=1)
    _, root = outage_call(phone, super_phone(4))
    assert "bekend sinds gisteren 10 uur 2;" in spoken(root)


def test_a_withheld_caller_on_pin_is_not_offered_a_call_back(phone, session, clock, incident):
    from helpers import SECRET_KEY

    from tickets.directory import hash_pin
    from tickets.models import Contact

    contact = session.scalar(select(Contact).where(Contact.name == "Super 05"))
    contact.pin_hash = hash_pin("13572468", secret=SECRET_KEY)
    session.commit()
    call = phone(to=EMERGENCY_NUMBER, from_="anonymous")
    root = call.press(call.start(), "13572468")
    root = call.press(root, "1")
    heard = spoken(root)
    assert "bekend sinds" in heard and "toets 2" not in heard
    assert "Toch een engineer spreken, toets 1. Of hang gerust op." in heard
    assert call.press(root, "2").find("Dial") is None  # 2 is no choice here: asked again
