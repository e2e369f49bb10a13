import logging
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest
from helpers import AMSTERDAM, EMERGENCY_NUMBER, MONDAY_MORNING, dialled, spoken
from resilience_helpers import SUPER_PHONE, SUPER_PIN, assert_safe_twiml, make_directory
from sqlalchemy import select
from sqlalchemy.exc import DataError
from support_helpers import IsolatedClient, make_staff, sign_in

from ivr.emergency import pins
from ivr.models import CallLog, PinFailure
from tickets import pin_guard
from tickets.models import AuditEvent, Ticket, TicketCall, TicketEvent

ENGINEERS = ["+31318584941", "+31318584942"]
STRANGER = "+31622222222"
SATURDAY = datetime(2026, 12, 5, 11, 0, tzinfo=AMSTERDAM)


@pytest.fixture
def directory(session, clock):
    return make_directory(session)


def action(root: ET.Element) -> str:
    gather = root.find("Gather")
    assert gather is not None, ET.tostring(root, encoding="unicode")
    return gather.get("action")


def guess(phone, caller: str, pins: list[str]) -> ET.Element:
    """Call the emergency line from `caller` and type wrong PINs until none is asked for."""
    call = phone(to=EMERGENCY_NUMBER, from_=caller)
    root = call.start()
    for pin in pins:
        if not action(root).startswith("/voice/emergency/pin"):
            break
        root = call.press(root, pin)
    return root


def tickets(session) -> list[Ticket]:
    return list(session.scalars(select(Ticket).order_by(Ticket.id)))


def timeline(session, ticket: Ticket) -> list[tuple[str, str | None]]:
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    return [(event.kind, event.detail) for event in session.scalars(query)]


def engineer_leg(phone, call, number: ET.Element):
    """Return the engineer's leg Twilio creates for a <Number>, and its screening TwiML."""
    leg = phone(to=number.text.strip(), from_=call.base.get("From"))
    leg.base.update(Direction="outbound-dial", ParentCallSid=call.sid, CallStatus="in-progress")
    return leg, leg.post(number.get("url"))


# ------------------------------------------------------------------ no lock-out of real users


def test_wrong_pins_from_withheld_numbers_do_not_keep_a_real_user_off_the_line(
    phone, session, directory, settings
):
    # Five wrong PINs from withheld numbers close PIN entry for every withheld caller...
    guess(phone, "anonymous", ["100000", "100001", "100002"])
    guess(phone, "restricted", ["100003", "100004"])
    assert session.query(PinFailure).count() == 5

    # ...but a real user calling with a withheld number still reaches an engineer.
    call = phone(to=EMERGENCY_NUMBER, from_="")
    root = call.start()
    assert [say.text for say in root.iter("Say")] == [
        "Welkom bij de noodlijn van OTYS support.",
        "Pincodes kunnen nu niet worden gecontroleerd.",
        "U kunt toch doorgaan, als niet geverifieerde beller.",
        "Grote storing of omgeving onbereikbaar, toets 1. Dringende bug, toets 2.",
    ]
    assert action(root).startswith("/voice/emergency/unverified")
    assert tickets(session) == []  # nothing exists until the caller chooses to go on

    root = call.press(root, "1")
    [ticket] = tickets(session)
    assert (ticket.priority, ticket.reason, ticket.verified) == ("urgent", "outage", False)
    assert (ticket.contact_id, ticket.organization_id, ticket.caller) == (None, None, None)
    assert timeline(session, ticket) == [
        ("ticket_opened", "opened by an unverified emergency call in working hours"),
        ("unverified", "PIN not checked: too many recent wrong PINs from withheld numbers"),
        ("triage", "outage"),
        ("engineer_rung", "Support engineer 1"),
        ("engineer_rung", "Support engineer 2"),
    ]
    says = [say.text for say in root.iter("Say")]
    assert says == [f"Ticketnummer {' '.join(ticket.number)}.", "Dit gesprek wordt opgenomen."]
    assert dialled(root) == ENGINEERS
    assert_safe_twiml(root, settings)

    # The engineer hears that the caller is not verified, and decides.
    leg, screen = engineer_leg(phone, call, root.find("Dial/Number"))
    assert spoken(screen) == (
        "Urgente oproep van een niet geverifieerde beller, nummer afgeschermd. "
        "Pincode niet bevestigd. Reden: grote storing. Toets 1 om het gesprek aan te nemen."
    )
    assert [verb.tag for verb in screen] == ["Gather", "Hangup"]
    accepted = leg.press(screen, "1")
    assert spoken(accepted) == "U wordt verbonden."
    answered = session.scalar(select(TicketCall).where(TicketCall.sid == call.sid))
    session.refresh(answered)
    assert answered.answered_by == "Support engineer 1"


def test_a_caller_out_of_pin_tries_goes_on_unverified_and_nothing_typed_is_dialled(
    phone, session, directory, settings, caplog
):
    caplog.set_level(logging.INFO)
    typed = ["09001234", "0031900123", "00441234"]
    call = phone(to=EMERGENCY_NUMBER, from_=STRANGER)
    root = call.start()
    for pin in typed:
        root = call.press(root, pin)
    assert spoken(root).startswith("Die pincode is niet juist. U kunt toch doorgaan")
    root = call.press(root, "2")
    [ticket] = tickets(session)
    assert (ticket.reason, ticket.verified, ticket.caller) == ("urgent_bug", False, STRANGER)
    assert ("unverified", "PIN not confirmed: no right PIN within the tries of one call") in (
        timeline(session, ticket)
    )
    assert dialled(root) == ENGINEERS
    assert_safe_twiml(root, settings)
    _, screen = engineer_leg(phone, call, root.find("Dial/Number"))
    assert "nummer 3 1 6 2 2 2 2 2 2 2 2. Pincode niet bevestigd. Reden: dringende bug." in (
        spoken(screen)
    )
    # What the caller typed is kept nowhere: not on the ticket, the call log or the log.
    trail = session.scalar(select(CallLog.choices).where(CallLog.sid == call.sid))
    assert trail.endswith(f"pin:failed unverified:tries ticket:{ticket.number} triage:urgent_bug")
    kept = " ".join([trail, *caplog.messages, *(d or "" for _, d in timeline(session, ticket))])
    assert not any(pin in kept for pin in typed)


def test_silence_or_odd_keys_at_the_offer_end_the_call_politely_without_a_ticket(
    phone, session, directory
):
    call = phone(to=EMERGENCY_NUMBER, from_=STRANGER)
    root = call.press(call.start(), "111111")
    root = call.press(call.press(root, "222222"), "333333")
    root = call.press(root, "9")
    assert "Die keuze bestaat niet." in spoken(root)
    assert action(root).startswith("/voice/emergency/unverified")
    assert "U kunt toch doorgaan" not in spoken(root)  # the offer is made once
    root = call.silence(root)
    assert spoken(root).startswith("Wij konden u niet herkennen.")
    assert "kantoor" in spoken(root)
    assert [verb.tag for verb in root][-1] == "Hangup"
    assert root.find("Dial") is None
    assert tickets(session) == []


def test_an_unverified_caller_outside_hours_leaves_a_voicemail_on_an_unverified_ticket(
    phone, session, directory, clock
):
    clock.now = SATURDAY
    guess(phone, "anonymous", ["100000", "100001", "100002"])
    guess(phone, "anonymous", ["100003", "100004"])
    call = phone(to=EMERGENCY_NUMBER, from_="anonymous")
    root = call.press(call.start(), "2")
    assert "Onze noodlijn is bereikbaar" in spoken(root)
    assert root.find("Record") is not None and root.find("Dial") is None
    [ticket] = tickets(session)
    assert (ticket.in_hours, ticket.verified, ticket.reason) == (False, False, "urgent_bug")
    recording = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
    root = call.post(
        root.find("Record").get("action"), RecordingUrl=recording, RecordingSid="RE" + "1" * 32
    )
    assert f"Ticketnummer {' '.join(ticket.number)}." in spoken(root)
    outcome = session.scalar(select(TicketCall.outcome).where(TicketCall.sid == call.sid))
    assert outcome == "voicemail"


def test_a_retried_offer_webhook_opens_one_ticket(phone, session, directory):
    guess(phone, "anonymous", ["100000", "100001", "100002"])
    guess(phone, "anonymous", ["100003", "100004"])
    call = phone(to=EMERGENCY_NUMBER, from_="anonymous")
    offer = call.start()
    first = call.press(offer, "1")
    again = call.press(offer, "1")
    assert len(tickets(session)) == 1
    assert dialled(first) == dialled(again) == ENGINEERS


def test_the_right_pin_still_recognises_a_caller_within_the_limits(phone, session, directory):
    guess(phone, "anonymous", ["100000", "100001", "100002"])
    call = phone(to=EMERGENCY_NUMBER, from_="anonymous")
    root = call.press(call.start(), SUPER_PIN)
    assert spoken(root).startswith("Dank u, Sanne Visser")
    [ticket] = tickets(session)
    assert ticket.verified is True


# ------------------------------------------------------------------ no free guessing


def spoofed(n: int) -> str:
    return f"+3161000{n:04d}"


def test_spoofed_numbers_cannot_guess_past_the_line_wide_limit(
    phone, session, directory, clock, settings, caplog
):
    caplog.set_level(logging.WARNING)
    # Three wrong PINs from each of seven numbers: the twentieth pauses PIN checks line-wide.
    for n in range(7):
        root = guess(phone, spoofed(n), ["100000", "100001", "100002"])
    assert session.query(PinFailure).count() == 20
    assert spoken(root).startswith("Die pincode is niet juist. U kunt toch doorgaan")
    assert action(root).startswith("/voice/emergency/unverified")
    assert any(
        "PIN checks paused on the emergency line for 240 minutes: 20 wrong PINs within 15 "
        "minutes, from 7 numbers" in message
        for message in caplog.messages
    )
    [change] = session.scalars(select(AuditEvent)).all()
    assert (change.actor, change.action) == ("emergency line", "pin_checks_paused")
    assert change.detail == (
        "20 wrong PINs within 15 minutes, from 7 numbers; PIN checks paused for 240 minutes"
    )

    # From any other number, even the right PIN is no longer checked: guessing is pointless.
    call = phone(to=EMERGENCY_NUMBER, from_=spoofed(99))
    root = call.start()
    assert "Pincodes kunnen nu niet worden gecontroleerd." in spoken(root)
    assert action(root).startswith("/voice/emergency/unverified")
    root = call.post("/voice/emergency/pin?lang=nl&tries=0", Digits=SUPER_PIN)
    assert "Sanne Visser" not in spoken(root)
    assert session.query(PinFailure).count() == 20
    assert tickets(session) == []

    # The caller still reaches an engineer, unverified.
    root = call.press(root, "1")
    [ticket] = tickets(session)
    assert (ticket.verified, ticket.contact_id) == (False, None)
    assert (
        "unverified",
        "PIN not checked: PIN checks were paused line-wide after too many wrong PINs",
    ) in timeline(session, ticket)
    assert dialled(root) == ENGINEERS
    assert_safe_twiml(root, settings)

    # Callers recognised by their number are not affected.
    known = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    assert spoken(known.start()).startswith("Welkom Sanne Visser")

    # After the pause the right PIN works again, from any number.
    clock.now = MONDAY_MORNING + timedelta(minutes=239)
    assert "why=paused" in action(phone(to=EMERGENCY_NUMBER, from_=spoofed(100)).start())
    clock.now = MONDAY_MORNING + timedelta(minutes=241)
    later = phone(to=EMERGENCY_NUMBER, from_=spoofed(100))
    root = later.press(later.start(), SUPER_PIN)
    assert spoken(root).startswith("Dank u, Sanne Visser")


def test_pin_attempts_at_the_same_moment_cannot_together_get_past_the_limit(
    phone, session, directory, monkeypatch
):
    # Nineteen wrong PINs line-wide: one more PIN may be checked...
    session.add_all(
        PinFailure(caller_key=spoofed(n), call_sid=f"CA{n}", at=MONDAY_MORNING) for n in range(19)
    )
    session.commit()
    call = phone(to=EMERGENCY_NUMBER, from_=STRANGER)
    root = call.start()
    assert action(root).startswith("/voice/emergency/pin")

    # ...and another call's attempt is counted at the same moment as this one.
    count_attempt = pins.record_pin_failure

    def at_the_same_moment(session, **attempt):
        count_attempt(session, caller_key=spoofed(50), call_sid="CA-other", now=attempt["now"])
        return count_attempt(session, **attempt)

    monkeypatch.setattr(pins, "record_pin_failure", at_the_same_moment)
    root = call.press(root, SUPER_PIN)
    assert "Sanne Visser" not in spoken(root)
    assert "Pincodes kunnen nu niet worden gecontroleerd." in spoken(root)
    assert pin_guard.active_pause(session) is not None


def test_a_pin_whose_attempt_cannot_be_counted_is_not_checked(
    phone, session, directory, monkeypatch
):
    def broken(session, **attempt):
        raise DataError("INSERT INTO pin_failures", {}, Exception("simulated"))

    monkeypatch.setattr(pins, "record_pin_failure", broken)
    call = phone(to=EMERGENCY_NUMBER, from_=STRANGER)
    root = call.press(call.start(), SUPER_PIN)
    assert "Sanne Visser" not in spoken(root)
    assert action(root) == "/voice/emergency/unverified?lang=nl&why=uncounted&misses=0"
    root = call.press(root, "1")
    assert ("unverified", "PIN not checked: the attempt could not be counted") in timeline(
        session, tickets(session)[0]
    )


def test_a_right_pin_is_not_counted_as_a_wrong_one(phone, session, directory):
    guess(phone, "anonymous", ["100000", "100001"])
    call = phone(to=EMERGENCY_NUMBER, from_="anonymous")
    root = call.press(call.start(), SUPER_PIN)
    assert spoken(root).startswith("Dank u, Sanne Visser")
    assert session.query(PinFailure).count() == 2


def test_calls_tripping_the_limit_together_pause_pin_checks_once(session, clock):
    paused = []
    for _ in range(2):
        paused.append(
            pin_guard.pause_pin_checks(
                session, failures=20, numbers=7, window_minutes=15, minutes=60, now=MONDAY_MORNING
            )
        )
        session.commit()
    assert paused[0] is not None and paused[1] is None
    assert session.query(AuditEvent).count() == 1
    later = MONDAY_MORNING + timedelta(minutes=60)
    assert pin_guard.active_pause(session, now=later) is None
    again = pin_guard.pause_pin_checks(
        session, failures=21, numbers=2, window_minutes=15, minutes=60, now=later
    )
    session.commit()
    assert again.paused_until == later + timedelta(minutes=60)
    assert session.query(AuditEvent).count() == 2


# ------------------------------------------------------------------ support is told


def test_support_sees_the_pause_on_every_page_and_in_the_live_feed_while_it_lasts(
    app, session, directory, clock, phone
):
    app.test_client_class = IsolatedClient
    staff = app.test_client()
    make_staff(session)
    sign_in(staff)
    page = staff.get("/support").get_data(as_text=True)
    assert 'id="line-notice" class="line-notice" role="status" hidden>' in page
    assert staff.get("/support/feed?after=0").get_json()["notice"] is None

    for n in range(7):
        guess(phone, spoofed(n), ["100000", "100001", "100002"])
    notice = (
        "PIN checks on the emergency line are paused until 2026-12-07 14:00: 20 wrong PINs "
        "within 15 minutes, from 7 numbers. Callers whose number is not recognised go through "
        "to the engineers as unverified; the engineer decides."
    )
    for path in ("/support", "/support/oncall", "/support/settings"):
        page = staff.get(path).get_data(as_text=True)
        assert f'<div id="line-notice" class="line-notice" role="status">{notice}</div>' in page
    assert "PIN checks paused" in staff.get("/support/settings").get_data(as_text=True)
    assert staff.get("/support/feed?after=0").get_json()["notice"] == notice
    assert staff.get("/support/feed").get_json()["notice"] == notice

    # The unverified call's ticket says so in the live alert.
    call = phone(to=EMERGENCY_NUMBER, from_="anonymous")
    call.press(call.start(), "2")
    [item] = staff.get("/support/feed?after=0").get_json()["tickets"]
    assert item["summary"].endswith(": unverified caller (number withheld), urgent bug")

    clock.now = MONDAY_MORNING + timedelta(minutes=241)
    assert "line-notice" in staff.get("/support").get_data(as_text=True)
    assert staff.get("/support/feed?after=0").get_json()["notice"] is None
    assert notice not in staff.get("/support").get_data(as_text=True)
