"""`ivr doctor`'s checks beyond the numbers, each failing or warning for its own reason, and
`ivr --version`.

Every test starts from a deployment that passes (numbers wired at the Twilio stand-in, the test
database at the latest migration) and spoils one thing.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from helpers import AUTH_TOKEN, MONDAY_MORNING
from message_servers import MailServer
from sqlalchemy import create_engine
from support_helpers import make_staff
from twilio_helpers import (
    SMS_FROM,
    closed_port_url,
    fresh_account,
    report_lines,
    twilio_env,
)

from app.doctor_checks import smallest_period
from app.schema import alembic_config
from tickets.models import OutboxMessage
from tickets.rota import add_override
from tickets.staff import set_phone

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def doctor(cli, app, clock, twilio_account):
    """Run `ivr doctor` (with extra environment) on a wired account; return its lines too."""
    standin = fresh_account(twilio_account)
    with app.app_context():
        assert cli("twilio", "wire", env=twilio_env(standin)).exit_code == 0

    def run(**env: str):
        with app.app_context():
            result = cli("doctor", env=twilio_env(standin, **env))
        result.lines = report_lines(result.stdout)
        return result

    return run


def failures(result) -> list[str]:
    return [line for line in result.lines.values() if line.startswith("FAIL")]


def test_the_baseline_passes_with_the_empty_rota_as_a_warning(doctor):
    result = doctor()
    assert result.exit_code == 0, result.stdout
    assert failures(result) == []
    assert result.lines["database"].startswith("OK    database: at the latest migration")
    assert result.lines["rota"].startswith("WARN  rota: nobody is on the rota")
    assert result.stdout.splitlines()[-1] == "0 failed, 2 warnings, 10 OK"


# ------------------------------------------------------------------------------ database


def test_a_database_behind_its_latest_migration_fails_and_stays_behind(doctor, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(alembic_config(url), "0014_privacy")
    result = doctor(IVR_DATABASE_URL=url)
    assert result.exit_code == 1
    assert failures(result) == [result.lines["database"]]
    line = result.lines["database"]
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert f"behind: at migration 0014_privacy, this version needs {head}" in line
    assert "`ivr serve` brings the schema up to date" in line
    engine = create_engine(url)
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_heads() == ("0014_privacy",)
    engine.dispose()
    assert result.lines["rota"] == (
        "WARN  rota: not checked: the database is not ready (see above)"
    )


def test_a_missing_database_fails_and_is_not_created(doctor, tmp_path):
    path = tmp_path / "nowhere.sqlite3"
    result = doctor(IVR_DATABASE_URL=f"sqlite:///{path}")
    assert result.exit_code == 1
    assert result.lines["database"].startswith(f"FAIL  database: no database at sqlite:///{path}")
    assert not path.exists()


def test_an_unreachable_database_is_a_failure_line(doctor):
    result = doctor(IVR_DATABASE_URL="postgresql+psycopg://nobody:secret@127.0.0.1:9/ivr")
    assert result.exit_code == 1
    line = result.lines["database"]
    assert line.startswith("FAIL  database: postgresql+psycopg://nobody:***@127.0.0.1:9/ivr")
    assert "not reachable" in line and "secret" not in line


# ------------------------------------------------------------------------------ settings


def test_a_secret_key_that_repeats_itself_fails(doctor):
    # 32 characters, 16 different: start-up takes it, yet half of it gives away the rest.
    result = doctor(IVR_SECRET_KEY="0123456789abcdef" * 2)
    assert result.exit_code == 1
    assert failures(result) == [result.lines["secret key"]]
    assert "repeats a piece of 16 characters" in result.lines["secret key"]
    assert "secrets.token_hex(32)" in result.lines["secret key"]


def test_a_secret_key_reused_as_the_auth_token_fails(doctor):
    result = doctor(IVR_SECRET_KEY=AUTH_TOKEN)
    assert result.lines["secret key"].startswith("FAIL  secret key: IVR_SECRET_KEY is the Twilio")


def test_a_short_secret_key_is_a_configuration_failure_not_a_traceback(doctor):
    result = doctor(IVR_SECRET_KEY="short")
    assert result.exit_code == 1
    line = result.lines["configuration"]
    assert line.startswith("FAIL  configuration: configuration error: secret_key: must be")


def test_smallest_period_finds_the_repeated_piece():
    assert smallest_period("abcabcabc") == 3
    assert smallest_period("abcabcab") == 3
    assert smallest_period("abcd") == 4
    assert smallest_period("") == 0


@pytest.mark.parametrize(
    ("public_url", "problem"),
    [
        ("http://ivr.example.com", "http://ivr.example.com is not https"),
        ("https://127.0.0.1:8000", "names 127.0.0.1, which Twilio cannot reach"),
        ("https://10.1.2.3", "names 10.1.2.3, which Twilio cannot reach"),
    ],
)
def test_a_public_url_twilio_cannot_use_safely_fails(doctor, public_url, problem):
    result = doctor(IVR_PUBLIC_URL=public_url)
    assert result.exit_code == 1
    assert result.lines["public URL"].startswith("FAIL") and problem in result.lines["public URL"]


# ------------------------------------------------------------------------------ paging


def test_paging_on_with_no_channel_that_can_send_fails(doctor):
    result = doctor(IVR_SMS_FROM="")
    assert result.exit_code == 1
    assert result.lines["paging"] == (
        "FAIL  paging: on, but no channel can send (sms: IVR_SMS_FROM not set; email: "
        "IVR_SMTP_URL not set); fix: set IVR_SMS_FROM and TWILIO_ACCOUNT_SID, or set "
        "IVR_SMTP_URL to a mail server that answers"
    )


def test_paging_whose_every_recent_message_failed_cannot_send(doctor, session, clock):
    for n in range(3):
        session.add(
            OutboxMessage(
                kind="page",
                channel="sms",
                recipient="+31620000001",
                idempotency_key=f"doctor-{n}",
                attempts=2,
                last_error="Twilio 400 21606: The From phone number is not SMS-capable",
                created_at=clock.now - timedelta(hours=2),
                updated_at=clock.now - timedelta(hours=2),
            )
        )
    session.commit()
    result = doctor()
    assert result.exit_code == 1
    assert "every attempt of the last day failed: Twilio 400 21606" in result.lines["paging"]


def test_a_mail_server_that_does_not_answer_leaves_paging_unable_to_send(doctor):
    result = doctor(IVR_SMS_FROM="", IVR_SMTP_URL=closed_port_url().replace("http", "smtp"))
    assert result.lines["paging"].startswith("FAIL")
    assert "email: mail server not reachable: ConnectionRefusedError" in result.lines["paging"]


def test_a_channel_that_cannot_send_beside_one_that_can_is_a_warning(doctor):
    mail = MailServer().start()
    try:
        both = doctor(IVR_SMTP_URL=mail.url)
        email_only = doctor(IVR_SMTP_URL=mail.url, IVR_SMS_FROM="")
    finally:
        mail.stop()
    assert both.lines["paging"] == "OK    paging: can send by sms, email"
    assert mail.messages == []  # the mail server was asked nothing but hello
    assert email_only.exit_code == 0
    assert email_only.lines["paging"].startswith("WARN  paging: sends by email only (sms: ")


# ------------------------------------------------------------------------------ rota


def monday(hour: int, days: int = 0):
    return MONDAY_MORNING.replace(hour=hour) + timedelta(days=days)


def test_a_gap_in_the_coming_weeks_rota_is_a_warning(doctor, session):
    anna = make_staff(session, email="anna@otys.test", name="Anna Jansen", phone="+31620000001")
    add_override(
        session, level=1, staff=anna, starts_at=monday(8), ends_at=monday(18, 2), added_by="t"
    )
    session.commit()
    result = doctor()
    assert result.exit_code == 0, result.stdout
    line = result.lines["rota"]
    assert line.startswith(
        "WARN  rota: nobody on call Thu 10 Dec 08:30-17:30, Fri 11 Dec 08:30-17:30, "
        "Mon 14 Dec 08:30-10:00 (20 h in the coming week); the configured engineers "
        "(Support engineer 1, Support engineer 2) are rung then; fix: `ivr oncall import"
    ), line


def test_a_rota_covering_the_lines_hours_is_fine(doctor, session):
    anna = make_staff(session, email="anna@otys.test", name="Anna Jansen", phone="+31620000001")
    add_override(
        session, level=2, staff=anna, starts_at=monday(8), ends_at=monday(8, 8), added_by="t"
    )
    session.commit()
    result = doctor()
    assert result.lines["rota"].startswith("OK    rota: someone is on call")
    assert result.lines["engineers"].startswith("OK")


def test_an_engineer_on_the_rota_without_a_phone_is_a_warning(doctor, session):
    bas = make_staff(session, email="bas@otys.test", name="Bas de Vries", phone="+31620000002")
    add_override(
        session, level=1, staff=bas, starts_at=monday(12, 1), ends_at=monday(18, 1), added_by="t"
    )
    session.commit()
    set_phone(session, staff=bas, phone=None)
    session.commit()
    result = doctor()
    assert result.exit_code == 0, result.stdout
    assert result.lines["engineer Bas de Vries <bas@otys.test>"] == (
        "WARN  engineer Bas de Vries <bas@otys.test>: on the rota (level 1 from Tue 08 Dec "
        "12:00) but has no phone number: the rota skips them; fix: "
        "`ivr staff phone bas@otys.test NUMBER`"
    )


def test_doctor_leaves_the_sms_number_unused(doctor, twilio_account):
    doctor()
    assert twilio_account.sent == []
    assert twilio_account.number(SMS_FROM)["sms_url"].endswith("/sms/incoming")


# ------------------------------------------------------------------------------ version


def test_version_is_the_installed_packages_which_is_pyprojects(cli):
    result = cli("--version")
    assert result.exit_code == 0
    installed = importlib.metadata.version("otys-ivr")
    assert result.stdout == f"ivr, version {installed}\n"
    with open(PROJECT / "pyproject.toml", "rb") as handle:
        assert tomllib.load(handle)["project"]["version"] == installed
