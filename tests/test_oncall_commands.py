from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar
from sqlalchemy import func, select

from tickets.models import OnCallShift
from tickets.rota import add_override
from tickets.staff import find_staff, issue_token

PASSWORD = "lange-wachtzin-42"
AMS = ZoneInfo("Europe/Amsterdam")


def coming(weekday: int, hour: int, minute: int = 0) -> datetime:
    """Return the next such local moment after today: imports expand around the real now."""
    today = datetime.now(AMS).date()
    days = (weekday - today.weekday()) % 7 or 7
    day = today + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=AMS)


WEEKLY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:anna
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Amsterdam:20250106T090000
DTEND;TZID=Europe/Amsterdam:20250109T090000
RRULE:FREQ=WEEKLY
SUMMARY:Anna Jansen
END:VEVENT
BEGIN:VEVENT
UID:bas
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Amsterdam:20250109T090000
DTEND;TZID=Europe/Amsterdam:20250113T090000
RRULE:FREQ=WEEKLY
ATTENDEE;CN=Bas:mailto:bas@otys.example
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


def add_engineers(cli):
    for email, name, phone in (
        ("anna@otys.example", "Anna Jansen", "06 1111 1111"),
        ("bas@otys.example", "Bas de Vries", "+31 6 2222 2222"),
    ):
        result = cli("staff", "add", email, "--name", name, "--phone", phone, input=PASSWORD)
        assert result.exit_code == 0, result.output


def test_staff_add_with_a_phone_makes_an_engineer(cli, session):
    result = cli(
        "staff",
        "add",
        "anna@otys.example",
        "--name",
        "Anna",
        "--phone",
        "06-11111111",
        input=PASSWORD,
    )
    assert result.exit_code == 0, result.output
    assert "engineer on +31611111111" in result.stdout
    assert find_staff(session, "anna@otys.example").phone == "+31611111111"


def test_staff_add_refuses_a_phone_that_is_no_number(cli, session):
    result = cli(
        "staff", "add", "anna@otys.example", "--name", "Anna", "--phone", "12", input=PASSWORD
    )
    assert result.exit_code == 1
    assert "'12' is not a phone number" in result.stderr
    assert find_staff(session, "anna@otys.example") is None


def test_import_and_show_who_is_on_call(cli, tmp_path):
    add_engineers(cli)
    rota = tmp_path / "rota.ics"
    rota.write_text(WEEKLY)
    result = cli("oncall", "import", str(rota), "--level", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("level 1: ")
    monday = cli("oncall", "show", "--at", coming(0, 10).strftime("%Y-%m-%dT%H:%M"))
    assert monday.exit_code == 0, monday.output
    assert "level 1: Anna Jansen <anna@otys.example> +31611111111" in monday.stdout
    thursday = cli("oncall", "show", "--at", coming(3, 10).isoformat())
    assert "level 1: Bas de Vries <bas@otys.example> +31622222222" in thursday.stdout


def test_a_bad_calendar_changes_nothing_and_says_why(cli, session, tmp_path):
    add_engineers(cli)
    good = tmp_path / "rota.ics"
    good.write_text(WEEKLY)
    cli("oncall", "import", str(good), "--level", "1")
    before = session.scalar(select(func.count()).select_from(OnCallShift))
    bad = tmp_path / "bad.ics"
    bad.write_text(WEEKLY.replace("SUMMARY:Anna Jansen", "SUMMARY:Zoe Unknown"))
    result = cli("oncall", "import", str(bad), "--level", "1")
    assert result.exit_code == 1
    assert "'Zoe Unknown'" in result.stderr and "nobody known" in result.stderr
    assert "level 1 is unchanged" in result.stderr
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(OnCallShift)) == before


def test_show_refuses_a_moment_it_cannot_read(cli):
    for moment in ("yesterday", "0001-01-01"):
        result = cli("oncall", "show", "--at", moment)
        assert result.exit_code == 2
        assert "is not an ISO 8601 time" in result.output


def test_show_names_the_configured_engineers_when_the_rota_is_empty(cli):
    result = cli("oncall", "show")
    assert result.exit_code == 0
    assert "nobody on the rota; the configured engineers are rung" in result.stdout
    assert "+31318584941" in result.stdout


def test_the_api_says_who_is_on_call(cli, client, session, tmp_path):
    add_engineers(cli)
    rota = tmp_path / "rota.ics"
    rota.write_text(WEEKLY)
    cli("oncall", "import", str(rota), "--level", "2")
    token = issue_token(session, staff=find_staff(session, "anna@otys.example"))
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    thursday = coming(3, 10)
    answer = client.get("/api/oncall", query_string={"at": thursday.isoformat()}, headers=headers)
    assert answer.status_code == 200
    assert answer.get_json() == {
        "at": thursday.isoformat(),
        "levels": [
            {
                "level": 2,
                "engineers": [
                    {"name": "Bas de Vries", "email": "bas@otys.example", "phone": "+31622222222"}
                ],
            }
        ],
    }

    # Without an offset the moment is read in the service's zone: the hand-over is at 09:00.
    def first_engineer(at: datetime) -> str:
        query = {"at": at.strftime("%Y-%m-%dT%H:%M")}
        levels = client.get("/api/oncall", query_string=query, headers=headers).get_json()["levels"]
        return levels[0]["engineers"][0]["name"]

    assert first_engineer(coming(3, 8, 59)) == "Anna Jansen"
    assert first_engineer(coming(3, 9)) == "Bas de Vries"
    assert client.get("/api/oncall?at=tomorrow", headers=headers).status_code == 400
    for extreme in ("0001-01-01T00:00", "9999-12-31T23:59:59-05:00"):
        answer = client.get("/api/oncall", query_string={"at": extreme}, headers=headers)
        assert answer.status_code == 400 and "ISO 8601" in answer.get_json()["error"]
    assert client.get("/api/oncall?when=now", headers=headers).status_code == 400
    assert client.get("/api/oncall").status_code == 401


def test_each_engineer_gets_a_secret_revocable_feed_of_their_own_shifts(cli, client, tmp_path):
    add_engineers(cli)
    rota = tmp_path / "rota.ics"
    rota.write_text(WEEKLY)
    cli("oncall", "import", str(rota), "--level", "1")
    issued = cli("oncall", "feed", "anna@otys.example")
    assert issued.exit_code == 0
    url = issued.stdout.strip()
    path = url[url.index("/oncall/feed/") :]
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.mimetype == "text/calendar"
    events = Calendar.from_ical(answer.data).walk("VEVENT")
    assert events
    # Only Anna's shifts: Monday 09:00 local (08:00 UTC in winter) to Thursday.
    starts = {event.decoded("DTSTART").astimezone(UTC) for event in events}
    assert coming(0, 9).astimezone(UTC) in starts
    assert coming(3, 9).astimezone(UTC) not in starts
    assert b"Bas" not in answer.data and b"+316" not in answer.data
    assert client.get(path.replace(".ics", "x.ics")).status_code == 404
    cli("oncall", "feed", "anna@otys.example", "--revoke")
    assert client.get(path).status_code == 404


def test_an_existing_account_becomes_an_engineer_and_stops_being_one(cli, session):
    cli("staff", "add", "eva@otys.example", "--name", "Eva", input=PASSWORD)
    result = cli("staff", "phone", "eva@otys.example", "06 3000 0003")
    assert result.exit_code == 0, result.output
    assert result.stdout == "eva@otys.example: engineer on +31630000003\n"
    session.expire_all()
    assert find_staff(session, "eva@otys.example").phone == "+31630000003"
    assert cli("staff", "phone", "eva@otys.example", "nonsense").exit_code == 1
    assert cli("staff", "phone", "eva@otys.example").exit_code == 2
    assert cli("staff", "phone", "eva@otys.example", "--remove").exit_code == 0
    session.expire_all()
    assert find_staff(session, "eva@otys.example").phone is None


def test_a_feed_leaves_out_the_time_an_override_took_over(cli, client, session, tmp_path):
    add_engineers(cli)
    rota = tmp_path / "rota.ics"
    rota.write_text(WEEKLY)
    cli("oncall", "import", str(rota), "--level", "1")
    monday = coming(0, 9)
    add_override(
        session,
        level=1,
        staff=find_staff(session, "bas@otys.example"),
        starts_at=monday,
        ends_at=monday + timedelta(days=3),
        added_by="t",
    )
    session.commit()
    url = cli("oncall", "feed", "anna@otys.example").stdout.strip()
    events = Calendar.from_ical(client.get(url[url.index("/oncall/feed/") :]).data).walk("VEVENT")
    starts = {event.decoded("DTSTART").astimezone(UTC) for event in events}
    assert monday.astimezone(UTC) not in starts
    bas = cli("oncall", "feed", "bas@otys.example").stdout.strip()
    events = Calendar.from_ical(client.get(bas[bas.index("/oncall/feed/") :]).data).walk("VEVENT")
    assert monday.astimezone(UTC) in {e.decoded("DTSTART").astimezone(UTC) for e in events}
