"""Secrets hygiene: the auth token, PINs, API tokens and passwords never reach logs or answers."""

import logging
import xml.etree.ElementTree as ET

import pytest
import requests
from helpers import AUTH_TOKEN, EMERGENCY_NUMBER, SECRET_KEY, Call
from resilience_helpers import SUPER_PIN, DatabaseOutage, make_directory
from sqlalchemy import event

from core.db import db
from tickets.directory import hash_pin
from tickets.models import Ticket, TicketCall
from tickets.staff import create_staff, issue_token

WRONG_PIN = "13579246"
STAFF_PASSWORD = "staff-password-never-logged"


class Recorder:
    """Everything the service said: response bodies and headers."""

    def __init__(self, client):
        self.client = client
        self.seen: list[str] = []

    def keep(self, response):
        self.seen.append(response.get_data(as_text=True))
        self.seen.append(str(response.headers))
        return response


@pytest.fixture
def world(clock, session, client):
    make_directory(session)
    staff = create_staff(
        session, email="agent@otys.test", name="Agent", password=STAFF_PASSWORD, role="agent"
    )
    session.commit()
    return {"token": issue_token(session, staff=staff), "recorder": Recorder(client)}


def secrets_in(text: str, token: str) -> list[str]:
    secrets = {
        "auth token": AUTH_TOKEN,
        "secret key": SECRET_KEY,
        "PIN": SUPER_PIN,
        "wrong PIN": WRONG_PIN,
        "PIN hash": hash_pin(SUPER_PIN, secret=SECRET_KEY),
        "API token": token,
        "staff password": STAFF_PASSWORD,
    }
    return [name for name, value in secrets.items() if value in text]


def post(call: Call, recorder: Recorder, path: str, **params) -> ET.Element:
    response = recorder.keep(call.post_raw(path, **params))
    assert response.status_code in (200, 204), response.status_code
    return ET.fromstring(response.get_data(as_text=True)) if response.status_code == 200 else None


def pin_call(client, recorder, settings):
    """Walk an anonymous caller through a wrong PIN, the right PIN, triage and the engineers."""
    call = Call(client, to=EMERGENCY_NUMBER, from_="anonymous")
    root = post(call, recorder, "/voice/incoming")
    call.base["CallStatus"] = "in-progress"
    for pin in (WRONG_PIN, SUPER_PIN):
        gather = root.find("Gather")
        assert gather is not None, ET.tostring(root)
        root = post(call, recorder, gather.get("action"), Digits=pin)
    gather = root.find("Gather")  # triage: the answer to its key rings the engineers
    assert gather is not None, ET.tostring(root)
    root = post(call, recorder, gather.get("action"), Digits="1")
    dial = root.find("Dial")
    assert dial is not None, ET.tostring(root)
    post(call, recorder, dial.get("action"), DialCallStatus="completed", DialBridged="true")
    post(call, recorder, "/voice/status", CallStatus="completed", CallDuration="60")
    return call


def test_a_pin_call_and_failing_webhooks_leave_no_secret_in_logs_or_answers(
    app, client, settings, world, caplog
):
    recorder, token = world["recorder"], world["token"]
    caplog.set_level(logging.DEBUG)
    pin_call(client, recorder, settings)

    # The database fails while a caller types a PIN: the webhook fails and is logged.
    call = Call(client, to=EMERGENCY_NUMBER, from_="anonymous")
    root = post(call, recorder, "/voice/incoming")
    outage = DatabaseOutage().start()
    try:
        post(call, recorder, root.find("Gather").get("action"), Digits=SUPER_PIN)
    finally:
        outage.end()
        app.extensions["outage"].health.mark_up()

    # A query fails with its parameters (the PIN's hash) in the driver's error message.
    def fail_pin_lookup(_conn, _cursor, statement, _parameters, _context, _many):
        if "pin_hash" in statement:
            raise db.engine.dialect.loaded_dbapi.ProgrammingError("simulated driver failure")

    event.listen(db.engine, "before_cursor_execute", fail_pin_lookup)
    try:
        call = Call(client, to=EMERGENCY_NUMBER, from_="anonymous")
        root = post(call, recorder, "/voice/incoming")
        post(call, recorder, root.find("Gather").get("action"), Digits=SUPER_PIN)
    finally:
        event.remove(db.engine, "before_cursor_execute", fail_pin_lookup)

    # The API with the right token, a wrong one, and the dashboard's login with a wrong password.
    recorder.keep(client.get("/api/tickets", headers={"Authorization": f"Bearer {token}"}))
    recorder.keep(client.get("/api/tickets", headers={"Authorization": f"Bearer {token}x"}))
    recorder.keep(client.get(f"/api/tickets?token={token}"))
    recorder.keep(
        client.post("/login", data={"email": "agent@otys.test", "password": STAFF_PASSWORD + "!"})
    )

    assert "simulated driver failure" in caplog.text  # the failures were logged
    assert secrets_in(caplog.text, token) == []
    assert secrets_in("\n".join(recorder.seen), token) == []
    journal = settings.resolved_journal_path
    assert journal.exists() and secrets_in(journal.read_text(), token) == []


def test_settings_never_show_their_secrets(settings):
    assert AUTH_TOKEN not in repr(settings) and AUTH_TOKEN not in str(settings)
    assert SECRET_KEY not in repr(settings)


def test_recordings_are_only_for_signed_in_staff(app, client, session, world, monkeypatch):
    fetched = []
    monkeypatch.setattr(requests, "get", lambda url, **kwargs: fetched.append(url))
    ticket = Ticket(priority="urgent", caller="+31612345678")
    session.add(ticket)
    session.flush()
    call = TicketCall(
        ticket_id=ticket.id,
        sid="CA" + "3" * 32,
        line="emergency",
        recording_url="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
    )
    session.add(call)
    session.commit()
    path = f"/support/recordings/{call.id}"
    anonymous = client.get(path)
    assert anonymous.status_code in (302, 401)
    assert anonymous.status_code == 401 or "/login" in anonymous.headers["Location"]
    token = client.get(path, headers={"Authorization": f"Bearer {world['token']}"})
    assert token.status_code in (302, 401)  # an API token is not a dashboard sign-in
    assert fetched == []
