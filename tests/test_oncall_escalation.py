"""The emergency line rings who is on call, level by level, with signed webhooks and real TwiML."""

from datetime import datetime, timedelta

import pytest
from helpers import AMSTERDAM, EMERGENCY_NUMBER, MONDAY_MORNING, dialled, spoken
from resilience_helpers import DatabaseOutage
from sqlalchemy import select

from tickets.models import Contact, ContactPhone, Organization, StaffUser, TicketCall, TicketEvent
from tickets.oncall.imports import import_level
from tickets.rota import add_override

CALLER = "+31611110000"
ANNA, BAS, CARLA, DIRK = "+31620000001", "+31620000002", "+31620000003", "+31620000004"
THURSDAY_MORNING = datetime(2026, 12, 10, 10, 0, tzinfo=AMSTERDAM)

WEEKLY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:anna-week
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Amsterdam:20261102T090000
DTEND;TZID=Europe/Amsterdam:20261105T090000
RRULE:FREQ=WEEKLY
ATTENDEE:mailto:anna@otys.test
END:VEVENT
BEGIN:VEVENT
UID:bas-week
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Amsterdam:20261105T090000
DTEND;TZID=Europe/Amsterdam:20261109T090000
RRULE:FREQ=WEEKLY
SUMMARY:Bas de Vries
END:VEVENT
END:VCALENDAR
"""


def all_week(*names: str) -> bytes:
    events = "".join(
        f"BEGIN:VEVENT\nUID:{name}\nDTSTAMP:20261101T000000Z\nDTSTART:20261101T000000Z\n"
        f"DTEND:20270101T000000Z\nSUMMARY:{name}\nEND:VEVENT\n"
        for name in names
    )
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\n{events}END:VCALENDAR\n".encode()


@pytest.fixture
def people(session, clock):
    acme = Organization(name="Acme Uitzendbureau")
    sanne = Contact(
        organization=acme, name="Sanne Visser", email="s@acme.example", role="super_user"
    )
    sanne.phones.append(ContactPhone(number=CALLER))
    staff = {
        name: StaffUser(
            email=f"{name.split()[0].lower()}@otys.test", name=name, password_hash="x", phone=phone
        )
        for name, phone in (
            ("Anna Jansen", ANNA),
            ("Bas de Vries", BAS),
            ("Carla Smit", CARLA),
            ("Dirk Bakker", DIRK),
        )
    }
    session.add_all([acme, *staff.values()])
    session.commit()
    return staff


def rota(session, clock, level: int, data: bytes | str) -> None:
    data = data.encode() if isinstance(data, str) else data
    import_level(session, data, level=level, zone=AMSTERDAM, now=clock.now, horizon_days=60)
    session.commit()


def ring(phone, key: str = "1"):
    call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
    root = call.press(call.start(), key)
    assert root.find("Dial") is not None
    return call, root


def timeline(session, kind: str) -> list[str]:
    session.expire_all()
    return list(
        session.scalars(
            select(TicketEvent.detail).where(TicketEvent.kind == kind).order_by(TicketEvent.id)
        )
    )


def test_a_weekly_rota_rings_anna_on_monday_and_bas_on_thursday(phone, session, clock, people):
    rota(session, clock, 1, WEEKLY)
    clock.now = MONDAY_MORNING
    _, monday = ring(phone)
    assert dialled(monday) == [ANNA]
    clock.now = THURSDAY_MORNING
    _, thursday = ring(phone)
    assert dialled(thursday) == [BAS]


def test_level_one_not_accepting_rings_level_two_then_three_then_round_two(
    phone, session, clock, people, settings
):
    rota(session, clock, 1, all_week("Anna Jansen"))
    rota(session, clock, 2, all_week("Carla Smit", "Bas de Vries"))
    rota(session, clock, 3, all_week("Dirk Bakker"))
    call, root = ring(phone)
    assert dialled(root) == [ANNA]
    assert root.find("Dial").get("timeout") == str(settings.oncall.ring_seconds(1))
    root = call.dial_result(root, "no-answer")
    assert sorted(dialled(root)) == sorted([BAS, CARLA])
    root = call.dial_result(root, "busy")
    assert dialled(root) == [DIRK]
    assert root.find("Dial").get("timeout") == str(settings.oncall.ring_seconds(3))
    for level_numbers in ([ANNA], [BAS, CARLA], [DIRK]):  # the second round (rounds = 2)
        root = call.dial_result(root, "no-answer")
        assert sorted(dialled(root)) == sorted(level_numbers)
    root = call.dial_result(root, "no-answer")
    assert root.find("Dial") is None
    assert root.find("Record") is not None
    assert "Spreek na de toon" in spoken(root)
    rung = timeline(session, "engineer_rung")
    assert rung[:4] == [
        "Anna Jansen (level 1)",
        "Bas de Vries (level 2)",
        "Carla Smit (level 2)",
        "Dirk Bakker (level 3)",
    ]
    assert "Anna Jansen (level 1, round 2)" in rung
    assert timeline(session, "engineers_unavailable")


def test_the_engineer_who_accepts_is_named_on_the_ticket(phone, session, clock, people):
    rota(session, clock, 1, all_week("Anna Jansen"))
    call, root = ring(phone)
    number = root.find("Dial").find("Number")
    leg = {
        "Direction": "outbound-dial",
        "ParentCallSid": call.sid,
        "To": ANNA,
        "CallSid": "CA" + "e" * 32,
    }
    screen = call.post(number.get("url"), **leg)
    assert "Acme Uitzendbureau" in spoken(screen) and "Sanne Visser" in spoken(screen)
    accepted = call.post(screen.find("Gather").get("action"), Digits="1", **leg)
    assert accepted.find("Hangup") is None
    call.dial_result(root, "completed", DialBridged="true")
    session.expire_all()
    ticket_call = session.scalar(select(TicketCall).where(TicketCall.sid == call.sid))
    assert ticket_call.answered_by == "Anna Jansen"
    assert ticket_call.outcome == "answered"


def test_someone_on_two_levels_is_not_rung_twice_in_a_row(phone, session, clock, people):
    rota(session, clock, 1, all_week("Anna Jansen"))
    rota(session, clock, 2, all_week("Anna Jansen", "Carla Smit"))
    call, root = ring(phone)
    assert dialled(root) == [ANNA]
    root = call.dial_result(root, "no-answer")
    assert dialled(root) == [CARLA]


def test_a_level_of_only_the_same_person_is_skipped(phone, session, clock, people):
    rota(session, clock, 1, all_week("Anna Jansen"))
    rota(session, clock, 2, all_week("Anna Jansen"))
    rota(session, clock, 3, all_week("Dirk Bakker"))
    call, root = ring(phone)
    root = call.dial_result(root, "no-answer")
    assert dialled(root) == [DIRK]


def test_an_override_wins_over_the_calendar(phone, session, clock, people):
    rota(session, clock, 1, WEEKLY)
    add_override(
        session,
        level=1,
        staff=people["Carla Smit"],
        starts_at=clock.now - timedelta(hours=1),
        ends_at=clock.now + timedelta(hours=3),
        added_by="test",
    )
    session.commit()
    _, root = ring(phone)
    assert dialled(root) == [CARLA]


def test_an_empty_rota_rings_the_configured_engineers(phone, session, people, settings):
    _, root = ring(phone)
    assert dialled(root) == [engineer.number for engineer in settings.emergency.engineers]
    urls = [number.get("url") for number in root.iter("Number")]
    assert all("eng=" in url and "staff=" not in url for url in urls)


def test_a_rota_that_empties_during_the_call_falls_back_to_the_configured_engineers(
    phone, session, clock, people, settings
):
    add_override(
        session,
        level=1,
        staff=people["Anna Jansen"],
        starts_at=clock.now - timedelta(hours=1),
        ends_at=clock.now + timedelta(seconds=30),
        added_by="test",
    )
    session.commit()
    call, root = ring(phone)
    assert dialled(root) == [ANNA]
    clock.now = clock.now + timedelta(minutes=1)
    root = call.dial_result(root, "no-answer")
    assert dialled(root) == [engineer.number for engineer in settings.emergency.engineers]


def test_with_the_database_down_the_configured_engineers_ring(
    phone, session, clock, people, settings
):
    rota(session, clock, 1, all_week("Anna Jansen"))
    outage = DatabaseOutage().start()
    try:
        call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
        root = call.start()
    finally:
        outage.end()
    assert dialled(root) == [engineer.number for engineer in settings.emergency.engineers]
    assert ANNA not in dialled(root)


def test_odd_escalation_state_in_the_url_never_dials_anything_unconfigured(
    phone, session, clock, people, settings
):
    rota(session, clock, 1, all_week("Anna Jansen"))
    call, root = ring(phone)
    allowed = {ANNA, BAS, CARLA, DIRK} | {e.number for e in settings.emergency.engineers}
    for query in (
        "round=9&level=9&prev=1,2,x",
        "round=1&level=1&prev=" + ",".join(["9"] * 500),
        "round=-1&level=abc",
        "level=1",
    ):
        answer = call.post(f"/voice/emergency/dialled?lang=nl&{query}", DialCallStatus="no-answer")
        assert set(dialled(answer)) <= allowed


def test_a_leg_without_our_engineer_in_the_url_is_named_by_its_phone(phone, session, clock, people):
    rota(session, clock, 1, all_week("Anna Jansen"))
    call, root = ring(phone)
    ticket = root.find("Dial").find("Number").get("url").split("ticket=")[1].split("&")[0]
    leg = {"Direction": "outbound-dial", "ParentCallSid": call.sid, "To": ANNA}
    call.post(f"/voice/emergency/accept?ticket={ticket}", Digits="1", **leg)
    session.expire_all()
    ticket_call = session.scalar(select(TicketCall).where(TicketCall.sid == call.sid))
    assert ticket_call.answered_by == "Anna Jansen"


def test_the_database_going_away_during_the_escalation_rings_the_configured_engineers(
    phone, session, clock, people, settings
):
    rota(session, clock, 1, all_week("Anna Jansen"))
    call, root = ring(phone)
    assert dialled(root) == [ANNA]
    outage = DatabaseOutage().start()
    try:
        root = call.dial_result(root, "no-answer")
    finally:
        outage.end()
    assert dialled(root) == [engineer.number for engineer in settings.emergency.engineers]


def test_a_caller_on_the_open_ticket_hears_the_same_ticket_sentence_after_a_voicemail(
    phone, session, clock, people, settings
):
    ring(phone)
    call, root = ring(phone, "2")
    assert "Lopend ticket" in spoken(root)
    for _ in range(2 * len(settings.emergency.engineers) + 1):
        if root.find("Dial") is None:
            break
        root = call.dial_result(root, "no-answer")
    record = root.find("Record")
    after = call.post(
        record.get("action"), RecordingUrl="https://api.twilio.com/rec/RE1", RecordingDuration="7"
    )
    assert "Lopend ticket" in spoken(after)


def test_callers_are_told_of_the_recording_also_without_the_database(phone, session, people):
    outage = DatabaseOutage().start()
    try:
        root = phone(to=EMERGENCY_NUMBER, from_=CALLER).start()
    finally:
        outage.end()
    says = [verb.text for verb in root if verb.tag == "Say"]
    assert "Dit gesprek wordt opgenomen." in says
    assert root.find("Dial").get("record") == "record-from-answer-dual"


def test_the_timeline_keeps_what_each_engineer_did_in_every_round(phone, session, clock, people):
    rota(session, clock, 1, all_week("Anna Jansen"))
    call, root = ring(phone)
    leg = {"Direction": "outbound-dial", "ParentCallSid": call.sid, "To": ANNA}
    for _ in range(2):  # two rounds of Anna refusing
        screen = call.post(root.find("Dial").find("Number").get("url"), **leg)
        call.post(screen.find("Gather").get("action"), Digits="9", **leg)
        root = call.dial_result(root, "no-answer")
    assert timeline(session, "engineer_refused") == [
        "Anna Jansen (level 1)",
        "Anna Jansen (level 1, round 2)",
    ]
    assert root.find("Record") is not None
