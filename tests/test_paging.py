"""Paging: a missed emergency call pages the rota by SMS and e-mail until someone acknowledges.

The service sends through its real clients (the twilio REST client, smtplib) to local servers
that speak the real protocols; the clock is moved, never slept.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from helpers import EMERGENCY_NUMBER, MONDAY_MORNING, PUBLIC_URL, parse_twiml, sign
from message_servers import MailServer
from sqlalchemy import func, select

from app import create_app
from bench.standin import TwilioStandIn
from core.db import db
from ivr.messaging import channels, sender
from ivr.messaging.sender import tick
from tickets.models import (
    Contact,
    ContactPhone,
    Organization,
    OutboxMessage,
    Page,
    StaffUser,
    Ticket,
    TicketEvent,
)
from tickets.paging import new_key
from tickets.rota import add_override

ACCOUNT_SID = "AC" + "5" * 32
SMS_FROM = "+31612340000"
CALLER = "+31611110000"
LANDLINE_CALLER = "+31201234567"
ANNA, BAS, CARLA = "+31620000001", "+31620000002", "+31620000003"


@pytest.fixture(scope="module")
def twilio():
    from helpers import AUTH_TOKEN

    standin = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def mail():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(twilio, mail):
    twilio.sent.clear()
    twilio.fail_next = twilio.requests = 0
    mail.messages.clear()
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_url": twilio.url,
        "paging.sms_from": SMS_FROM,
        "paging.smtp_url": mail.url,
    }


@pytest.fixture
def people(session, clock):
    acme = Organization(name="Acme Uitzendbureau")
    sanne = Contact(
        organization=acme, name="Sanne Visser", email="s@acme.example", role="super_user"
    )
    sanne.phones.append(ContactPhone(number=CALLER))
    piet = Contact(organization=acme, name="Piet Bos", email="p@acme.example", role="key_user")
    piet.phones.append(ContactPhone(number=LANDLINE_CALLER))
    staff = {
        name.split()[0].lower(): StaffUser(
            email=f"{name.split()[0].lower()}@otys.test", name=name, password_hash="x", phone=phone
        )
        for name, phone in (("Anna Jansen", ANNA), ("Bas de Vries", BAS), ("Carla Smit", CARLA))
    }
    session.add_all([acme, *staff.values()])
    session.commit()
    week = (clock.now - timedelta(days=1), clock.now + timedelta(days=6))
    for level, who in ((1, "anna"), (2, "bas"), (2, "carla")):
        add_override(
            session,
            level=level,
            staff=staff[who],
            starts_at=week[0],
            ends_at=week[1],
            added_by="test",
        )
        session.commit()
    return staff


def missed_call(phone, *, caller: str = CALLER):
    """An emergency call that rang the engineers, and the caller hung up: nobody took it."""
    call = phone(to=EMERGENCY_NUMBER, from_=caller)
    root = call.press(call.start(), "1")
    assert root.find("Dial") is not None
    call.hang_up(duration="40")
    return call


def the_ticket(session) -> Ticket:
    session.expire_all()
    return session.scalars(select(Ticket)).one()


def events(session, kind: str) -> list[str]:
    session.expire_all()
    return list(
        session.scalars(
            select(TicketEvent.detail).where(TicketEvent.kind == kind).order_by(TicketEvent.id)
        )
    )


def reply_sms(client, from_: str, body: str):
    data = {"MessageSid": "SM" + "7" * 32, "From": from_, "To": SMS_FROM, "Body": body}
    signature = sign(PUBLIC_URL + "/sms/incoming", data)
    return client.post("/sms/incoming", data=data, headers={"X-Twilio-Signature": signature})


def test_a_missed_call_pages_level_one_by_sms_and_email_and_tells_the_caller(
    app, phone, session, clock, people, twilio, mail
):
    missed_call(phone)
    ticket = the_ticket(session)
    report = tick(app)
    assert len(report.sent) == 3 and not report.failed
    [page] = twilio.to(ANNA)
    assert ticket.number in page.body and "Acme Uitzendbureau" in page.body
    assert "Sanne Visser" in page.body and "grote storing" in page.body
    assert "1 of OK" in page.body
    assert page.status_callback.startswith(PUBLIC_URL + "/sms/status?ref=")
    [email] = mail.to("anna@otys.test")
    assert ticket.number in email["Subject"]
    assert (
        f"{PUBLIC_URL}/support/tickets/{ticket.number}" in email.get_payload(decode=True).decode()
    )
    [caller_sms] = twilio.to(CALLER)
    assert ticket.number in caller_sms.body
    assert not twilio.to(BAS) and not twilio.to(CARLA)
    assert events(session, "paged") == ["Anna Jansen (level 1)"]


def test_no_acknowledgement_pages_level_two_after_the_timeout(
    app, phone, session, clock, people, twilio, settings
):
    missed_call(phone)
    tick(app)
    clock.now += timedelta(minutes=settings.paging.ack_timeout) - timedelta(seconds=1)
    tick(app)
    assert not twilio.to(BAS)
    clock.now += timedelta(seconds=2)
    tick(app)
    assert len(twilio.to(BAS)) == 1 and len(twilio.to(CARLA)) == 1
    assert len(twilio.to(ANNA)) == 1
    assert events(session, "paged")[-1] == "Bas de Vries, Carla Smit (level 2)"


def test_after_every_round_paging_gives_up_and_says_so(
    app, phone, session, clock, people, twilio, settings
):
    missed_call(phone)
    for _ in range(2 * settings.paging.rounds + 1):
        tick(app)
        clock.now += timedelta(minutes=settings.paging.ack_timeout, seconds=1)
    assert len(twilio.to(ANNA)) == settings.paging.rounds
    assert events(session, "paging_exhausted")
    assert session.scalars(select(Page)).one().state == "exhausted"


def test_an_sms_reply_acknowledges_stops_paging_and_tells_the_others(
    app, client, phone, session, clock, people, twilio, settings
):
    missed_call(phone)
    tick(app)
    clock.now += timedelta(minutes=settings.paging.ack_timeout, seconds=1)
    tick(app)  # level 2 paged: Bas and Carla
    answer = parse_twiml(reply_sms(client, BAS, "ok"))
    ticket = the_ticket(session)
    assert f"Ticket {ticket.number} is op uw naam bevestigd" in answer.find("Message").text
    assert ticket.acknowledged_by.name == "Bas de Vries"
    assert "acknowledged by Bas de Vries (sms)" in events(session, "acknowledged")
    tick(app)
    notices = [sms.body for sms in twilio.to(ANNA) + twilio.to(CARLA) if "bevestigd" in sms.body]
    assert len(notices) == 2 and all("Bas de Vries" in body for body in notices)
    assert not [sms for sms in twilio.to(BAS) if "bevestigd door" in sms.body]
    assert len([sms for sms in twilio.to(CALLER) if "in behandeling" in sms.body]) == 1
    clock.now += timedelta(hours=1)
    tick(app)
    paged_again = [sms for sms in twilio.to(ANNA) if "Antwoord 1 of OK" in sms.body]
    assert len(paged_again) == 1
    assert session.scalars(select(Page)).one().state == "acknowledged"


def test_acknowledging_in_the_dashboard_cancels_pages_not_yet_sent(
    app, phone, session, clock, people, twilio
):
    from tickets.lifecycle import acknowledge_ticket

    missed_call(phone)
    with app.app_context():  # as in a dashboard request
        acknowledge_ticket(session, ticket=the_ticket(session), staff=people["carla"])
        session.commit()
    tick(app)
    assert not twilio.to(ANNA)
    statuses = set(
        session.scalars(select(OutboxMessage.status).where(OutboxMessage.kind == "page"))
    )
    assert statuses == {"cancelled"}


def test_a_reply_naming_a_ticket_number_acknowledges_that_ticket(
    app, client, phone, session, clock, people
):
    missed_call(phone)  # level 1 (Anna) is paged
    ticket = the_ticket(session)
    answer = parse_twiml(reply_sms(client, ANNA, f" {ticket.number} "))
    assert "bevestigd" in answer.find("Message").text
    assert the_ticket(session).acknowledged_by.name == "Anna Jansen"


def test_anything_else_from_staff_gets_help_and_changes_nothing(
    app, client, phone, session, clock, people
):
    missed_call(phone)
    answer = parse_twiml(reply_sms(client, ANNA, "wie is dit?"))
    assert "Antwoord 1 of OK" in answer.find("Message").text
    assert the_ticket(session).acknowledged_at is None


def test_a_stranger_gets_no_answer_and_acknowledges_nothing(
    app, client, phone, session, clock, people
):
    missed_call(phone)
    answer = parse_twiml(reply_sms(client, "+31699999999", "1"))
    assert answer.find("Message") is None
    ticket = the_ticket(session)
    answer = parse_twiml(reply_sms(client, CALLER, ticket.number))
    assert answer.find("Message") is None
    assert the_ticket(session).acknowledged_at is None


def test_an_unsigned_sms_reply_is_refused(app, client, phone, session, clock, people):
    missed_call(phone)
    data = {"From": ANNA, "Body": "1", "MessageSid": "SM" + "1" * 32}
    response = client.post("/sms/incoming", data=data, headers={"X-Twilio-Signature": "x"})
    assert response.status_code == 403
    assert the_ticket(session).acknowledged_at is None


def test_a_landline_caller_gets_no_sms(app, phone, session, clock, people, twilio):
    missed_call(phone, caller=LANDLINE_CALLER)
    tick(app)
    assert twilio.to(ANNA)
    assert not twilio.to(LANDLINE_CALLER)


def test_an_answered_call_pages_nobody_but_the_caller_gets_the_number(
    app, phone, session, clock, people, twilio
):
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    root = call.press(call.start(), "1")
    leg = {
        "Direction": "outbound-dial",
        "ParentCallSid": call.sid,
        "To": ANNA,
        "CallSid": "CA" + "e" * 32,
    }
    screen = call.post(root.find("Dial").find("Number").get("url"), **leg)
    call.post(screen.find("Gather").get("action"), Digits="1", **leg)
    call.dial_result(root, "completed", DialBridged="true")
    call.hang_up()
    tick(app)
    assert not twilio.to(ANNA)
    assert len(twilio.to(CALLER)) == 1
    assert session.scalars(select(Page)).first() is None


def test_resolving_the_ticket_texts_the_caller_once(app, phone, session, clock, people, twilio):
    from tickets.lifecycle import change_status

    missed_call(phone)
    tick(app)
    with app.app_context():  # as in a dashboard request
        ticket = the_ticket(session)
        change_status(session, ticket=ticket, staff=people["anna"], status="resolved")
        session.commit()
    tick(app)
    resolved = [sms for sms in twilio.to(CALLER) if "opgelost" in sms.body]
    assert len(resolved) == 1
    with app.app_context():
        ticket = the_ticket(session)
        change_status(session, ticket=ticket, staff=people["anna"], status="closed", rating=5)
        session.commit()
    tick(app)
    assert len([sms for sms in twilio.to(CALLER) if "opgelost" in sms.body]) == 1


def test_twilio_failing_is_retried_with_backoff_and_sent_once(
    app, phone, session, clock, people, twilio
):
    missed_call(phone)
    twilio.fail_next = 2
    first = tick(app)
    assert first.retrying and not first.failed
    tick(app)
    assert twilio.requests == 2 and not twilio.sent  # nothing due yet: backing off
    clock.now += timedelta(seconds=16)
    tick(app)
    clock.now += timedelta(minutes=1)
    tick(app)
    assert len(twilio.to(ANNA)) == 1 and len(twilio.to(CALLER)) == 1
    session.expire_all()
    page = session.scalar(
        select(OutboxMessage).where(OutboxMessage.recipient == ANNA, OutboxMessage.kind == "page")
    )
    assert page.status == "sent" and page.attempts >= 2 and page.provider_id.startswith("SM")


def test_a_refused_number_fails_at_once_and_the_dashboard_can_show_it(
    app, phone, session, clock, people, twilio
):
    missed_call(phone)
    twilio.fail_next = 0
    session.execute(
        OutboxMessage.__table__.update()
        .where(OutboxMessage.recipient == ANNA)
        .values(recipient="+31620000009")
    )
    session.commit()
    twilio.account_sid, real = "AC" + "0" * 32, twilio.account_sid  # every request: 404
    try:
        report = tick(app)
    finally:
        twilio.account_sid = real
    assert report.failed
    session.expire_all()
    failed = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed")).all()
    assert failed and "404" in failed[0].last_error


def test_a_status_callback_records_delivery_and_failure(
    app, client, phone, session, clock, people, twilio
):
    missed_call(phone)
    tick(app)
    [sms] = twilio.to(ANNA)
    url = sms.status_callback
    for status, expected in (("sent", "sent"), ("delivered", "delivered")):
        data = {"MessageSid": sms.sid, "MessageStatus": status}
        response = client.post(
            url.removeprefix(PUBLIC_URL), data=data, headers={"X-Twilio-Signature": sign(url, data)}
        )
        assert response.status_code == 204
        session.expire_all()
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.provider_id == sms.sid))
        assert row.status == expected


@pytest.mark.parametrize(
    ("first", "late", "final"),
    [("delivered", "undelivered", "delivered"), ("failed", "delivered", "failed")],
)
def test_a_late_status_callback_never_moves_a_message_out_of_a_final_state(
    app, client, phone, session, clock, people, twilio, first, late, final
):
    missed_call(phone)
    tick(app)
    [sms] = twilio.to(ANNA)
    for status in ("sent", first, late, "sent"):
        data = {"MessageSid": sms.sid, "MessageStatus": status, "ErrorCode": "30008"}
        url = sms.status_callback
        response = client.post(
            url.removeprefix(PUBLIC_URL), data=data, headers={"X-Twilio-Signature": sign(url, data)}
        )
        assert response.status_code == 204
    session.expire_all()
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.provider_id == sms.sid))
    assert row.status == final


def test_a_crash_after_sending_is_recognised_by_the_status_callback(
    app, client, phone, session, clock, people, twilio
):
    """The process died after Twilio took the SMS but before recording it: no second copy."""
    missed_call(phone)
    session.execute(
        OutboxMessage.__table__.update().values(
            status="sending", lease_until=clock.now + timedelta(seconds=60), attempts=1
        )
    )
    session.commit()
    key = session.scalar(
        select(OutboxMessage.idempotency_key).where(OutboxMessage.recipient == ANNA)
    )
    url = f"{PUBLIC_URL}/sms/status?ref={key}"
    data = {"MessageSid": "SM" + "9" * 32, "MessageStatus": "sent"}
    client.post(
        url.removeprefix(PUBLIC_URL), data=data, headers={"X-Twilio-Signature": sign(url, data)}
    )
    clock.now += timedelta(minutes=2)  # every lease expired
    tick(app)
    assert not twilio.to(ANNA)  # Twilio already had it
    assert len(twilio.to(CALLER)) == 1  # never confirmed: sent again after the lease


def test_a_restart_loses_no_page(app, settings, phone, session, clock, people, twilio):
    missed_call(phone)
    tick(app)
    restarted = create_app(settings)
    restarted.config["CLOCK"] = clock
    restarted.config["TESTING"] = True
    clock.now += timedelta(minutes=settings.paging.ack_timeout, seconds=1)
    tick(restarted)
    assert len(twilio.to(BAS)) == 1


def test_many_senders_at_once_send_each_message_once(app, phone, session, clock, people, twilio):
    for number in range(6):
        call = phone(to=EMERGENCY_NUMBER, from_=CALLER, sid=f"CA{number:032d}")
        call.press(call.start(), "1")
        call.hang_up()
    queued = session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()).limit(1))
    assert queued
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            barrier.wait()
            for _ in range(3):
                tick(app)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    session.expire_all()
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "sms")).all()
    assert {row.status for row in rows} == {"sent"}
    assert len(twilio.sent) == len(rows)
    assert len({sms.sid for sms in twilio.sent}) == len(rows)
    assert len({(sms.to, sms.body) for sms in twilio.sent}) == len(twilio.sent)


@pytest.mark.parametrize("out_of_time", [False, True], ids=["whole-backlog", "round-time-up"])
def test_one_round_sends_a_backlog_batch_after_batch(
    app, phone, session, clock, people, twilio, monkeypatch, out_of_time
):
    """A burst of calls leaves more than a batch waiting: one round sends it all, in time."""
    if out_of_time:  # a round past its time gives back what it claimed and did not send
        monkeypatch.setattr("ivr.messaging.sender.ROUND_SECONDS", -1.0)
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    call.press(call.start(), "1")
    call.hang_up()
    first = session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "sms")).first()
    fields = ("ticket_id", "kind", "channel", "recipient", "recipient_name", "language", "detail")
    for _ in range(2 * sender.BATCH):  # as if as many more calls had ended at once
        values = {name: getattr(first, name) for name in fields}
        # Due on the app's clock, as the rows the calls wrote (this runs outside a request).
        values["next_attempt_at"] = values["created_at"] = clock.now
        session.add(OutboxMessage(idempotency_key=new_key(), **values))
    session.commit()
    waiting = (
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
    )
    backlog = session.scalar(waiting)
    assert backlog > 2 * sender.BATCH
    report = tick(app)
    session.expire_all()
    if out_of_time:
        assert report.sent == []
        assert session.scalar(waiting) == backlog
        rows = session.scalars(select(OutboxMessage)).all()
        assert {(row.attempts, row.lease_until) for row in rows} == {(0, None)}
        monkeypatch.setattr("ivr.messaging.sender.ROUND_SECONDS", 10.0)
        report = tick(app)  # the next round, in time, sends them all
        session.expire_all()
    assert session.scalar(waiting) == 0
    assert len(report.sent) == backlog
    sms = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.channel == "sms")
    assert len(twilio.sent) == session.scalar(sms)


def test_each_thread_keeps_its_own_twilio_client(app):
    """Kept for the connection to Twilio, never shared: the client stores its last response."""
    settings = app.config["SETTINGS"]
    mine = channels.twilio_client(settings)
    assert channels.twilio_client(settings) is mine
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(channels.twilio_client(settings)))
    thread.start()
    thread.join()
    assert theirs and theirs[0] is not mine


def test_out_of_hours_nothing_is_paged_until_the_opening_summary(
    app, phone, session, clock, people, twilio, mail
):
    clock.now = MONDAY_MORNING.replace(hour=22)
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    call.start()
    call.hang_up()
    tick(app)
    number = the_ticket(session).number
    assert not twilio.to(ANNA)
    assert session.scalars(select(Page)).one().state == "waiting"
    clock.now = MONDAY_MORNING.replace(hour=8, minute=29) + timedelta(days=1)
    tick(app)
    assert not twilio.to(ANNA)
    clock.now += timedelta(minutes=1)
    tick(app)
    [summary] = twilio.to(ANNA)
    assert number in summary.body and "buiten kantoortijd" in summary.body
    assert len(mail.to("anna@otys.test")) == 1
    clock.now += timedelta(hours=1)
    tick(app)
    assert len(twilio.to(ANNA)) == 1


def test_health_says_when_the_sender_is_behind(app, client, phone, session, clock, people):
    missed_call(phone)
    assert client.get("/health").get_json()["messages"]["sender"] == "ok"
    clock.now += timedelta(minutes=10)
    body = client.get("/health").get_json()
    assert body["status"] == "ok"
    assert body["messages"]["sender"] == "behind" and body["messages"]["waiting"] >= 2


def test_db_session_is_usable_after_a_tick(app, phone, session, clock, people):
    missed_call(phone)
    tick(app)
    assert db.session.scalar(select(Ticket.id)) is not None


def test_acknowledging_through_the_api_stops_paging_and_says_how(
    app, client, phone, session, clock, people, twilio, settings
):
    from tickets.staff import issue_token

    missed_call(phone)
    tick(app)
    token = issue_token(session, staff=people["anna"])
    session.commit()
    number = the_ticket(session).number
    response = client.post(
        f"/api/tickets/{number}/acknowledge",
        headers={"Authorization": f"Bearer {token}"},
        json={"version": the_ticket(session).version},
    )
    assert response.status_code == 200, response.get_json()
    assert "acknowledged by Anna Jansen (api)" in events(session, "acknowledged")
    clock.now += timedelta(minutes=settings.paging.ack_timeout, seconds=1)
    tick(app)
    assert not twilio.to(BAS)


def test_the_ticket_page_shows_each_page_and_failures_are_flagged(
    app, client, phone, session, clock, people, twilio
):
    from support_helpers import make_staff, sign_in

    make_staff(session)
    missed_call(phone)
    tick(app)
    twilio.fail_next = 99
    clock.now += timedelta(minutes=5, seconds=1)
    for _ in range(10):  # level 2's pages fail until they are given up
        tick(app)
        clock.now += timedelta(minutes=15)
    sign_in(client)
    number = the_ticket(session).number
    page = client.get(f"/support/tickets/{number}").get_data(as_text=True)
    assert 'id="messages"' in page and "Anna Jansen" in page and "Sent" in page
    assert "Bas de Vries" in page and "Failed" in page and "Twilio 500" in page
    queue = client.get("/support").get_data(as_text=True)
    assert 'id="failed-messages"' in queue
    outbox = client.get("/support/messages").get_data(as_text=True)
    assert "Bas de Vries" in outbox and "Twilio 500" in outbox
