"""Support's updates and the resolution reach every caller of an incident who may be texted,
exactly once; never an unverified or far-away caller. Through the API, over signed webhooks,
the twilio REST client against the stand-in, and the helpdesk's events.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import incident_helpers
import pytest
from helpdesk_receiver import new_secret
from incident_helpers import (
    ENGINEERS,
    all_incidents,
    make_engineers,
    make_organisations,
    messaging_overrides,
    outage_call,
    super_phone,
    texts_to,
)
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from support_helpers import token_for

from ivr.messaging.sender import tick
from tickets.helpdesk.models import HelpdeskDelivery
from tickets.incidents import note_outage_report, spoken_text
from tickets.incidents.telling import post_update
from tickets.models import Contact, ContactPhone, OutboxMessage, Ticket, TicketCall

FAR_AWAY = "+447911123456"  # a UK mobile: not among paging.caller_sms_countries
LANDLINE = "+31318555001"  # a Dutch landline: no SMS
COLLEAGUE = "+31640000002"  # a second caller of Klant 02


# The stand-ins of Twilio and of a mail server, shared with the other incident tests.
twilio, mail = incident_helpers.twilio, incident_helpers.mail


@pytest.fixture
def settings_overrides(twilio, mail):
    hook = {"name": "desk", "url": "https://helpdesk.example/hook", "secret": new_secret()}
    return messaging_overrides(twilio, mail, **{"helpdesk.webhooks": [hook]})


@pytest.fixture
def people(session, clock):
    people = make_organisations(session, 6)
    people[2].phones[0].number = FAR_AWAY
    people[3].phones[0].number = LANDLINE
    colleague = Contact(
        organization=people[1].organization,
        name="Key 02",
        email="key2@klant2.example",
        role="key_user",
    )
    colleague.phones.append(ContactPhone(number=COLLEAGUE))
    session.add(colleague)
    session.commit()
    staff = make_engineers(session, clock.now)
    return {"anna": staff["anna"], "token": token_for(session, staff["anna"])}


@pytest.fixture
def api(client, people):
    def call(method: str, path: str, body=None, *, token: str | None = people["token"]):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.open(f"/api/{path}", method=method, json=body, headers=headers)

    return call


CALLERS = {
    "textable": (super_phone(1), super_phone(2), COLLEAGUE),
    "not": (FAR_AWAY, LANDLINE),
}


def incident_with_callers(phone, clock) -> None:
    """Klant 01-04 report (03 from abroad, 04 from a landline), and a colleague of 02; hang up."""
    for number in (super_phone(1), super_phone(2), FAR_AWAY, LANDLINE, COLLEAGUE):
        call, _ = outage_call(phone, number)
        call.hang_up(duration="60")
        clock.now += timedelta(seconds=5)


def caller_texts(twilio) -> dict[str, list[str]]:
    return {number: texts_to(twilio, number) for number in CALLERS["textable"] + CALLERS["not"]}


def test_an_update_reaches_every_textable_caller_exactly_once(
    app, phone, session, clock, people, twilio, api
):
    incident_with_callers(phone, clock)
    tick(app)
    [incident] = all_incidents(session)
    assert len(incident.tickets) == 4
    before = caller_texts(twilio)
    assert [len(before[n]) for n in CALLERS["textable"]] == [1, 1, 1]  # their ticket numbers
    answer = api("POST", f"incidents/{incident.number}/updates", {"text": "Oorzaak gevonden."})
    assert answer.status_code == 201
    assert answer.get_json()["updates"][-1]["text"] == "Oorzaak gevonden."
    tick(app)
    tick(app)
    after = caller_texts(twilio)
    for number in CALLERS["textable"]:
        assert after[number][len(before[number]) :] == [
            f"OTYS support, storing (incident {incident.number}): Oorzaak gevonden."
        ]
    for number in CALLERS["not"]:
        assert after[number] == []
    far = session.scalar(select(Ticket).where(Ticket.caller == FAR_AWAY))
    notes = [e.detail for e in far.events if e.kind == "caller_not_texted"]
    assert notes and all(
        note.endswith("is not among paging.caller_sms_countries") for note in notes
    )
    assert spoken_text(all_incidents(session)[0]) == "Oorzaak gevonden."


def test_an_unverified_call_on_an_incident_ticket_is_never_texted(
    app, phone, session, clock, people, twilio, api
):
    incident_with_callers(phone, clock)
    ticket = session.scalar(select(Ticket).where(Ticket.caller == super_phone(1)))
    stranger = "+31655555555"  # a call served while the database was away: not recognised
    session.add(
        TicketCall(ticket_id=ticket.id, sid="CA" + "5" * 32, line="emergency", caller=stranger)
    )
    session.commit()
    [incident] = all_incidents(session)
    api("POST", f"incidents/{incident.number}/updates", {"text": "Herstel loopt."})
    tick(app)
    assert texts_to(twilio, stranger) == []


def test_a_caller_joining_later_gets_the_later_updates(
    app, phone, session, clock, people, twilio, api
):
    incident_with_callers(phone, clock)
    [incident] = all_incidents(session)
    api("POST", f"incidents/{incident.number}/updates", {"text": "Eerste bericht."})
    call, _ = outage_call(phone, super_phone(5))
    call.hang_up(duration="30")
    api("POST", f"incidents/{incident.number}/updates", {"text": "Tweede bericht."})
    tick(app)
    late = texts_to(twilio, super_phone(5))
    assert [text for text in late if "bericht" in text] == [
        f"OTYS support, storing (incident {incident.number}): Tweede bericht."
    ]


def test_resolving_with_the_tickets_tells_every_caller_once(
    app, phone, session, clock, people, twilio, api
):
    incident_with_callers(phone, clock)
    [incident] = all_incidents(session)
    tick(app)
    before = caller_texts(twilio)
    body = {"text": "Alles werkt weer.", "resolve_tickets": True}
    answer = api("POST", f"incidents/{incident.number}/resolve", body)
    assert answer.status_code == 200 and answer.get_json()["status"] == "resolved"
    tick(app)
    after = caller_texts(twilio)
    for number in CALLERS["textable"]:
        [told] = after[number][len(before[number]) :]
        assert "is verholpen. Alles werkt weer. Uw ticket 1" in told
        assert told.endswith("is daarmee opgelost.")
    assert all(after[number] == [] for number in CALLERS["not"])
    statuses = {t.status for t in session.scalars(select(Ticket))}
    assert statuses == {"resolved"}
    kinds = {m.kind for m in session.scalars(select(OutboxMessage))}
    assert "caller_resolved" not in kinds  # no second "ticket resolved" text
    assert api("POST", f"incidents/{incident.number}/resolve", {}).status_code == 409


def test_resolving_without_the_tickets_leaves_them_open_for_their_own_follow_up(
    app, phone, session, clock, people, twilio, api
):
    incident_with_callers(phone, clock)
    [incident] = all_incidents(session)
    api("POST", f"incidents/{incident.number}/resolve")
    tick(app)
    [told] = [t for t in texts_to(twilio, super_phone(1)) if "verholpen" in t]
    assert told.endswith("blijft open voor de verdere afhandeling.")
    assert "  " not in told  # no text given: no gap left
    ticket = session.scalar(select(Ticket).where(Ticket.caller == super_phone(1)))
    assert ticket.status == "in_progress" or ticket.status == "new"
    answer = api("POST", f"tickets/{ticket.number}/status", {"status": "resolved"})
    assert answer.status_code == 200
    tick(app)
    own = [
        t for t in texts_to(twilio, super_phone(1)) if f"uw ticket {ticket.number} is opgelost" in t
    ]
    assert len(own) == 1


def test_the_helpdesk_hears_of_opening_updates_and_resolution(
    app, phone, session, clock, people, api
):
    incident_with_callers(phone, clock)
    [incident] = all_incidents(session)
    api("POST", f"incidents/{incident.number}/updates", {"text": "Bezig."})
    api("POST", f"incidents/{incident.number}/resolve", {"text": "Klaar."})
    rows = session.scalars(
        select(HelpdeskDelivery)
        .where(HelpdeskDelivery.subject == f"incident:{incident.id}")
        .order_by(HelpdeskDelivery.id)
    ).all()
    types = [row.type for row in rows]
    assert types[0] == "incident.opened" and types[-1] == "incident.resolved"
    assert "incident.updated" in types
    last = json.loads(rows[-1].data)
    assert last["status"] == "resolved" and [u["text"] for u in last["updates"]] == [
        "Bezig.",
        "Klaar.",
    ]
    assert len(last["tickets"]) == 4


# ------------------------------------------------------------------ the API


def test_the_api_lists_incidents_newest_first_with_the_fixed_fields(
    app, phone, session, clock, people, api
):
    incident_with_callers(phone, clock)
    [first] = all_incidents(session)
    api("POST", f"incidents/{first.number}/resolve", {"text": "Opgelost."})
    answer = api("POST", "incidents", {"summary": "Inloggen lukt niet"})
    assert answer.status_code == 201
    second = answer.get_json()
    assert second["status"] == "open" and second["summary"] == "Inloggen lukt niet"
    listed = api("GET", "incidents").get_json()["incidents"]
    assert [item["number"] for item in listed] == [second["number"], first.number]
    item = listed[1]
    assert set(item) >= {
        "number",
        "status",
        "summary",
        "opened_at",
        "resolved_at",
        "tickets",
        "updates",
    }
    assert item["status"] == "resolved" and item["resolved_at"].endswith("+00:00")
    assert item["updates"] == [
        {
            "at": item["resolved_at"],
            "kind": "resolved",
            "text": "Opgelost.",
            "author": "anna@otys.test",
        }
    ]
    ticket = api("GET", f"tickets/{item['tickets'][0]}").get_json()
    assert ticket["incident"] == first.number
    assert (
        api("GET", "incidents?status=open").get_json()["incidents"][0]["number"] == second["number"]
    )


def test_the_api_refuses_what_it_cannot_do(app, session, clock, people, api):
    assert api("GET", "incidents", token=None).status_code == 401
    assert api("POST", "incidents", {"summary": ""}).status_code == 400
    assert api("POST", "incidents", {"summary": 7}).status_code == 400
    assert api("POST", "incidents", {"summary": "x" * 1001}).status_code == 400
    assert api("POST", "incidents", {"summary": "Storing"}).status_code == 201
    again = api("POST", "incidents", {"summary": "Nog een"})
    assert again.status_code == 409 and again.get_json()["code"] == "incident_open"
    [incident] = all_incidents(session)
    assert api("POST", f"incidents/{incident.number}/updates", {}).status_code == 400
    assert (
        api("POST", f"incidents/{incident.number}/updates", {"text": "x" * 301}).status_code == 400
    )
    assert api("POST", "incidents/999/updates", {"text": "x"}).status_code == 404
    assert api("GET", "incidents/99999999999").status_code == 404
    assert api("GET", "incidents?status=weird").status_code == 400
    assert api("GET", "incidents?per_page=0").status_code == 400
    bad = api("POST", f"incidents/{incident.number}/resolve", {"resolve_tickets": "yes"})
    assert bad.status_code == 400
    assert api("POST", f"incidents/{incident.number}/acknowledge").status_code == 200
    assert all_incidents(session)[0].acknowledged_by.email == "anna@otys.test"


def test_an_incident_opened_by_hand_takes_in_recent_reports_and_pages_once(
    app, phone, session, clock, people, api, twilio
):
    outage_call(phone, super_phone(1))
    outage_call(phone, super_phone(2))
    assert all_incidents(session) == []
    answer = api("POST", "incidents", {"summary": "Storing bij inloggen"})
    assert len(answer.get_json()["tickets"]) == 2
    tick(app)
    assert [len(texts_to(twilio, number)) for number in ENGINEERS] == [1, 1, 0]
    assert "Samenvatting: Storing bij inloggen" in texts_to(twilio, ENGINEERS[0])[0]


# ------------------------------------------------------------------ an update while a ticket joins


@pytest.fixture
def own_connections(database_url):
    engine = create_engine(database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.mark.skipif(
    "sqlite" in __import__("os").environ.get("IVR_TEST_DATABASE_URL", "sqlite"),
    reason="SQLite runs one writer at a time: nothing to interleave",
)
@pytest.mark.parametrize("first", ["update", "join"])
def test_an_update_posted_while_a_ticket_joins_reaches_its_caller_either_way(
    app, phone, session, clock, people, own_connections, first
):
    for n in (1, 2, 5):
        outage_call(phone, super_phone(n))
    late, _ = outage_call(phone, super_phone(6), key="2")  # its ticket exists, no outage yet
    ticket_id = session.scalar(select(Ticket.id).where(Ticket.caller == super_phone(6)))
    [incident] = all_incidents(session)
    updating, joining = Session(own_connections), Session(own_connections)

    def update():
        post_update(
            updating,
            incident=updating.get(type(incident), incident.id),
            text="Nieuws.",
            author="a",
            now=clock.now,
        )

    def join():
        ticket = joining.get(Ticket, ticket_id)
        ticket.reason = "outage"
        joining.flush()
        note_outage_report(joining, ticket=ticket, now=clock.now)

    steps = {"update": (update, updating), "join": (join, joining)}
    later = "join" if first == "update" else "update"
    with app.app_context():  # the service's paging and texting rules
        steps[first][0]()

    def run_later() -> None:
        with app.app_context():
            steps[later][0]()
            steps[later][1].commit()

    thread = threading.Thread(target=run_later)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()  # waits for the incident's row
    steps[first][1].commit()
    thread.join(timeout=30)
    heard = spoken_text(joining.get(type(incident), incident.id))
    texted = updating.scalars(
        select(OutboxMessage.recipient).where(OutboxMessage.kind == "caller_incident")
    ).all()
    updating.close(), joining.close()
    # Joined after the update: the caller heard it. Joined before: the caller is texted it.
    assert {super_phone(1), super_phone(2), super_phone(5)} <= set(texted)
    assert heard == "Nieuws." or super_phone(6) in texted
    assert (super_phone(6) in texted) == (first == "join")
