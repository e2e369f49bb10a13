from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from helpers import AUTH_TOKEN, PUBLIC_URL, SECRET_KEY, dialled, spoken

from app.cli import main
from core.settings import Schedule
from ivr.hours import describe_hours, describe_moment, is_open, next_opening
from ivr.prompts import Speaker
from tickets.availability import set_hours_override

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WEEKDAYS = Schedule()
EVERY_DAY = Schedule(days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=AMSTERDAM)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def opened(schedule: Schedule, when: datetime, override: str = "auto") -> bool:
    return is_open(schedule, when, zone=AMSTERDAM, country="NL", override=override)


def next_open(schedule: Schedule, when: datetime) -> datetime | None:
    return next_opening(schedule, when, zone=AMSTERDAM, country="NL")


@pytest.fixture
def server_in_another_zone(monkeypatch):
    """Run the test as if the server's own clock were set to New Zealand time."""
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ------------------------------------------------------------------ the minutes around the edges


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        (8, 29, False),
        (8, 30, True),
        (12, 0, True),
        (17, 29, True),
        (17, 30, False),
        (23, 59, False),
    ],
)
def test_minutes_around_opening_and_closing(hour, minute, expected):
    assert opened(WEEKDAYS, local(2026, 3, 10, hour, minute)) is expected


def test_opening_is_read_in_amsterdam_time_not_utc():
    # 08:30 in Amsterdam is 07:30 UTC in winter and 06:30 UTC in summer.
    assert opened(WEEKDAYS, utc(2026, 1, 13, 7, 30))
    assert not opened(WEEKDAYS, utc(2026, 1, 13, 7, 29))
    assert opened(WEEKDAYS, utc(2026, 7, 7, 6, 30))
    assert not opened(WEEKDAYS, utc(2026, 7, 7, 6, 29))
    assert opened(WEEKDAYS, utc(2026, 7, 7, 15, 29))
    assert not opened(WEEKDAYS, utc(2026, 7, 7, 15, 30))


def test_just_after_midnight_utc_on_a_weekday_evening_is_closed():
    # Monday 23:30 UTC is already Tuesday 00:30 in Amsterdam: closed, not "Monday".
    assert not opened(EVERY_DAY, utc(2026, 3, 9, 23, 30))


def test_weekend_is_closed_by_default():
    assert not opened(WEEKDAYS, local(2026, 3, 14, 10, 0))
    assert not opened(WEEKDAYS, local(2026, 3, 15, 10, 0))


# ------------------------------------------------------------------ summer time changes


@pytest.mark.parametrize(
    ("day", "offset_hours"),
    [
        (date(2026, 3, 28), 1),  # Saturday before summer time: CET
        (date(2026, 3, 29), 2),  # summer time starts at 02:00: CEST from then on
        (date(2026, 10, 24), 2),  # Saturday before winter time: CEST
        (date(2026, 10, 25), 1),  # winter time starts at 03:00: CET from then on
    ],
)
def test_change_days_open_at_0830_local(day, offset_hours):
    opening_utc = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
        hours=8 - offset_hours, minutes=30
    )
    assert opened(EVERY_DAY, opening_utc)
    assert not opened(EVERY_DAY, opening_utc - timedelta(minutes=1))
    closing_utc = opening_utc + timedelta(hours=9)
    assert opened(EVERY_DAY, closing_utc - timedelta(minutes=1))
    assert not opened(EVERY_DAY, closing_utc)


def test_night_of_the_spring_change_is_closed():
    # 02:30 local does not exist on 29 March 2026; 01:30 UTC is 03:30 CEST.
    assert not opened(EVERY_DAY, utc(2026, 3, 29, 0, 30))
    assert not opened(EVERY_DAY, utc(2026, 3, 29, 1, 30))


def test_next_opening_across_the_spring_change_weekend():
    moment = next_open(WEEKDAYS, local(2026, 3, 27, 17, 30))
    assert moment == local(2026, 3, 30, 8, 30)
    assert moment.utcoffset() == timedelta(hours=2)
    assert moment.astimezone(UTC) == utc(2026, 3, 30, 6, 30)


def test_next_opening_across_the_autumn_change_weekend():
    moment = next_open(WEEKDAYS, local(2026, 10, 23, 18, 0))
    assert moment.astimezone(UTC) == utc(2026, 10, 26, 7, 30)
    assert moment.utcoffset() == timedelta(hours=1)


def test_next_opening_on_the_change_day_itself():
    moment = next_open(EVERY_DAY, local(2026, 3, 28, 20, 0))
    assert moment.astimezone(UTC) == utc(2026, 3, 29, 6, 30)
    moment = next_open(EVERY_DAY, local(2026, 10, 24, 20, 0))
    assert moment.astimezone(UTC) == utc(2026, 10, 25, 7, 30)


def test_server_time_zone_does_not_matter(server_in_another_zone):
    assert time.tzname[0] != "CET"
    assert opened(EVERY_DAY, utc(2026, 3, 29, 6, 30))
    assert not opened(EVERY_DAY, utc(2026, 3, 29, 6, 29))
    assert opened(EVERY_DAY, utc(2026, 10, 25, 7, 30))
    assert not opened(EVERY_DAY, utc(2026, 10, 25, 7, 29))
    assert next_open(WEEKDAYS, utc(2026, 3, 27, 16, 30)).astimezone(UTC) == utc(2026, 3, 30, 6, 30)


# ------------------------------------------------------------------ holidays


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2026, 4, 6), "Easter Monday"),
        (date(2026, 4, 27), "King's Day on a Monday"),
        (date(2025, 4, 26), "King's Day moved to Saturday because the 27th is a Sunday"),
        (date(2026, 12, 25), "Christmas Day"),
        (date(2026, 12, 26), "Second Day of Christmas"),
        (date(2027, 1, 1), "New Year's Day"),
    ],
)
def test_public_holidays_are_closed(day, why):
    assert not opened(EVERY_DAY, local(day.year, day.month, day.day, 10, 0)), why


def test_kings_day_is_not_on_the_sunday_it_was_moved_from():
    assert opened(EVERY_DAY, local(2025, 4, 27, 10, 0))


def test_the_day_after_easter_monday_is_open():
    assert opened(WEEKDAYS, local(2026, 4, 7, 8, 30))


def test_holidays_can_be_worked_when_configured():
    schedule = Schedule(public_holidays_closed=False)
    assert opened(schedule, local(2026, 4, 27, 10, 0))


def test_extra_closed_dates_from_config_are_closed():
    schedule = Schedule(closed_dates=[date(2026, 3, 11)])
    assert not opened(schedule, local(2026, 3, 11, 10, 0))
    assert opened(schedule, local(2026, 3, 12, 10, 0))
    assert next_open(schedule, local(2026, 3, 10, 18, 0)) == local(2026, 3, 12, 8, 30)


def test_next_opening_skips_a_holiday_weekend():
    # Thursday 24 December after closing: Christmas Friday, weekend, open Monday 28th.
    assert next_open(WEEKDAYS, local(2026, 12, 24, 17, 30)) == local(2026, 12, 28, 8, 30)
    # Easter weekend: Good Friday, Saturday, Sunday and Easter Monday are all closed.
    assert next_open(WEEKDAYS, local(2026, 4, 2, 18, 0)) == local(2026, 4, 7, 8, 30)


def test_next_opening_later_today_before_opening_time():
    assert next_open(WEEKDAYS, local(2026, 3, 10, 7, 0)) == local(2026, 3, 10, 8, 30)


def test_next_opening_while_open_is_the_next_working_day():
    assert next_open(WEEKDAYS, local(2026, 3, 13, 9, 0)) == local(2026, 3, 16, 8, 30)


def test_a_schedule_without_days_never_opens():
    assert next_open(Schedule(days=[]), local(2026, 3, 10, 10, 0)) is None


# ------------------------------------------------------------------ override


def test_override_open_and_closed_beat_the_schedule():
    sunday_night = local(2026, 3, 15, 3, 0)
    tuesday_morning = local(2026, 3, 10, 10, 0)
    assert opened(WEEKDAYS, sunday_night, override="open")
    assert not opened(WEEKDAYS, tuesday_morning, override="closed")
    assert opened(WEEKDAYS, tuesday_morning, override="auto")
    assert not opened(WEEKDAYS, sunday_night, override="auto")


# ------------------------------------------------------------------ saying it


@pytest.mark.parametrize(
    ("moment", "nl", "en"),
    [
        (local(2026, 3, 10, 8, 30), "vandaag om 08:30", "today at 08:30"),
        (local(2026, 3, 11, 8, 30), "morgen om 08:30", "tomorrow at 08:30"),
        (local(2026, 3, 16, 8, 30), "op maandag 16 maart om 08:30", "on Monday 16 March at 08:30"),
        (None, "op een later moment", "at a later time"),
    ],
)
def test_describe_moment_in_both_languages(settings, moment, nl, en):
    now = local(2026, 3, 10, 7, 0)
    assert describe_moment(moment, now, Speaker.for_language(settings, "nl")) == nl
    assert describe_moment(moment, now, Speaker.for_language(settings, "en")) == en


def test_describe_moment_counts_days_in_amsterdam_not_utc(settings):
    # 23:30 UTC on Monday is already Tuesday in Amsterdam: 08:30 Tuesday is "today".
    speak = Speaker.for_language(settings, "en")
    now = utc(2026, 3, 9, 23, 30)
    assert describe_moment(local(2026, 3, 10, 8, 30), now, speak) == "today at 08:30"


def test_describe_hours(settings):
    schedule = Schedule(opens="09:00", closes="17:00")
    assert describe_hours(schedule, Speaker.for_language(settings, "nl")) == (
        "op werkdagen van 09:00 tot 17:00"
    )


# ------------------------------------------------------------------ ivr hours set, live


def run_ivr(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the `ivr` console script in its own process, as support would."""
    environ = {
        **os.environ,
        "IVR_DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_SECRET_KEY": SECRET_KEY,
        "IVR_PUBLIC_URL": PUBLIC_URL,
    }
    environ.pop("IVR_CONFIG", None)
    script = Path(sys.executable).with_name("ivr")
    return subprocess.run(
        [str(script), *args],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.wall_clock  # waits for its own `ivr` process; the app's clock is pinned
def test_hours_set_takes_effect_on_the_next_webhook_of_the_running_app(
    clock, phone, session, database_url, tmp_path
):
    clock.now = local(2026, 3, 10, 10, 0)
    call = phone()
    menu = call.start()
    assert dialled(call.press(menu, "1")) == ["+31318584910"]

    result = run_ivr(database_url, tmp_path, "hours", "set", "closed")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hours override: closed"

    closed = call.press(menu, "1")
    assert dialled(closed) == []
    assert "gesloten" in spoken(closed)

    set_hours_override(session, mode="auto", set_by="test")
    session.commit()
    assert dialled(call.press(menu, "1")) == ["+31318584910"]


def test_hours_set_refuses_an_unknown_mode():
    result = CliRunner().invoke(main, ["hours", "set", "sometimes"])
    assert result.exit_code == 2
    assert "sometimes" in result.output
