import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from string import Formatter

import pytest
import requests
from click.testing import CliRunner
from real_servers import children_of, empty_tables, free_port
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.cli import main
from core.settings import load_settings
from ivr.models import CallLog
from tickets.availability import set_hours_override
from tickets.models import CallbackRequest, Ticket, TicketCall
from tickets.oncall.feeds import issue_feed_token
from tickets.staff import create_staff

# Real `ivr serve` processes; each walk forces the hours, so no outcome depends on the clock.
pytestmark = pytest.mark.wall_clock

IVR = str(Path(sys.executable).parent / "ivr")
TOKEN = "serve-test-twilio-token-0123456789"
SECRET = "serve-test-secret-key-0123456789abcdef"
WORKERS = 2
# Generous: workers boot slowly on a busy two-core machine.
STARTUP_SECONDS = 30
SERVER_ENV = ("IVR_DATABASE_URL", "TWILIO_AUTH_TOKEN", "IVR_SECRET_KEY", "IVR_PUBLIC_URL")


class Server:
    """A real `ivr serve` process on a free port."""

    def __init__(self, workdir: Path, database_url: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log = workdir / "serve.log"
        self.env = {
            **os.environ,
            "IVR_DATABASE_URL": database_url,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "IVR_SECRET_KEY": SECRET,
            "IVR_PUBLIC_URL": self.url,
        }
        self.env.pop("IVR_CONFIG", None)
        self.process: subprocess.Popen | None = None
        self.hours: str | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [IVR, "serve", "--port", str(self.port), "--workers", str(WORKERS)],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"ivr serve exited early:\n{self.log.read_text()}")
            try:
                if requests.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass  # not listening yet, or a worker still booting
            time.sleep(0.2)
        raise AssertionError(
            f"ivr serve did not answer /health in {STARTUP_SECONDS} s:\n{self.log.read_text()}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def force_hours(self, mode: str) -> None:
        """Set support's hours override in the server's database, as `ivr hours set` does."""
        if mode == self.hours:
            return
        engine = create_engine(self.env["IVR_DATABASE_URL"])
        try:
            with Session(engine) as session:
                set_hours_override(session, mode=mode, set_by="test_serve")
                session.commit()
        finally:
            engine.dispose()
        self.hours = mode

    def ivr(self, *arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [IVR, *arguments],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=90,
        )

    def call(self, *arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return self.ivr("call", "--url", self.url, *arguments, env=env)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("serve")
    database_url = os.environ.get("IVR_TEST_DATABASE_URL") or (
        f"sqlite:///{workdir / 'serve.sqlite3'}"
    )
    running = Server(workdir, database_url)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        empty_tables(database_url)


def call_sid(output: str) -> str:
    match = re.search(r"CallSid (CA[0-9a-f]{32})", output)
    assert match, output
    return match.group(1)


def test_health_answers_json_with_the_database_ok(server):
    response = requests.get(server.url + "/health", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert (body["status"], body["database"], body["messages"]["sender"]) == ("ok", "ok", "ok")


def test_gunicorn_master_runs_its_workers(server):
    log = server.log.read_text()
    assert f"Listening at: {server.url}" in log
    assert log.count("Booting worker with pid") >= WORKERS
    assert len(children_of(server.process.pid)) == WORKERS


def test_unsigned_webhook_is_refused(server):
    response = requests.post(
        server.url + "/voice/incoming", data={"To": "+31318584900"}, timeout=10
    )
    assert response.status_code == 403


def test_office_call_hears_the_dutch_greeting_and_is_logged(server):
    result = server.call("--to", "office", "--keys", "hangup")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[nl-NL] Welkom bij OTYS." in result.stdout
    assert "-> POST /voice/status" in result.stdout
    engine = create_engine(server.env["IVR_DATABASE_URL"])
    try:
        with Session(engine) as session:
            log = session.scalar(select(CallLog).where(CallLog.sid == call_sid(result.stdout)))
            assert log is not None
            assert log.status == "completed"
            assert log.line == "office"
    finally:
        engine.dispose()


def test_emergency_call_is_answered_in_dutch(server):
    result = server.call("--to", "emergency", "--keys", "hangup")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Calling +31318584918" in result.stdout
    assert "[nl-NL] " in result.stdout


def test_a_call_signed_with_the_wrong_token_is_refused(server):
    result = server.call("--keys", "hangup", env={"TWILIO_AUTH_TOKEN": "not-the-right-token-123"})
    assert result.returncode == 1
    assert "HTTP 403" in result.stdout


def test_the_log_shows_no_calendar_feed_token_and_no_token_in_a_query(server):
    engine = create_engine(server.env["IVR_DATABASE_URL"])
    try:
        with Session(engine) as session:
            staff = create_staff(
                session, email="feed@otys.test", name="Fenna Feed", password="feed-password-123"
            )
            session.commit()
            token = issue_feed_token(session, staff=staff)
            session.commit()
    finally:
        engine.dispose()
    unknown, in_query = "u" * 43, "query-token-0123456789abcdef"
    feed = requests.get(f"{server.url}/oncall/feed/{token}.ics", timeout=10)
    assert feed.status_code == 200 and feed.text.startswith("BEGIN:VCALENDAR")
    assert requests.get(f"{server.url}/oncall/feed/{unknown}.ics", timeout=10).status_code == 404
    referred = {"Referer": f"{server.url}/oncall/feed/{token}.ics?x=1"}
    api = requests.get(
        f"{server.url}/api/tickets?per_page=5&access_token={in_query}", headers=referred, timeout=10
    )
    assert api.status_code == 401
    # gunicorn writes an access line once the response is sent: wait for the last one.
    deadline = time.monotonic() + 10
    while "/api/tickets?" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log.read_text()
    assert token not in log and unknown not in log and in_query not in log
    assert log.count('"GET /oncall/feed/[redacted].ics HTTP/1.1" 200') == 1
    assert log.count('"GET /oncall/feed/[redacted].ics HTTP/1.1" 404') == 1
    assert '"GET /api/tickets?per_page=5&access_token=[redacted] HTTP/1.1" 401' in log
    assert "/oncall/feed/[redacted].ics?x=1" in log  # the referer, also redacted


# ---------------------------------------------------------------- end-to-end walks
#
# Every walk below is a real `ivr call --keys ...` against the running `ivr serve`, with the demo
# directory loaded by `ivr demo`. Expected texts come from the configured prompts, so the walks
# follow wording changes in config/default.toml but fail when a caller hears the wrong thing.

SUPER_USER = "+31612345678"  # Sanne de Vries, super user of Demo Uitzendbureau
NORMAL_USER = "+31687654321"  # Lotte Jansen, normal user of Demo Uitzendbureau
OTHER_SUPER_USER = "+31611223344"  # Mohammed El Amrani, super user of Voorbeeld Detachering
KEY_USER_PIN = "246810"  # Daan Bakker, key user of Demo Uitzendbureau, no phone number
TICKET_DIGITS = r"((?:\d ){5}\d)"


@pytest.fixture(scope="module")
def demo(server):
    result = server.ivr("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    return server


@pytest.fixture(scope="module")
def settings(server):
    return load_settings(environ=server.env)


def heard(settings, key: str, language: str = "nl", **values) -> str:
    """Return what the caller hears of prompt `key`, up to the first placeholder not given."""
    template = settings.prompts[language][key]
    text = ""
    for literal, field, _, _ in Formatter().parse(template):
        text += literal
        if field is None:
            continue
        if field not in values:
            return text.rstrip()
        text += str(values[field])
    return text


def ticket_said(settings, output: str) -> re.Match | None:
    """Find the ticket number the caller heard, as a new or a joined ticket."""
    for key in ("ticket_number", "ticket_existing"):
        pattern = re.escape(heard(settings, key, digits="TICKET")).replace("TICKET", TICKET_DIGITS)
        found = re.search(pattern, output)
        if found:
            return found
    return None


def walk(server, *arguments: str, hours: str = "open") -> tuple[str, str]:
    """Force the hours like `ivr hours set`, run `ivr call`, return its transcript and sid.

    The command runs in this process (no interpreter start-up per walk); its calls still go
    over HTTP to the real server.
    """
    server.force_hours(hours)
    environ = {key: server.env[key] for key in SERVER_ENV} | {"IVR_CONFIG": None}
    result = CliRunner().invoke(main, ["call", "--url", server.url, *arguments], env=environ)
    assert result.exit_code == 0, result.output
    assert "== call ended" in result.output
    return result.output, call_sid(result.output)


def query(server, statement):
    engine = create_engine(server.env["IVR_DATABASE_URL"])
    try:
        with Session(engine) as session:
            return session.scalars(statement).all()
    finally:
        engine.dispose()


def test_office_option_1_rings_finance(demo, settings):
    finance = settings.office.departments["finance"]
    output, _ = walk(demo, "--to", "office", "--keys", "1,y")
    assert f"[nl-NL] {heard(settings, 'office_welcome')}" in output
    assert heard(settings, "office_menu") in output
    assert heard(settings, "department_connecting", department=finance.names["nl"]) in output
    assert f"[ringing {finance.numbers[0]}, timeout {finance.dial_timeout} s]" in output
    assert f"connected to {finance.numbers[0]}" in output
    assert "DialCallStatus=completed" in output


def test_office_option_2_unanswered_takes_a_voicemail_for_call_back(demo, settings):
    sales = settings.office.departments["sales"]
    output, sid = walk(demo, "--to", "office", "--keys", "2,n,n,rec:Bel mij terug over een offerte")
    assert f"[ringing {', '.join(sales.numbers)} together" in output
    assert heard(settings, "department_no_answer", department=sales.names["nl"]) in output
    assert heard(settings, "voicemail_invitation") in output
    assert "[beep] [recording" in output
    assert heard(settings, "voicemail_thanks") in output
    (request,) = query(demo, select(CallbackRequest).where(CallbackRequest.call_sid == sid))
    assert request.department == "sales"
    assert request.caller == SUPER_USER
    assert request.recording_url.startswith("https://api.twilio.com/")
    assert request.in_hours is True


def test_office_outside_hours_says_the_team_is_closed_and_takes_a_voicemail(demo, settings):
    finance = settings.office.departments["finance"]
    keys = "1,rec:Vraag over mijn factuur"
    output, sid = walk(demo, "--to", "office", "--keys", keys, hours="closed")
    assert heard(settings, "department_closed", department=finance.names["nl"]) in output
    assert "ringing" not in output
    assert heard(settings, "voicemail_thanks") in output
    (request,) = query(demo, select(CallbackRequest).where(CallbackRequest.call_sid == sid))
    assert (request.department, request.in_hours) == ("finance", False)


def test_office_option_3_hands_the_caller_to_the_emergency_line(demo, settings):
    output, _ = walk(demo, "--to", "office", "--keys", "3,1,1")
    assert "-> POST /voice/emergency/start?via=office&lang=nl" in output
    # Recognised by number: greeted by name, without the welcome for callers it cannot name.
    assert heard(settings, "emergency_welcome") not in output
    greeting = heard(
        settings,
        "emergency_greeting_known",
        name="Sanne de Vries",
        organization="Demo Uitzendbureau",
    )
    assert greeting in output
    assert ticket_said(settings, output)
    assert f"connected to {settings.emergency.engineers[0].number}" in output


def test_office_option_4_reaches_a_colleague_by_extension(demo, settings):
    colleague = next(c for c in settings.office.colleagues if c.extension == "202")
    output, _ = walk(demo, "--to", "office", "--keys", "4,202#,y")
    assert heard(settings, "colleague_prompt") in output
    assert "Digits=202" in output
    assert heard(settings, "colleague_connecting", name=colleague.name) in output
    assert f"connected to {colleague.number}" in output


def test_office_option_4_unknown_extension_then_waiting_reaches_reception(demo, settings):
    reception = settings.office.reception[0]
    output, _ = walk(demo, "--to", "office", "--keys", "4,999#,-,y")
    assert heard(settings, "colleague_unknown") in output
    assert heard(settings, "office_to_reception") in output
    rung = re.findall(r"\[ringing ([^\]]*?)(?: together)?, timeout", output)
    assert rung == [reception]
    assert f"connected to {reception}" in output


def test_office_in_english(demo, settings):
    sales = settings.office.departments["sales"]
    output, _ = walk(demo, "--to", "office", "--keys", "9,2,y")
    assert f"[en-GB] {heard(settings, 'office_welcome', 'en')}" in output
    assert heard(settings, "office_menu", "en") in output
    assert heard(settings, "department_connecting", "en", department=sales.names["en"]) in output
    assert f"connected to {sales.numbers[0]}" in output


def test_office_star_repeats_the_menu(demo, settings):
    output, _ = walk(demo, "--to", "office", "--keys", "*,hangup")
    assert output.count(heard(settings, "office_menu")) == 2
    assert "the caller hung up" in output


def test_office_misses_end_at_reception_not_in_a_loop(demo, settings):
    output, _ = walk(demo, "--to", "office", "--keys", "7,-,n,-")
    assert heard(settings, "office_invalid") in output
    assert output.count(heard(settings, "office_no_input")) == settings.office.max_misses - 1
    assert heard(settings, "office_to_reception") in output
    assert heard(settings, "reception_no_answer") in output
    assert heard(settings, "voicemail_empty") in output


def test_emergency_super_user_by_caller_id_reaches_an_engineer_with_a_ticket(demo, settings):
    engineer = settings.emergency.engineers[0]
    output, sid = walk(demo, "--to", "emergency", "--from", SUPER_USER, "--keys", "1,1")
    assert heard(settings, "emergency_welcome") not in output
    greeting = heard(
        settings,
        "emergency_greeting_known",
        name="Sanne de Vries",
        organization="Demo Uitzendbureau",
    )
    assert f"[nl-NL] {greeting}" in output
    assert heard(settings, "triage_menu") in output
    said = ticket_said(settings, output)
    assert said
    # The triage key is the caller's last answer before the phones ring: nothing is asked between.
    notice = heard(settings, "recording_notice")
    ringing = output.index("[ringing")
    assert output.index(heard(settings, "triage_menu")) < output.index(said.group(0))
    assert output.index(said.group(0)) < output.index(notice) < ringing
    assert "SpeechResult" not in output
    screening = heard(
        settings,
        "screen_prompt",
        organization="Demo Uitzendbureau",
        name="Sanne de Vries",
        reason=heard(settings, "reason_outage"),
    )
    assert f"(callee {engineer.number} hears) [nl-NL] {screening}" in output
    assert output.index(said.group(0)) < output.index(f"connected to {engineer.number}")
    (call,) = query(demo, select(TicketCall).where(TicketCall.sid == sid))
    (ticket,) = query(demo, select(Ticket).where(Ticket.id == call.ticket_id))
    assert said.group(1).replace(" ", "") == str(ticket.number)
    assert (ticket.priority, ticket.reason) == ("urgent", "outage")
    assert call.answered_by == engineer.name
    assert call.recording_url and call.recording_url.startswith("https://api.twilio.com/")


def test_emergency_pin_caller_is_recognised_and_a_second_engineer_accepts(demo, settings):
    first, second = settings.emergency.engineers[:2]
    keys = f"{KEY_USER_PIN}#,2,-,1"
    output, _ = walk(demo, "--to", "emergency", "--from", "anonymous", "--keys", keys)
    # Not recognised by number: the welcome, then the PIN question.
    assert output.index(heard(settings, "emergency_welcome")) < output.index(
        heard(settings, "pin_prompt")
    )
    greeting = heard(
        settings, "emergency_greeting_pin", name="Daan Bakker", organization="Demo Uitzendbureau"
    )
    assert greeting in output
    assert heard(settings, "reason_urgent_bug") in output
    assert f"[{first.number} does not accept" in output
    assert f"connected to {second.number}" in output
    assert ticket_said(settings, output)


def test_emergency_normal_user_is_turned_away_without_a_ticket(demo, settings):
    output, sid = walk(demo, "--to", "emergency", "--from", NORMAL_USER, "--keys", "1")
    assert heard(settings, "not_entitled") in output
    assert "ringing" not in output
    assert ticket_said(settings, output) is None
    assert query(demo, select(TicketCall).where(TicketCall.sid == sid)) == []


def test_emergency_nobody_accepting_takes_a_voicemail_on_the_ticket(demo, settings):
    keys = "2,-,-,rec:de planning crasht sinds vanochtend"
    output, sid = walk(demo, "--to", "emergency", "--from", OTHER_SUPER_USER, "--keys", keys)
    greeting = heard(
        settings,
        "emergency_greeting_known",
        name="Mohammed El Amrani",
        organization="Voorbeeld Detachering",
    )
    assert greeting in output
    assert "DialCallStatus=no-answer" in output
    # Only now is the caller asked to tell the problem, in a message on the ticket.
    invitation = output.index(heard(settings, "engineers_unavailable"))
    assert invitation < output.index("[beep] [recording")
    assert heard(settings, "emergency_voicemail_thanks") in output
    (call,) = query(demo, select(TicketCall).where(TicketCall.sid == sid))
    assert call.outcome == "voicemail"
    assert call.recording_url.startswith("https://api.twilio.com/")


def test_emergency_outside_hours_records_a_message_for_the_first_engineer(demo, settings):
    keys = "rec:alles ligt plat"
    output, _ = walk(
        demo, "--to", "emergency", "--from", SUPER_USER, "--keys", keys, hours="closed"
    )
    assert heard(settings, "emergency_closed") in output
    assert "ringing" not in output
    assert heard(settings, "emergency_voicemail_thanks") in output


def test_ivr_call_walks_a_caller_through_an_open_incident(demo, settings):
    from app.schema import register_models

    register_models()  # the ticket call's relationships name the incidents' tables
    summary = "Het platform is onbereikbaar."
    opened = demo.ivr("incident", "open", summary)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    number = re.search(r"incident (\d+) opened", opened.stdout).group(1)
    try:
        output, sid = walk(demo, "--to", "emergency", "--from", SUPER_USER, "--keys", "1,2")
        said = ticket_said(settings, output)
        told = output.index(heard(settings, "incident_known"))
        assert said is not None and said.start() < told  # the ticket number first
        assert heard(settings, "incident_news", text=summary) in output
        assert heard(settings, "incident_choice") in output
        assert heard(settings, "call_back_queued") in output
        assert "ringing" not in output
        (call,) = query(demo, select(TicketCall).where(TicketCall.sid == sid))
        assert call.outcome == "call_back"
        output, _ = walk(demo, "--to", "emergency", "--from", SUPER_USER, "--keys", "1,-")
        assert output.rstrip().splitlines()[-3].endswith(heard(settings, "incident_goodbye"))
    finally:
        demo.ivr("incident", "resolve", number)
