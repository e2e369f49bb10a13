"""Helpdesk events: every ticket change reaches a real HTTP receiver on loopback, signed by
the Standard Webhooks specification and verified there with the `standardwebhooks` library.

Loopback is allowed explicitly in these settings (`allow_private_network`); the sender's
rounds are run by hand and the app's clock is moved, never slept (only the receiver's own
clock, which checks the signature's timestamp, is the real one).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpdesk_receiver import HelpdeskReceiver, new_secret
from helpers import EMERGENCY_NUMBER
from sqlalchemy import select

from app import create_app
from core.db import db
from ivr.messaging.helpdesk import tick
from tickets import lifecycle
from tickets.helpdesk.models import HelpdeskDelivery
from tickets.helpdesk.models import HelpdeskReceiver as ReceiverState
from tickets.models import AuditEvent, Contact, ContactPhone, Organization, StaffUser, Ticket

pytestmark = pytest.mark.wall_clock

CALLER = "+31611110000"
SECRET = new_secret()


@pytest.fixture
def receiver():
    server = HelpdeskReceiver(SECRET).start()
    yield server
    server.stop()


def hook(receiver: HelpdeskReceiver, name: str = "zendesk", **extra) -> dict:
    return {
        "name": name,
        "url": receiver.url,
        "secret": SECRET,
        "allow_private_network": True,
        **extra,
    }


@pytest.fixture
def settings_overrides(receiver):
    return {"helpdesk.webhooks": [hook(receiver)], "helpdesk.timeout_seconds": 2}


@pytest.fixture
def people(session, clock):
    acme = Organization(name="Acme Uitzendbureau")
    sanne = Contact(
        organization=acme, name="Sanne Visser", email="s@acme.example", role="super_user"
    )
    sanne.phones.append(ContactPhone(number=CALLER))
    agent = StaffUser(email="bas@otys.test", name="Bas de Vries", password_hash="x")
    session.add_all([acme, agent])
    session.commit()
    return agent


def super_user(session, caller: str) -> None:
    """Add a super user of an organisation of their own, calling from `caller`."""
    organization = Organization(name=f"Client {caller}")
    contact = Contact(
        organization=organization, name="Super User", email=f"{caller}@c.example", role="super_user"
    )
    contact.phones.append(ContactPhone(number=caller))
    session.add(organization)
    session.commit()


def emergency_call(phone, *, caller: str = CALLER):
    """A super user's emergency call: recognised, triaged (outage), engineers rung, hung up."""
    call = phone(to=EMERGENCY_NUMBER, from_=caller)
    root = call.press(call.start(), "1")
    assert root.find("Dial") is not None
    call.hang_up(duration="40")
    return call


def rows(session) -> list[HelpdeskDelivery]:
    session.expire_all()
    return list(session.scalars(select(HelpdeskDelivery).order_by(HelpdeskDelivery.id)))


def later(clock, **delta) -> None:
    clock.now = clock.now + timedelta(**delta)


def test_a_new_urgent_ticket_arrives_after_the_receiver_refused_twice(
    app, session, clock, phone, people, receiver
):
    receiver.answers = [503, 429]
    emergency_call(phone)
    number = session.scalars(select(Ticket)).one().number

    assert tick(app).retrying and receiver.accepted == []
    later(clock, minutes=2)
    assert tick(app).retrying and receiver.accepted == []
    later(clock, minutes=2)
    tick(app)

    created, ended = receiver.accepted
    assert created["type"] == "ticket.created"
    data = created["data"]
    assert data["number"] == number
    assert (data["priority"], data["status"], data["source"]) == ("urgent", "new", "phone")
    assert data["caller"] == CALLER
    assert data["organization"] == "Acme Uitzendbureau"
    assert data["contact"]["name"] == "Sanne Visser"
    assert [call["line"] for call in data["calls"]] == ["emergency"]
    assert created["timestamp"].startswith("2026-12-07T09:")
    # Three attempts of one event, all under the same webhook-id; then the call's end.
    first = [a.status for a in receiver.attempts if a.msg_id == created["webhook_id"]]
    assert first == [503, 429, 200]
    assert ended["type"] == "call.ended"
    assert [row.status for row in rows(session)] == ["delivered", "delivered"]
    assert rows(session)[0].attempts == 3


def test_a_tickets_events_arrive_in_order_created_call_ended_updated(
    app, session, clock, phone, people, receiver
):
    receiver.answers = [500]
    call = emergency_call(phone)
    ticket = session.scalars(select(Ticket)).one()
    number = ticket.number
    with app.app_context():
        lifecycle.acknowledge_ticket(session, ticket=ticket, staff=people, via="api")
        session.commit()

    tick(app)  # created is refused: the call's end and the update wait behind it
    assert receiver.accepted == []
    assert [row.attempts for row in rows(session)] == [1, 0, 0]
    later(clock, minutes=5)
    tick(app)

    assert receiver.types() == ["ticket.created", "call.ended", "ticket.updated"]
    created, ended, updated = (event["data"] for event in receiver.accepted)
    # Each says what was true at its moment, though all were sent after the acknowledgement.
    assert created["status"] == "new" and created["acknowledged_by"] is None
    assert created["calls"][0]["outcome"] == "in_progress"
    assert ended["sid"] == call.sid
    assert ended["outcome"] == "abandoned_while_ringing"
    assert ended["duration"] == 40
    assert {"answered_by", "recording_url", "transcription"} <= set(ended)
    assert ended["ticket"]["number"] == number
    assert updated["status"] == "in_progress"
    assert updated["acknowledged_by"] == {"name": "Bas de Vries", "email": "bas@otys.test"}
    assert updated["assigned_to"]["name"] == "Bas de Vries"
    assert [change["kind"] for change in updated["changes"]] == [
        "acknowledged",
        "assigned",
        "status",
    ]
    assert updated["calls"][0]["outcome"] == "abandoned_while_ringing"
    assert len({event["webhook_id"] for event in receiver.accepted}) == 3


def test_a_note_and_a_category_change_are_updates(app, session, clock, phone, people, receiver):
    emergency_call(phone)
    ticket = session.scalars(select(Ticket)).one()
    with app.app_context():
        lifecycle.add_note(session, ticket=ticket, staff=people, text="Called Sanne back")
        session.commit()
        lifecycle.change_category(session, ticket=ticket, staff=people, category="question")
        session.commit()
    tick(app)

    assert receiver.types()[-2:] == ["ticket.updated", "ticket.updated"]
    note, category = (event["data"] for event in receiver.accepted[-2:])
    assert note["changes"] == [{"kind": "note", "detail": "Called Sanne back"}]
    assert note["category"] == "bug" and category["category"] == "question"
    assert category["changed_by"]["email"] == "bas@otys.test"


@pytest.mark.parametrize("settings_overrides", [{}], indirect=False)
def test_without_receivers_nothing_is_written(app, session, clock, phone, people):
    emergency_call(phone)
    assert rows(session) == []


def statements_of_a_call(phone, session, caller: str) -> list[str]:
    """Return the SQL statements a whole emergency call's webhooks sent to the database."""
    from sqlalchemy import event

    super_user(session, caller)
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        emergency_call(phone, caller=caller)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return seen


def test_the_webhooks_write_one_row_per_event_and_read_nothing_more(
    app, session, clock, phone, people
):
    from tickets.helpdesk.events import HelpdeskPolicy
    from tickets.incidents import IncidentPolicy

    # The same plain call three times: three organisations' outage reports would be an incident.
    app.config["INCIDENTS"] = IncidentPolicy(threshold=100)
    configured = app.config["HELPDESK"]
    statements_of_a_call(phone, session, "+31611110001")  # warm: the same path both times
    app.config["HELPDESK"] = HelpdeskPolicy()
    without = statements_of_a_call(phone, session, "+31611110002")
    app.config["HELPDESK"] = configured
    with_receiver = statements_of_a_call(phone, session, "+31611110003")

    extra = [s for s in with_receiver if "helpdesk" in s]
    assert len(extra) == 2 and all(s.lstrip().startswith("INSERT") for s in extra)
    assert len(with_receiver) == len(without) + 2


def test_no_event_is_accepted_twice_when_the_receiver_answers_too_late(
    app, session, clock, phone, people, receiver
):
    receiver.delays = [3.0]  # it takes the event, then answers after our 2 s timeout
    emergency_call(phone)

    report = tick(app)
    assert report.retrying and not report.delivered
    assert "no answer within 2 s" in rows(session)[0].last_error
    later(clock, minutes=2)
    tick(app)

    assert receiver.types() == ["ticket.created", "call.ended"]
    assert receiver.duplicates == 1  # the retry came under the same webhook-id
    ids = [attempt.msg_id for attempt in receiver.attempts]
    assert ids[0] == ids[1] != ids[2]


def test_a_delivery_whose_sender_died_goes_again_under_the_same_id(
    app, session, clock, phone, people, receiver
):
    emergency_call(phone)
    tick(app)
    first = rows(session)[0]
    # As if the process died between the receiver's answer and our record of it.
    first.status, first.lease_until = "sending", clock.now - timedelta(seconds=1)
    msg_id = first.msg_id
    session.commit()
    tick(app)

    assert receiver.duplicates == 1
    assert [a.msg_id for a in receiver.attempts].count(msg_id) == 2
    assert receiver.types() == ["ticket.created", "call.ended"]


def test_a_410_disables_the_receiver_its_events_wait_and_support_is_told(
    app, session, clock, phone, people, receiver, client
):
    from support_helpers import make_staff, page_token, sign_in

    receiver.answers = [410]
    emergency_call(phone)
    report = tick(app)

    assert report.disabled == ["zendesk"]
    state = session.scalars(select(ReceiverState)).one()
    assert state.disabled_at is not None and "410" in state.disabled_reason
    assert [row.status for row in rows(session)] == ["pending", "pending"]
    later(clock, hours=1)
    super_user(session, "+31611110009")
    emergency_call(phone, caller="+31611110009")  # another ticket: held too
    assert tick(app).delivered == [] and len(receiver.attempts) == 1
    trail = session.scalars(select(AuditEvent).where(AuditEvent.action == "helpdesk_disabled"))
    assert [row.actor for row in trail] == ["helpdesk sender"]

    make_staff(session, email="admin@otys.test", role="admin")
    sign_in(client, "admin@otys.test")
    page = client.get("/support").get_data(as_text=True)
    assert "zendesk" in page and "410" in page  # the notice on every page
    answer = client.post(
        "/support/settings/helpdesk/zendesk/enable", data={"csrf_token": page_token(client)}
    )
    assert answer.status_code == 303
    tick(app)
    assert len(receiver.accepted) == 4  # both tickets' events, each ticket's in order
    for caller in (CALLER, "+31611110009"):
        mine = [e for e in receiver.accepted if caller in str(e["data"])]
        assert [e["type"] for e in mine] == ["ticket.created", "call.ended"]
    enabled = session.scalars(select(AuditEvent).where(AuditEvent.action == "helpdesk_enabled"))
    assert [(row.actor, row.detail) for row in enabled] == [("admin@otys.test", "zendesk")]


def test_a_pending_retry_is_delivered_by_a_fresh_app_after_a_restart(
    app, session, settings, clock, phone, people, receiver
):
    receiver.answers = [503]
    emergency_call(phone)
    tick(app)
    msg_id = rows(session)[0].msg_id
    db.dispose()  # the first process is gone; only the database remembers

    fresh = create_app(settings)
    fresh.config["CLOCK"] = clock
    later(clock, minutes=2)
    tick(fresh)

    assert receiver.types() == ["ticket.created", "call.ended"]
    assert receiver.accepted[0]["webhook_id"] == msg_id


@pytest.fixture
def rotation():
    new, old = new_secret(), new_secret()
    only_new = HelpdeskReceiver(new).start()
    only_old = HelpdeskReceiver(old).start()
    yield new, old, only_new, only_old
    only_new.stop()
    only_old.stop()


def test_two_secrets_while_rotating_mean_two_signatures_either_verifies(
    rotation, database_url, tmp_path, phone
):
    from helpers import build_settings

    new, old, only_new, only_old = rotation
    both = f"{new} {old}"
    hooks = [
        {**hook(only_new, "new-side"), "secret": both},
        {**hook(only_old, "old-side"), "secret": both},
    ]
    app = create_app(build_settings(database_url, tmp_path, **{"helpdesk.webhooks": hooks}))
    with app.test_request_context():
        from tickets.helpdesk.events import emit

        emit(db.session, "incident.opened", "incident:1", {"number": 1, "summary": "Down"})
        db.session.commit()
    tick(app)

    for side in (only_new, only_old):
        assert side.types() == ["incident.opened"] and side.unverified == 0
        signatures = side.attempts[0].headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert only_new.accepted[0]["data"] == {"number": 1, "summary": "Down"}
    db.session.remove()
    from sqlalchemy import delete

    with db.engine.begin() as connection:
        connection.execute(delete(HelpdeskDelivery))


def test_a_receiver_that_checks_the_wrong_secret_refuses_and_the_event_waits(
    app, session, clock, phone, people
):
    stranger = HelpdeskReceiver(new_secret()).start()
    try:
        app.config["SETTINGS"] = app.config["SETTINGS"].model_copy(
            update={
                "helpdesk": app.config["SETTINGS"].helpdesk.model_copy(
                    update={
                        "webhooks": [
                            app.config["SETTINGS"]
                            .helpdesk.webhooks[0]
                            .model_copy(update={"url": stranger.url})
                        ]
                    }
                )
            }
        )
        emergency_call(phone)
        tick(app)
    finally:
        stranger.stop()
    assert stranger.unverified == 1 and stranger.accepted == []
    assert rows(session)[0].status == "pending" and rows(session)[0].last_status == 401


def test_the_daily_purge_removes_finished_deliveries_after_the_shortest_retention(
    app, session, settings, clock, phone, people, receiver
):
    from ivr.privacy.retention import purge_database

    receiver.answers = [500]
    emergency_call(phone)
    tick(app)  # created waits for a retry, call.ended behind it
    later(clock, minutes=5)
    tick(app)
    super_user(session, "+31611110008")
    emergency_call(phone, caller="+31611110008")  # new: not delivered yet
    later(clock, days=settings.privacy.shortest_days, minutes=1)
    with app.app_context():
        removed = purge_database(session, settings, now=clock.now)

    assert removed["helpdesk events"] == 2
    assert [row.status for row in rows(session)] == ["pending", "pending"]
