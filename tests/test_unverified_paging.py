"""Unverified calls: one ticket per calling number, paged by a digest at most once a window,
and an SMS acknowledgement that never guesses which ticket is meant.

Messages go through the real clients to local servers; the clock is moved, never slept.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from helpers import EMERGENCY_NUMBER, PUBLIC_URL, parse_twiml, sign, spoken
from message_servers import MailServer
from resilience_helpers import SUPER_PHONE, make_directory
from sqlalchemy import select

from bench.standin import TwilioStandIn
from ivr.messaging.sender import tick
from tickets.models import OutboxMessage, Page, StaffUser, Ticket, TicketCall
from tickets.rota import add_override

ACCOUNT_SID = "AC" + "8" * 32
SMS_FROM = "+31612340000"
ANNA, BAS, CARLA = "+31620000001", "+31620000002", "+31620000003"
ENGINEERS = (ANNA, BAS, CARLA)
STRANGER = "+31622222222"


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
def mode() -> dict:
    return {}


@pytest.fixture
def settings_overrides(twilio, mail, mode):
    twilio.sent.clear()
    twilio.fail_next = twilio.requests = 0
    mail.messages.clear()
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_url": twilio.url,
        "paging.sms_from": SMS_FROM,
        "paging.smtp_url": mail.url,
        **mode,
    }


@pytest.fixture
def staff(session, clock):
    make_directory(session)
    people = {
        name.split()[0].lower(): StaffUser(
            email=f"{name.split()[0].lower()}@otys.test", name=name, password_hash="x", phone=phone
        )
        for name, phone in (("Anna Jansen", ANNA), ("Bas de Vries", BAS), ("Carla Smit", CARLA))
    }
    session.add_all(people.values())
    session.commit()
    week = (clock.now - timedelta(days=1), clock.now + timedelta(days=6))
    for level, who in ((1, "anna"), (2, "bas"), (2, "carla")):
        add_override(
            session,
            level=level,
            staff=people[who],
            starts_at=week[0],
            ends_at=week[1],
            added_by="test",
        )
    return people


def unverified_call(phone, caller: str | None, *, hang_up: bool = True):
    """Stay silent at every PIN prompt, go on unverified with key 1, and hang up."""
    call = phone(to=EMERGENCY_NUMBER, from_=caller)
    root = call.start()
    while root.find("Gather") is not None and "/emergency/pin" in root.find("Gather").get("action"):
        root = call.silence(root)
    root = call.press(root, "1")
    if hang_up:
        call.hang_up(duration="20")
    return call, root


def known_call(phone) -> None:
    call = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    call.press(call.start(), "1")
    call.hang_up(duration="30")


def all_tickets(session) -> list[Ticket]:
    session.expire_all()
    return list(session.scalars(select(Ticket).order_by(Ticket.id)))


def engineer_texts(twilio) -> list:
    return [sms for sms in twilio.sent if sms.to in ENGINEERS]


def reply_sms(client, from_: str, body: str):
    data = {"MessageSid": "SM" + "7" * 32, "From": from_, "To": SMS_FROM, "Body": body}
    signature = sign(PUBLIC_URL + "/sms/incoming", data)
    answer = client.post("/sms/incoming", data=data, headers={"X-Twilio-Signature": signature})
    message = parse_twiml(answer).find("Message")
    return message.text if message is not None else None


# ------------------------------------------------------------------ merging


def test_unverified_calls_from_one_number_join_one_open_ticket(app, phone, session, clock, staff):
    for _ in range(3):
        unverified_call(phone, STRANGER)
        clock.now += timedelta(minutes=5)
    [ticket] = all_tickets(session)
    assert (ticket.caller, ticket.verified, len(ticket.calls)) == (STRANGER, False, 3)
    _, root = unverified_call(phone, STRANGER, hang_up=False)
    assert spoken(root).startswith(f"Lopend ticket {' '.join(ticket.number)}.")


def test_withheld_unverified_calls_are_not_merged(app, phone, session, clock, staff):
    unverified_call(phone, "anonymous")
    unverified_call(phone, "anonymous")
    assert len(all_tickets(session)) == 2


def test_an_unverified_call_after_the_earlier_ticket_was_resolved_opens_a_new_one(
    app, phone, session, clock, staff
):
    from tickets.lifecycle import change_status

    unverified_call(phone, STRANGER)
    with app.app_context():
        change_status(
            session, ticket=all_tickets(session)[0], staff=staff["anna"], status="resolved"
        )
    unverified_call(phone, STRANGER)
    assert len(all_tickets(session)) == 2


# ------------------------------------------------------------------ the digest


def test_twenty_unverified_calls_page_one_digest_a_window(
    app, phone, session, clock, staff, twilio, mail, settings
):
    start = clock.now
    for index in range(20):  # every 45 s, from 20 numbers: the last at 14 min 15 s
        unverified_call(phone, f"+316333300{index:02d}")
        tick(app)
        clock.now += timedelta(seconds=45)
    numbers = [ticket.number for ticket in all_tickets(session)]
    [first] = engineer_texts(twilio)
    assert first.to == ANNA and numbers[0] in first.body
    clock.now = start + timedelta(minutes=settings.paging.unverified_digest_minutes)
    tick(app)
    assert [sms.to for sms in engineer_texts(twilio)] == [ANNA, ANNA]
    emails = mail.to("anna@otys.test")
    assert len(emails) == 2 and len(mail.messages) == 2
    body = emails[1].get_payload(decode=True).decode()
    assert all(number in body for number in numbers[1:])
    assert not session.scalars(select(Page).where(Page.state == "active")).all()
    clock.now += timedelta(hours=2)
    tick(app)
    assert len(engineer_texts(twilio)) == 2  # nothing new: no digest


def test_another_call_on_an_unverified_ticket_is_in_the_next_digest(
    app, phone, session, clock, staff, twilio, settings
):
    unverified_call(phone, STRANGER)
    tick(app)
    clock.now += timedelta(minutes=2)
    unverified_call(phone, STRANGER)
    tick(app)
    assert len(engineer_texts(twilio)) == 1
    clock.now += timedelta(minutes=settings.paging.unverified_digest_minutes)
    tick(app)
    [ticket] = all_tickets(session)
    assert [ticket.number in sms.body for sms in engineer_texts(twilio)] == [True, True]


def test_verified_tickets_still_page_at_once_beside_the_digest(
    app, phone, session, clock, staff, twilio
):
    unverified_call(phone, STRANGER)
    tick(app)
    known_call(phone)
    tick(app)
    junk, real = all_tickets(session)
    texts = [sms.body for sms in engineer_texts(twilio)]
    assert len(texts) == 2 and junk.number in texts[0] and real.number in texts[1]
    assert session.scalar(select(Page.state).where(Page.ticket_id == real.id)) == "active"


def test_the_digest_goes_out_once_when_many_senders_tick_at_once(
    app, phone, session, clock, staff, twilio
):
    for index in range(5):
        unverified_call(phone, f"+316444400{index:02d}")
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
    [digest] = engineer_texts(twilio)
    assert all(ticket.number in digest.body for ticket in all_tickets(session))


# ------------------------------------------------------------------ acknowledging by SMS


def test_ok_with_two_unacknowledged_tickets_asks_which_and_acknowledges_nothing(
    app, client, phone, session, clock, staff, twilio
):
    known_call(phone)
    unverified_call(phone, STRANGER)
    tick(app)
    real, junk = all_tickets(session)
    answer = reply_sms(client, ANNA, "ok")
    assert real.number in answer and junk.number in answer
    assert [ticket.acknowledged_at for ticket in all_tickets(session)] == [None, None]
    answer = reply_sms(client, ANNA, real.number)
    assert f"Ticket {real.number} is op uw naam bevestigd" in answer
    real, junk = all_tickets(session)
    assert real.acknowledged_by.name == "Anna Jansen" and junk.acknowledged_at is None
    assert f"Ticket {junk.number} is op uw naam bevestigd" in reply_sms(client, ANNA, "1")


def test_a_ticket_number_from_staff_who_were_not_paged_for_it_acknowledges_nothing(
    app, client, phone, session, clock, staff, twilio
):
    known_call(phone)
    tick(app)  # level 1 (Anna) is paged; Carla is on level 2
    [ticket] = all_tickets(session)
    answer = reply_sms(client, CARLA, ticket.number)
    assert answer is not None and "niet opgeroepen" in answer
    assert all_tickets(session)[0].acknowledged_at is None
    assert reply_sms(client, CARLA, "ok") == (
        "Er is geen ticket om te bevestigen. Stuur het ticketnummer."
    )
    assert all_tickets(session)[0].acknowledged_at is None


def test_a_ticket_in_a_digest_may_be_acknowledged_by_its_number_by_whoever_got_the_digest(
    app, client, phone, session, clock, staff, twilio
):
    unverified_call(phone, STRANGER)
    unverified_call(phone, "+31633330001")
    tick(app)
    first, second = all_tickets(session)
    assert "niet opgeroepen" in reply_sms(client, BAS, second.number)
    assert "bevestigd" in reply_sms(client, ANNA, second.number)
    assert f"Ticket {first.number} is op uw naam" in reply_sms(client, ANNA, "ok")


# ------------------------------------------------------------------ emergency.unverified


@pytest.mark.parametrize("mode", [{"emergency.unverified": "voicemail"}], ids=["voicemail"])
def test_in_voicemail_mode_an_unverified_caller_leaves_a_voicemail_paged_by_digest(
    app, phone, session, clock, staff, twilio
):
    call, root = unverified_call(phone, STRANGER, hang_up=False)
    assert root.find(".//Dial") is None and root.find("Record") is not None
    assert "niet konden verifiëren" in spoken(root)
    thanks = call.post(
        root.find("Record").get("action"),
        RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        RecordingDuration="12",
    )
    [ticket] = all_tickets(session)
    assert " ".join(ticket.number) in spoken(thanks)
    call.hang_up(duration="30")
    tick(app)
    session.expire_all()
    call_row = session.scalars(select(TicketCall)).one()
    assert (call_row.outcome, ticket.verified) == ("voicemail", False)
    [digest] = engineer_texts(twilio)
    assert digest.to == ANNA and ticket.number in digest.body
    kinds = set(session.scalars(select(OutboxMessage.kind)))
    assert "page" not in kinds


def test_in_ring_mode_an_unverified_caller_rings_the_engineers(app, phone, session, staff):
    _, root = unverified_call(phone, STRANGER, hang_up=False)
    assert root.find("Dial") is not None
