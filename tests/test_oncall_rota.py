from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from tickets.models import OnCallShift, StaffUser
from tickets.oncall.calendar import CalendarRejected
from tickets.oncall.imports import import_level
from tickets.rota import RotaError, add_override, on_call_at, remove_override

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=AMS)


@pytest.fixture
def engineers(session):
    people = {
        "anna": StaffUser(
            email="anna@otys.example", name="Anna Jansen", password_hash="x", phone="+31611111111"
        ),
        "bas": StaffUser(
            email="bas@otys.example", name="Bas de Vries", password_hash="x", phone="+31622222222"
        ),
        "carla": StaffUser(
            email="carla@otys.example", name="Carla Smit", password_hash="x", phone="+31633333333"
        ),
        "dirk": StaffUser(email="dirk@otys.example", name="Dirk Bakker", password_hash="x"),
    }
    session.add_all(people.values())
    session.commit()
    return people


def calendar(*events: str) -> bytes:
    body = "\r\n".join(
        ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *events, "END:VCALENDAR"]
    )
    return (body + "\r\n").encode()


def event(uid: str, *lines: str) -> str:
    return "\r\n".join(
        ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z", *lines, "END:VEVENT"]
    )


# Anna from Monday 09:00 to Thursday 09:00, Bas from Thursday 09:00 to Monday 09:00, weekly.
WEEKLY_ROTA = calendar(
    event(
        "anna-week",
        "DTSTART;TZID=Europe/Amsterdam:20261005T090000",
        "DTEND;TZID=Europe/Amsterdam:20261008T090000",
        "RRULE:FREQ=WEEKLY",
        "SUMMARY:On call",
        "ATTENDEE;CN=Anna:mailto:Anna@otys.example",
    ),
    event(
        "bas-week",
        "DTSTART;TZID=Europe/Amsterdam:20261008T090000",
        "DTEND;TZID=Europe/Amsterdam:20261012T090000",
        "RRULE:FREQ=WEEKLY",
        "SUMMARY:Bas de Vries",
    ),
)


def names_at(session, moment) -> dict[int, list[str]]:
    return {level.level: [e.name for e in level.engineers] for level in on_call_at(session, moment)}


def imported(session, data: bytes, level: int = 1, now: datetime = NOW) -> int:
    result = import_level(session, data, level=level, zone=AMS, now=now, horizon_days=366)
    session.commit()
    return result


def test_a_weekly_rota_names_one_engineer_on_monday_and_another_on_thursday(session, engineers):
    assert imported(session, WEEKLY_ROTA) > 50
    assert names_at(session, local(2026, 11, 30, 10, 0)) == {1: ["Anna Jansen"]}
    assert names_at(session, local(2026, 12, 3, 10, 0)) == {1: ["Bas de Vries"]}
    # The hand-over is at 09:00 local time exactly.
    assert names_at(session, local(2026, 12, 3, 8, 59)) == {1: ["Anna Jansen"]}


def test_the_weekly_hand_over_stays_at_nine_across_the_summer_time_change(session, engineers):
    imported(session, WEEKLY_ROTA, now=datetime(2026, 10, 20, tzinfo=UTC))
    # 2026-10-25 the clocks went back; the Thursday after, 09:00 is 08:00 UTC, not 07:00.
    assert names_at(session, datetime(2026, 10, 29, 7, 30, tzinfo=UTC)) == {1: ["Anna Jansen"]}
    assert names_at(session, datetime(2026, 10, 29, 8, 0, tzinfo=UTC)) == {1: ["Bas de Vries"]}
    # And a shift running over the change night itself covers every moment of it.
    assert names_at(session, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == {1: ["Bas de Vries"]}
    assert names_at(session, datetime(2026, 10, 25, 1, 30, tzinfo=UTC)) == {1: ["Bas de Vries"]}


def test_exdates_and_moved_instances_are_honoured(session, engineers):
    data = calendar(
        event(
            "anna-days",
            "DTSTART;TZID=Europe/Amsterdam:20261130T080000",
            "DTEND;TZID=Europe/Amsterdam:20261130T170000",
            "RRULE:FREQ=DAILY;COUNT=5",
            "EXDATE;TZID=Europe/Amsterdam:20261202T080000",
            "ATTENDEE:mailto:anna@otys.example",
        ),
        event(
            "anna-days",
            "RECURRENCE-ID;TZID=Europe/Amsterdam:20261203T080000",
            "DTSTART;TZID=Europe/Amsterdam:20261203T120000",
            "DTEND;TZID=Europe/Amsterdam:20261203T200000",
            "ATTENDEE:mailto:carla@otys.example",
        ),
    )
    imported(session, data)
    assert names_at(session, local(2026, 12, 1, 9, 0)) == {1: ["Anna Jansen"]}
    assert names_at(session, local(2026, 12, 2, 9, 0)) == {}
    assert names_at(session, local(2026, 12, 3, 9, 0)) == {}
    assert names_at(session, local(2026, 12, 3, 19, 0)) == {1: ["Carla Smit"]}


def test_all_day_and_floating_events_are_read_in_the_service_zone(session, engineers):
    data = calendar(
        event(
            "carla-day",
            "DTSTART;VALUE=DATE:20261207",
            "DTEND;VALUE=DATE:20261208",
            "SUMMARY:carla@otys.example",
        ),
        event(
            "bas-floating",
            "DTSTART:20261209T090000",
            "DTEND:20261209T100000",
            "SUMMARY:Bas de Vries",
        ),
    )
    imported(session, data, level=2)
    assert names_at(session, local(2026, 12, 7, 0, 0)) == {2: ["Carla Smit"]}
    assert names_at(session, local(2026, 12, 7, 23, 59)) == {2: ["Carla Smit"]}
    assert names_at(session, local(2026, 12, 8, 0, 0)) == {}
    assert names_at(session, local(2026, 12, 9, 9, 30)) == {2: ["Bas de Vries"]}


def test_an_event_naming_nobody_known_rejects_the_file_and_changes_nothing(session, engineers):
    imported(session, WEEKLY_ROTA)
    before = session.scalar(select(func.count()).select_from(OnCallShift))
    data = calendar(
        event("ok", "DTSTART:20261207T090000Z", "DTEND:20261207T170000Z", "SUMMARY:Anna Jansen"),
        event("who", "DTSTART:20261208T090000Z", "DTEND:20261208T170000Z", "SUMMARY:Zoe"),
        event(
            "dirk",
            "DTSTART:20261209T090000Z",
            "DTEND:20261209T170000Z",
            "ATTENDEE:mailto:dirk@otys.example",
        ),
    )
    with pytest.raises(CalendarRejected) as rejected:
        imported(session, data)
    problems = rejected.value.problems
    assert len(problems) == 2
    assert "'Zoe'" in problems[0] and "nobody known" in problems[0]
    assert "dirk@otys.example" in problems[1] and "no phone" in problems[1]
    assert session.scalar(select(func.count()).select_from(OnCallShift)) == before


def test_garbage_is_rejected_with_a_reason(session, engineers):
    with pytest.raises(CalendarRejected) as rejected:
        imported(session, b"this is no calendar")
    assert "iCalendar" in rejected.value.problems[0]


def test_reimporting_a_level_replaces_only_that_levels_imported_shifts(session, engineers):
    imported(session, WEEKLY_ROTA, level=1)
    imported(
        session,
        calendar(
            event("c", "DTSTART:20261130T000000Z", "DTEND:20261207T000000Z", "SUMMARY:Carla Smit")
        ),
        level=2,
    )
    add_override(
        session,
        level=1,
        staff=engineers["carla"],
        starts_at=local(2026, 12, 1, 0, 0),
        ends_at=local(2026, 12, 1, 23, 0),
        added_by="test",
    )
    session.commit()
    imported(
        session,
        calendar(
            event("b", "DTSTART:20261130T000000Z", "DTEND:20261207T000000Z", "SUMMARY:Bas de Vries")
        ),
        level=1,
    )
    assert names_at(session, local(2026, 11, 30, 10, 0)) == {1: ["Bas de Vries"], 2: ["Carla Smit"]}
    assert names_at(session, local(2026, 12, 1, 10, 0)) == {1: ["Carla Smit"], 2: ["Carla Smit"]}


def test_an_override_wins_over_the_calendar_and_can_be_removed(session, engineers):
    imported(session, WEEKLY_ROTA)
    shift = add_override(
        session,
        level=1,
        staff=engineers["carla"],
        starts_at=local(2026, 11, 30, 12, 0),
        ends_at=local(2026, 11, 30, 18, 0),
        added_by="admin@otys.example",
    )
    session.commit()
    assert names_at(session, local(2026, 11, 30, 13, 0)) == {1: ["Carla Smit"]}
    assert names_at(session, local(2026, 11, 30, 11, 0)) == {1: ["Anna Jansen"]}
    assert remove_override(session, shift_id=shift.id)
    assert names_at(session, local(2026, 11, 30, 13, 0)) == {1: ["Anna Jansen"]}


def test_an_override_needs_a_ringable_engineer_and_a_real_span(session, engineers):
    with pytest.raises(RotaError, match="no phone"):
        add_override(
            session,
            level=1,
            staff=engineers["dirk"],
            starts_at=NOW,
            ends_at=local(2026, 12, 30, 0, 0),
            added_by="t",
        )
    with pytest.raises(RotaError, match="after the start"):
        add_override(
            session, level=1, staff=engineers["anna"], starts_at=NOW, ends_at=NOW, added_by="t"
        )
    with pytest.raises(RotaError, match="level"):
        add_override(
            session,
            level=7,
            staff=engineers["anna"],
            starts_at=NOW,
            ends_at=local(2026, 12, 30, 0, 0),
            added_by="t",
        )


def test_a_deactivated_engineer_is_not_on_call(session, engineers):
    imported(session, WEEKLY_ROTA)
    engineers["anna"].active = False
    session.commit()
    assert names_at(session, local(2026, 11, 30, 10, 0)) == {}


def test_the_effective_rota_shows_overrides_in_place_of_the_calendar(session, engineers):
    from tickets.rota import effective_rota, shifts_between

    imported(session, WEEKLY_ROTA)
    add_override(
        session,
        level=1,
        staff=engineers["carla"],
        starts_at=local(2026, 12, 1, 12, 0),
        ends_at=local(2026, 12, 1, 18, 0),
        added_by="t",
    )
    session.commit()
    start, end = local(2026, 11, 30, 0, 0), local(2026, 12, 7, 0, 0)
    segments = effective_rota(shifts_between(session, start, end), start, end)[1]
    summary = [
        (
            s.starts_at.astimezone(AMS).strftime("%a %H:%M"),
            [e.name for e in s.engineers],
            s.override,
        )
        for s in segments
    ]
    assert summary == [
        ("Mon 00:00", ["Bas de Vries"], False),
        ("Mon 09:00", ["Anna Jansen"], False),
        ("Tue 12:00", ["Carla Smit"], True),
        ("Tue 18:00", ["Anna Jansen"], False),
        ("Thu 09:00", ["Bas de Vries"], False),
    ]
    assert segments[-1].ends_at == end


def test_history_outside_the_import_window_does_not_block_a_new_rota(session, engineers):
    data = calendar(
        event("old", "DTSTART:20240101T090000Z", "DTEND:20240102T090000Z", "SUMMARY:Left In 2024"),
        event(
            "dirk-old",
            "DTSTART:20240201T090000Z",
            "DTEND:20240202T090000Z",
            "ATTENDEE:mailto:dirk@otys.example",
        ),
        event("now", "DTSTART:20261207T090000Z", "DTEND:20261208T090000Z", "SUMMARY:Anna Jansen"),
    )
    assert imported(session, data) == 1
    assert names_at(session, datetime(2026, 12, 7, 12, 0, tzinfo=UTC)) == {1: ["Anna Jansen"]}


def test_cancelled_instances_and_declined_attendees_are_not_on_call(session, engineers):
    data = calendar(
        event(
            "weekly",
            "DTSTART;TZID=Europe/Amsterdam:20261130T090000",
            "DTEND;TZID=Europe/Amsterdam:20261130T170000",
            "RRULE:FREQ=WEEKLY;COUNT=3",
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:anna@otys.example",
            "ATTENDEE;PARTSTAT=DECLINED:mailto:bas@otys.example",
            # The rota's organiser, listed as attendee, without a phone: passed over.
            "ATTENDEE;ROLE=CHAIR:mailto:dirk@otys.example",
        ),
        event(
            "weekly",
            "RECURRENCE-ID;TZID=Europe/Amsterdam:20261207T090000",
            "DTSTART;TZID=Europe/Amsterdam:20261207T090000",
            "DTEND;TZID=Europe/Amsterdam:20261207T170000",
            "STATUS:CANCELLED",
            "ATTENDEE:mailto:anna@otys.example",
        ),
    )
    imported(session, data)
    assert names_at(session, local(2026, 11, 30, 10, 0)) == {1: ["Anna Jansen"]}
    assert names_at(session, local(2026, 12, 7, 10, 0)) == {}
    assert names_at(session, local(2026, 12, 14, 10, 0)) == {1: ["Anna Jansen"]}
