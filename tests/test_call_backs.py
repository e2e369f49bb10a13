"""Call-back through the line: queued by the caller, started from the ticket (dashboard, API),
placed by the sender through Twilio's Calls API (the twilio REST client against the stand-in),
the engineer rung and screened first, then the caller dialled showing the line's number.

The stand-in only takes the call; the tests then request its TwiML as Twilio would, signed.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import incident_helpers
import pytest
from helpers import EMERGENCY_NUMBER, PUBLIC_URL, Call, dialled, spoken
from incident_helpers import (
    ANNA,
    BAS,
    all_incidents,
    make_engineers,
    make_organisations,
    messaging_overrides,
    outage_call,
    super_phone,
)
from sqlalchemy import select
from support_helpers import page_token, sign_in, token_for

from ivr.messaging.sender import tick
from tickets.callback_queue import QueuedCallBack
from tickets.models import OutboxMessage, Ticket, TicketCall

CALLER = super_phone(4)


# The stand-ins of Twilio and of a mail server, shared with the other incident tests.
twilio, mail = incident_helpers.twilio, incident_helpers.mail


@pytest.fixture
def settings_overrides(twilio, mail):
    with twilio.lock:
        twilio.calls.clear()
        twilio.fail_calls = 0
    return messaging_overrides(twilio, mail)


@pytest.fixture
def people(session, clock):
    make_organisations(session, 5)
    return make_engineers(session, clock.now)


@pytest.fixture
def asked(phone, session, clock, people) -> Ticket:
    """Three outage reports open an incident; the fourth caller asks to be called back."""
    from datetime import timedelta

    for n in (1, 2, 3):
        call, _ = outage_call(phone, super_phone(n))
        call.hang_up()
    clock.now += timedelta(minutes=2)
    call, root = outage_call(phone, CALLER)
    call.press(root, "2")
    call.hang_up()
    session.expire_all()
    return session.scalar(select(TicketCall).where(TicketCall.caller == CALLER)).ticket


def path_of(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    return parts.path + (f"?{parts.query}" if parts.query else "")


def engineer_leg(client, placed) -> Call:
    """Return the engineer's leg of a placed call, as Twilio requests its TwiML."""
    leg = Call(client, to=placed.to, from_=placed.from_, sid=placed.sid)
    leg.base.update(Direction="outbound-api", CallStatus="in-progress")
    return leg


def start_from_dashboard(client, ticket: Ticket, **data):
    data["csrf_token"] = page_token(client, f"/support/tickets/{ticket.number}")
    return client.post(f"/support/tickets/{ticket.number}/call-back", data=data)


def test_a_call_back_rings_the_engineer_first_and_dials_the_caller_showing_the_line(
    app, client, session, twilio, asked
):
    sign_in(client, "anna@otys.test")
    answer = start_from_dashboard(client, asked)
    assert answer.status_code == 303
    assert twilio.calls == []  # the sender places it, not the click
    tick(app)
    [placed] = twilio.calls
    assert (placed.to, placed.from_) == (ANNA, EMERGENCY_NUMBER)
    [asked_for] = session.scalars(select(QueuedCallBack.id)).all()
    assert path_of(placed.url) == f"/voice/call-back/engineer?request={asked_for}"
    assert path_of(placed.status_callback) == f"/voice/call-back/status?request={asked_for}"
    assert path_of(placed.fallback_url) == "/voice/call-back/fallback"

    leg = engineer_leg(client, placed)
    screening = leg.post(path_of(placed.url))
    assert spoken(screening) == (
        "Terugbellen voor ticket " + " ".join(asked.number) + ": Klant 04, Super 04. "
        "Toets 1 om Super 04 nu te bellen."
    )
    assert dialled(screening) == []  # nobody is dialled before the engineer accepts
    connect = leg.press(screening, "1")
    dial = connect.find("Dial")
    assert dialled(connect) == [CALLER]
    # The caller sees the emergency line's number, never the engineer's own.
    assert dial.get("callerId") == EMERGENCY_NUMBER != ANNA
    assert dial.get("record") == "record-from-answer-dual"

    caller_leg = Call(client, to=CALLER, from_=EMERGENCY_NUMBER)
    caller_leg.base.update(Direction="outbound-dial", ParentCallSid=placed.sid)
    greeting = caller_leg.post(dial.find("Number").get("url"))
    assert spoken(greeting) == (
        "U wordt teruggebeld door OTYS support, over ticket "
        + " ".join(asked.number)
        + ". Dit gesprek wordt opgenomen."
    )
    leg.post(
        dial.get("recordingStatusCallback"),
        RecordingStatus="completed",
        RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "3" * 32,
        RecordingSid="RE" + "3" * 32,
        RecordingDuration="80",
    )
    ended = leg.post(dial.get("action"), DialCallStatus="completed", DialBridged="true")
    assert [verb.tag for verb in ended] == ["Hangup"]
    leg.post(path_of(placed.status_callback), CallStatus="completed", CallDuration="95")

    session.expire_all()
    [request] = session.scalars(select(QueuedCallBack)).all()
    assert (request.status, request.outcome, request.call_sid) == ("done", "answered", placed.sid)
    # On the ticket's timeline like any call: its outcome, who answered, the recording.
    call = session.scalar(select(TicketCall).where(TicketCall.sid == placed.sid))
    assert (call.ticket_id, call.line, call.caller) == (asked.id, "call_back", CALLER)
    assert (call.outcome, call.answered_by, call.duration) == ("answered", "Anna Jansen", 95)
    assert call.recording_sid == "RE" + "3" * 32 and call.ended_at is not None
    page = client.get(f"/support/tickets/{asked.number}").get_data(as_text=True)
    assert "Call-back through the emergency line" in page and "Called back by Anna Jansen" in page


def test_while_calling_back_the_engineer_is_busy_for_the_line(
    app, client, phone, session, twilio, asked
):
    sign_in(client, "anna@otys.test")
    start_from_dashboard(client, asked)
    tick(app)
    [placed] = twilio.calls
    leg = engineer_leg(client, placed)
    leg.press(leg.post(path_of(placed.url)), "1")
    call = phone(to=EMERGENCY_NUMBER, from_=super_phone(5))
    root = call.press(call.start(), "2")  # an urgent bug: rings level 1 but Anna
    assert dialled(root) == [BAS]
    leg.post(path_of(placed.status_callback), CallStatus="completed", CallDuration="60")
    call = phone(to=EMERGENCY_NUMBER, from_=super_phone(5))
    assert ANNA in dialled(call.press(call.start(), "2"))


def test_the_api_starts_it_for_the_token_or_the_named_engineer(
    app, client, session, twilio, people, asked
):
    token = token_for(session, people["bas"])
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/tickets/{asked.number}/call-back"
    answer = client.post(url, json={"engineer": "anna@otys.test"}, headers=headers)
    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()["call_back"]
    assert (body["status"], body["number"], body["engineer"]["phone"]) == ("calling", CALLER, ANNA)
    # One at a time: a second start while the first rings is refused.
    again = client.post(f"/api/tickets/{asked.number}/call-back", headers=headers)
    assert (again.status_code, again.get_json()["code"]) == (409, "call_back_in_progress")
    tick(app)
    assert [call.to for call in twilio.calls] == [ANNA]


def test_the_api_refuses_what_it_cannot_do(app, client, session, people, asked):
    from support_helpers import make_staff

    clerk = make_staff(session, email="clerk@otys.test", name="Clerk")
    headers = {"Authorization": f"Bearer {token_for(session, clerk)}"}
    url = f"/api/tickets/{asked.number}/call-back"
    no_phone = client.post(url, headers=headers)
    assert (no_phone.status_code, no_phone.get_json()["code"]) == (409, "no_phone")
    nobody = client.post(url, json={"engineer": "nobody@otys.test"}, headers=headers)
    assert nobody.status_code == 400
    unknown = client.post("/api/tickets/999999/call-back", headers=headers)
    assert unknown.status_code == 404
    assert client.post(url).status_code == 401
    assert session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "call")).all() == []


def test_the_dashboard_needs_its_csrf_token(client, session, asked):
    sign_in(client, "anna@otys.test")
    answer = client.post(f"/support/tickets/{asked.number}/call-back", data={})
    assert answer.status_code in (400, 403)
    assert session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "call")).all() == []


def test_the_queue_shows_on_the_ticket_and_the_incident_in_order_of_asking(
    client, phone, session, asked
):
    call, root = outage_call(phone, super_phone(5))
    call.press(root, "2")
    sign_in(client, "anna@otys.test")
    [incident] = all_incidents(session)
    html = client.get(f"/support/incidents/{incident.number}").get_data(as_text=True)
    assert 'id="incident-call-backs"' in html
    assert html.index(CALLER) < html.index(super_phone(5))  # the first to ask, first
    ticket_page = client.get(f"/support/tickets/{asked.number}").get_data(as_text=True)
    assert 'id="call-back-form"' in ticket_page and "Waiting" in ticket_page


def test_the_incident_page_button_starts_that_request_and_comes_back(
    app, client, session, twilio, asked
):
    sign_in(client, "anna@otys.test")
    [incident] = all_incidents(session)
    [request] = session.scalars(select(QueuedCallBack)).all()
    token = page_token(client, f"/support/incidents/{incident.number}")
    answer = client.post(
        f"/support/tickets/{asked.number}/call-back",
        data={"csrf_token": token, "request": request.id, "incident": incident.number},
    )
    assert answer.headers["Location"].endswith(f"/support/incidents/{incident.number}")
    tick(app)
    assert [call.to for call in twilio.calls] == [ANNA]


def test_a_missed_attempt_goes_back_in_the_queue(app, client, session, twilio, asked):
    sign_in(client, "anna@otys.test")
    start_from_dashboard(client, asked)
    tick(app)
    [placed] = twilio.calls
    leg = engineer_leg(client, placed)
    connect = leg.press(leg.post(path_of(placed.url)), "1")
    missed = leg.post(connect.find("Dial").get("action"), DialCallStatus="no-answer")
    assert spoken(missed) == "Super 04 neemt niet op. Het verzoek blijft in de wachtrij. Tot ziens."
    leg.post(path_of(placed.status_callback), CallStatus="completed", CallDuration="40")
    session.expire_all()
    [request] = session.scalars(select(QueuedCallBack)).all()
    assert (request.status, request.outcome) == ("waiting", "customer_missed")
    call = session.scalar(select(TicketCall).where(TicketCall.sid == placed.sid))
    assert call.outcome == "no_answer" and call.ended_at is not None


def test_an_engineer_who_does_not_accept_dials_nobody(app, client, session, twilio, asked):
    sign_in(client, "anna@otys.test")
    start_from_dashboard(client, asked)
    tick(app)
    [placed] = twilio.calls
    leg = engineer_leg(client, placed)
    declined = leg.silence(leg.post(path_of(placed.url)))  # a voicemail picked up, say
    assert [verb.tag for verb in declined] == ["Hangup"]
    session.expire_all()
    [request] = session.scalars(select(QueuedCallBack)).all()
    assert (request.status, request.outcome) == ("waiting", "engineer_declined")


def test_a_second_call_of_the_same_attempt_is_refused(app, client, session, twilio, asked):
    sign_in(client, "anna@otys.test")
    start_from_dashboard(client, asked)
    tick(app)
    [placed] = twilio.calls
    duplicate = Call(client, to=ANNA, from_=EMERGENCY_NUMBER, sid=f"CA{uuid.uuid4().hex}")
    duplicate.base.update(Direction="outbound-api", CallStatus="in-progress")
    refused = duplicate.post(path_of(placed.url))
    assert spoken(refused) == "Dit terugbelverzoek is al afgehandeld. Tot ziens."
    assert refused.find("Gather") is None


def test_when_twilio_refuses_the_call_the_request_goes_back_in_the_queue(
    app, client, session, twilio, asked
):
    sign_in(client, "anna@otys.test")
    start_from_dashboard(client, asked)
    with twilio.lock:
        twilio.fail_calls = 10
    for _ in range(3):  # three quick attempts, then given up
        tick(app)
        session.execute(
            OutboxMessage.__table__.update().values(next_attempt_at=OutboxMessage.created_at)
        )
        session.commit()
    session.expire_all()
    [message] = session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "call"))
    assert message.status == "failed"
    [request] = session.scalars(select(QueuedCallBack)).all()
    assert (request.status, request.outcome) == ("waiting", "not_placed")


def test_every_call_back_webhook_checks_the_signature(client, asked):
    for path in (
        "/voice/call-back/engineer?request=1",
        "/voice/call-back/accept?request=1",
        "/voice/call-back/caller?request=1",
        "/voice/call-back/dialled?request=1",
        "/voice/call-back/status?request=1",
        "/voice/call-back/fallback",
    ):
        answer = client.post(path, data={"CallSid": "CA" + "1" * 32, "Digits": "1"})
        assert answer.status_code == 403, path
        forged = client.post(
            path, data={"CallSid": "CA" + "1" * 32}, headers={"X-Twilio-Signature": "bm90IGl0"}
        )
        assert forged.status_code == 403, path


def test_odd_requests_to_the_call_back_webhooks_get_a_polite_answer(client, asked):
    leg = Call(client, to=ANNA, from_=EMERGENCY_NUMBER)
    leg.base.update(Direction="outbound-api")
    for path in (
        "/voice/call-back/engineer",
        "/voice/call-back/engineer?request=abc",
        "/voice/call-back/engineer?request=99999",
        "/voice/call-back/accept?request=1",
        "/voice/call-back/dialled?request=" + "9" * 400,
    ):
        root = leg.post(path, Digits="1")
        assert dialled(root) == [], path
    assert spoken(leg.post("/voice/call-back/fallback")).startswith("Het terugbellen lukt nu niet")


def test_a_caller_unknown_to_the_directory_abroad_is_never_called_back():
    from tickets.callback_queue import callable_number

    countries = ("NL", "BE")
    assert callable_number("+31612345678", in_directory=False, countries=countries)
    assert callable_number("+447911123456", in_directory=False, countries=countries) is None
    assert callable_number("+447911123456", in_directory=True, countries=countries)
    assert callable_number("+319006666669", in_directory=True, countries=countries) is None
    assert callable_number("+881612345678", in_directory=True, countries=countries) is None
    assert callable_number("12345#", in_directory=True, countries=countries) is None


def test_the_number_in_the_queue_is_purged_after_the_retention_period(session, clock, asked):
    from datetime import timedelta

    from ivr.privacy.retention import purge_caller_numbers

    purge_caller_numbers(session, before=clock.now - timedelta(days=90))
    session.commit()
    session.expire_all()
    assert session.scalar(select(QueuedCallBack.number)) == CALLER  # younger than 90 days
    purge_caller_numbers(session, before=clock.now + timedelta(days=1))
    session.commit()
    session.expire_all()
    assert session.scalar(select(QueuedCallBack.number)) is None


def test_the_number_in_the_queue_is_exported_and_erased_on_request(session, cli, asked):
    exported = cli("privacy", "export", CALLER)
    assert '"call_backs"' in exported.output and CALLER in exported.output
    assert cli("privacy", "erase", CALLER).exit_code == 0
    session.expire_all()
    assert session.scalar(select(QueuedCallBack.number)) is None
