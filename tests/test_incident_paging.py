"""An incident is paged once, like a ticket; acknowledging it stops every page of it.

Messages go through the twilio REST client to the stand-in and through SMTP to a local
server; the clock is moved, never slept.
"""

from __future__ import annotations

from datetime import timedelta

import incident_helpers
import pytest
from incident_helpers import (
    ANNA,
    BAS,
    CARLA,
    ENGINEERS,
    all_incidents,
    make_engineers,
    make_organisations,
    messaging_overrides,
    outage_call,
    reply_sms,
    super_phone,
    texts_to,
)
from sqlalchemy import select

from ivr.messaging.sender import tick
from tickets.models import OutboxMessage, Page, Ticket

# The stand-ins of Twilio and of a mail server, shared with the other incident tests.
twilio, mail = incident_helpers.twilio, incident_helpers.mail


@pytest.fixture
def settings_overrides(twilio, mail):
    return messaging_overrides(twilio, mail)


@pytest.fixture
def people(session, clock):
    make_organisations(session, 22)
    return make_engineers(session, clock.now)


def three_report(phone, clock):
    """Three organisations report while their calls still ring; return the calls."""
    calls = []
    for n in (1, 2, 3):
        call, _ = outage_call(phone, super_phone(n))
        calls.append(call)
        clock.now += timedelta(seconds=2)
    return calls


def engineer_sms(twilio) -> dict[str, list[str]]:
    return {number: texts_to(twilio, number) for number in ENGINEERS}


def test_each_level_one_engineer_gets_one_page_for_the_incident(
    app, phone, session, clock, people, twilio, mail
):
    calls = three_report(phone, clock)
    for call in calls:  # nobody took them: a ticket alone would page now
        call.hang_up(duration="80")
    tick(app)
    [incident] = all_incidents(session)
    sent = engineer_sms(twilio)
    assert [len(sent[ANNA]), len(sent[BAS]), len(sent[CARLA])] == [1, 1, 0]
    assert f"incident {incident.number}: 3 organisatie(s)" in sent[ANNA][0]
    assert "Klant 01, Klant 02, Klant 03" in sent[ANNA][0]
    subjects = [message["Subject"] for message in mail.to("anna@otys.test")]
    assert subjects == [f"Grote storing, incident {incident.number}: 3 organisatie(s)"]
    ticket_pages = session.scalars(select(Page).where(Page.ticket_id.is_not(None))).all()
    assert ticket_pages == []


def test_a_ticket_paged_before_the_incident_stops_paging_when_it_joins(
    app, phone, session, clock, people, twilio
):
    first, _ = outage_call(phone, super_phone(1))
    first.hang_up(duration="80")  # its ticket pages level 1 by itself
    tick(app)
    assert len(texts_to(twilio, ANNA)) == 1
    for n in (2, 3):
        outage_call(phone, super_phone(n))
    page = session.scalar(select(Page).where(Page.ticket_id.is_not(None)))
    session.refresh(page)
    assert page.state == "in_incident"
    assert len(texts_to(twilio, ANNA)) == 1
    tick(app)
    assert len(texts_to(twilio, ANNA)) == 2  # the ticket's page, then the incident's
    clock.now += timedelta(minutes=6)  # the ticket's level 2 would be due, and the incident's
    tick(app)
    [to_carla] = texts_to(twilio, CARLA)
    assert "grote storing, incident" in to_carla


def test_an_unacknowledged_incident_escalates_like_a_ticket(
    app, phone, session, clock, people, twilio
):
    three_report(phone, clock)
    tick(app)
    clock.now += timedelta(minutes=5, seconds=1)
    tick(app)
    assert len(texts_to(twilio, CARLA)) == 1 and "incident" in texts_to(twilio, CARLA)[0]


def test_an_sms_ok_acknowledges_the_incident_and_every_ticket_in_it(
    app, client, phone, session, clock, people, twilio, mail
):
    three_report(phone, clock)
    tick(app)
    [incident] = all_incidents(session)
    answer = reply_sms(client, ANNA, "ok")
    assert answer.startswith(f"Incident {incident.number} is op uw naam bevestigd")
    [incident] = all_incidents(session)
    assert incident.acknowledged_by.name == "Anna Jansen"
    tickets = session.scalars(select(Ticket).where(Ticket.incident_id == incident.id)).all()
    assert {ticket.acknowledged_by_id for ticket in tickets} == {people["anna"].id}
    tick(app)
    assert texts_to(twilio, BAS)[-1].endswith(
        "bevestigd door Anna Jansen (sms). U hoeft niets meer te doen."
    )
    assert len(texts_to(twilio, ANNA)) == 1  # no notice to herself
    clock.now += timedelta(minutes=30)
    tick(app)
    assert texts_to(twilio, CARLA) == []
    assert reply_sms(client, BAS, "ok").startswith(f"Incident {incident.number} was al bevestigd")


def test_an_engineer_not_paged_for_the_incident_cannot_acknowledge_it_by_sms(
    app, client, phone, session, clock, people, twilio
):
    three_report(phone, clock)
    tick(app)
    [incident] = all_incidents(session)
    assert reply_sms(client, CARLA, "ok").startswith("Er is geen ticket om te bevestigen")
    answer = reply_sms(client, CARLA, f"I{incident.number}")
    assert answer.startswith(f"U bent niet opgeroepen voor incident {incident.number}")
    assert all_incidents(session)[0].acknowledged_at is None


def test_ok_with_a_ticket_and_the_incident_waiting_asks_which(
    app, client, phone, session, clock, people, twilio
):
    bug, _ = outage_call(phone, super_phone(20), key="2")
    bug.hang_up(duration="80")
    three_report(phone, clock)
    tick(app)
    [incident] = all_incidents(session)
    answer = reply_sms(client, ANNA, "ok")
    assert f"I{incident.number}" in answer and "Antwoord met het nummer" in answer
    assert all_incidents(session)[0].acknowledged_at is None
    answer = reply_sms(client, ANNA, f"i{incident.number}")
    assert answer.startswith(f"Incident {incident.number} is op uw naam bevestigd")
    bug_ticket = session.scalar(select(Ticket).where(Ticket.reason == "urgent_bug"))
    assert bug_ticket.acknowledged_at is None  # an urgent bug is not held in the incident


def test_tickets_joining_an_acknowledged_incident_page_nobody_and_come_in_a_digest(
    app, client, phone, session, clock, people, twilio, mail
):
    three_report(phone, clock)
    tick(app)
    reply_sms(client, ANNA, "ok")
    tick(app)
    before = {number: len(texts_to(twilio, number)) for number in ENGINEERS}
    call, _ = outage_call(phone, super_phone(4))
    call.hang_up(duration="30")
    tick(app)  # the first digest after the acknowledgement goes out at once
    digest = texts_to(twilio, ANNA)[-1]
    assert "nog 1 organisatie(s) melden de storing: Klant 04. In totaal 4." in digest
    for n in (5, 6):
        call, _ = outage_call(phone, super_phone(n))
        call.hang_up(duration="30")
    outage_call(phone, super_phone(5))  # a second call of Klant 05 is no new organisation
    tick(app)
    assert len(texts_to(twilio, ANNA)) == before[ANNA] + 1  # within digest_minutes: waits
    clock.now += timedelta(minutes=15)
    tick(app)
    assert (
        "nog 2 organisatie(s) melden de storing: Klant 05, Klant 06. In totaal 6."
        in (texts_to(twilio, ANNA)[-1])
    )
    assert len(texts_to(twilio, BAS)) == before[BAS] + 2
    assert texts_to(twilio, CARLA) == []
    joined = session.scalars(select(Ticket).where(Ticket.incident_id.is_not(None))).all()
    assert all(ticket.acknowledged_at is not None for ticket in joined)


def test_twenty_organisations_in_thirty_seconds_page_each_engineer_at_most_three_times(
    app, client, phone, session, clock, people, twilio, mail
):
    calls = []
    for n in range(1, 21):
        call, _ = outage_call(phone, super_phone(n))
        calls.append(call)
        clock.now += timedelta(seconds=1.5)
        tick(app)
    clock.now += timedelta(seconds=50)
    for call in calls:  # every call rang busy phones, then ended
        call.hang_up(duration="80")
    tick(app)
    reply_sms(client, BAS, "1")
    tick(app)
    clock.now += timedelta(minutes=20)
    tick(app)
    pages = {number: len(texts_to(twilio, number)) for number in ENGINEERS}
    assert pages[ANNA] <= 3 and pages[BAS] <= 3 and pages[CARLA] == 0, pages
    mails = {who: len(mail.to(f"{who}@otys.test")) for who in ("anna", "bas")}
    assert mails["anna"] <= 3 and mails["bas"] <= 3, mails
    [incident] = all_incidents(session)
    assert len(incident.tickets) == 20
    engineer_messages = session.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient.in_(ENGINEERS))
    ).all()
    assert {message.incident_id for message in engineer_messages} == {incident.id}
