"""Failures caused for real: PostgreSQL stopped mid-call, two instances, a graceful reload.

These tests start their own PostgreSQL server (Debian's binaries, on a free port) so they can
stop it, and real `ivr serve` processes (gunicorn) in front of it. The journal is a real file.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import real_servers
from helpers import EMERGENCY_0900, EMERGENCY_NUMBER, OFFICE_NUMBER
from real_servers import IvrServer, PostgresServer, wait_until, write_config
from resilience_helpers import SUPER_PHONE, make_directory
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.schema import upgrade_database
from ivr.models import CallLog, JournalReplay
from ivr.outage.journal import Journal
from tickets.availability import set_hours_override
from tickets.models import TicketCall, TicketEvent

# Real servers; the database is made with the hours forced open, so no outcome depends on the clock.
pytestmark = pytest.mark.wall_clock

ENGINEERS = ["+31318584941", "+31318584942"]
RECEPTION = ["+31318584901"]
# What the issue promises: every webhook answers within a second while the database is down.
OUTAGE_ANSWER_SECONDS = 1.0


# A PostgreSQL server of this module's own (real_servers.postgres).
postgres = real_servers.postgres


@pytest.fixture
def database(postgres, request):
    """Create a fresh database on our server, migrated, with a directory and hours forced open."""
    name = "ivr_" + request.node.name.lower()[:40].replace("[", "_").replace("]", "")
    url = postgres.create_database(name)
    upgrade_database(url)
    engine = create_engine(url, pool_pre_ping=True)
    with Session(engine) as session:
        make_directory(session)
        set_hours_override(session, mode="open", set_by="test")
        session.commit()
    yield url, engine
    engine.dispose()
    if not _running(postgres):  # a test that stopped the server failed before starting it
        postgres.start()


def _running(postgres: PostgresServer) -> bool:
    return (postgres.data / "postmaster.pid").exists()


@pytest.fixture
def config(tmp_path):
    """A configuration whose replay and retry intervals suit a test that waits for them."""
    return write_config(
        tmp_path,
        data_dir=f'"{tmp_path / "var"}"',
        journal_replay_seconds="1",
        database_retry_seconds="2",
    )


@pytest.fixture
def servers(tmp_path):
    """Start `ivr serve` processes on demand; all are stopped at the end of the test."""
    started: list[IvrServer] = []

    def start(url: str, config: Path, name: str = "a", workers: int = 2) -> IvrServer:
        server = IvrServer(tmp_path / name, url, config=config, workers=workers)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


class RealCall:
    """One simulated call whose webhooks may go to any instance."""

    def __init__(self, *, to: str, from_: str):
        self.sid = "CA" + uuid.uuid4().hex
        self.base = {
            "CallSid": self.sid,
            "AccountSid": "AC" + "0" * 32,
            "To": to,
            "From": from_,
            "CallStatus": "ringing",
            "ApiVersion": "2010-04-01",
            "Direction": "inbound",
        }
        self.timings: list[tuple[str, float]] = []

    def post(self, server: IvrServer, path: str, **params) -> ET.Element | None:
        started = time.monotonic()
        response = server.post(path, {**self.base, **params})
        self.timings.append((path, time.monotonic() - started))
        assert response.status_code in (200, 204), (path, response.status_code, response.text)
        if response.status_code == 204:
            return None
        assert response.headers["Content-Type"].startswith("text/xml"), path
        root = ET.fromstring(response.content)
        assert root.tag == "Response"
        self.base["CallStatus"] = "in-progress"
        return root

    def leg(self, server: IvrServer, path: str, number: str, **params) -> ET.Element:
        """Post a webhook of an engineer's leg of this call."""
        return self.post(
            server,
            path,
            CallSid="CA" + uuid.uuid5(uuid.NAMESPACE_URL, self.sid + number).hex,
            ParentCallSid=self.sid,
            Direction="outbound-dial",
            To=number,
            **params,
        )

    def slowest(self) -> float:
        return max(seconds for _, seconds in self.timings)


def report_timings(label: str, calls: list[RealCall]) -> None:
    """Print the webhook answer times (shown with pytest -s; the README quotes them)."""
    times = sorted(seconds for call in calls for _, seconds in call.timings)
    print(
        f"\n{label}: {len(times)} webhooks, median {times[len(times) // 2] * 1000:.0f} ms, "
        f"slowest {times[-1] * 1000:.0f} ms"
    )


def dialled(root: ET.Element) -> list[str]:
    return [(number.text or "").strip() for number in root.iter("Number")]


def count(engine, statement) -> int:
    with Session(engine) as session:
        return session.scalar(statement)


# ---------------------------------------------------------------- the database stops mid-call


def test_the_database_stopped_mid_call_keeps_serving_and_replays_once(
    postgres, database, config, servers, tmp_path
):
    """Two instances share a host (and its journal); the calls alternate between them."""
    url, engine = database
    one = servers(url, config, "one")
    two = servers(url, config, "two")

    # Before the outage: an office caller at the menu, a super user at triage (ticket open).
    office = RealCall(to=OFFICE_NUMBER, from_="+31622222222")
    menu = office.post(one, "/voice/incoming").find("Gather")
    assert menu is not None
    known = RealCall(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    triage = known.post(two, "/voice/incoming").find("Gather")
    assert triage is not None and "triage" in triage.get("action")
    with Session(engine) as session:
        opened_before = session.scalar(select(TicketCall).where(TicketCall.sid == known.sid))
        assert opened_before is not None

    postgres.stop("fast")
    try:
        # The super user presses 1 at triage: the engineers ring, screened as unverified.
        root = known.post(one, triage.get("action"), Digits="1")
        assert dialled(root) == ENGINEERS
        invitation = known.post(two, root.find("Dial").get("action"), DialCallStatus="no-answer")
        thanks = known.post(
            one,
            invitation.find("Record").get("action"),
            RecordingUrl="https://api.twilio.com/rec/RE5",
            RecordingSid="RE5",
            RecordingDuration="30",
        )
        assert thanks[-1].tag == "Hangup"
        known.post(two, "/voice/status", CallStatus="completed", CallDuration="75")

        # A caller nobody can check: rung through, screened, answered, recorded, ended.
        stranger = RealCall(to=EMERGENCY_NUMBER, from_="+31622222222")
        root = stranger.post(one, "/voice/incoming")
        assert dialled(root) == ENGINEERS
        screen = stranger.leg(two, root.find("Dial/Number").get("url"), ENGINEERS[0])
        assert screen.find("Gather") is not None and dialled(screen) == []
        assert "niet geverifieerde" in "".join(screen.itertext())
        accepted = stranger.leg(one, screen.find("Gather").get("action"), ENGINEERS[0], Digits="1")
        assert list(accepted) == []
        stranger.post(
            two,
            root.find("Dial").get("recordingStatusCallback"),
            RecordingStatus="completed",
            RecordingUrl="https://api.twilio.com/rec/RE4",
            RecordingSid="RE4",
        )
        ended = stranger.post(
            one, root.find("Dial").get("action"), DialCallStatus="completed", DialBridged="true"
        )
        assert dialled(ended) == []
        stranger.post(two, "/voice/status", CallStatus="completed", CallDuration="95")

        # The office caller presses 1 at the menu: reception.
        root = office.post(two, menu.get("action"), Digits="1")
        assert dialled(root) == RECEPTION
        office.post(one, "/voice/status", CallStatus="completed", CallDuration="20")
        for call in (known, stranger, office):
            assert call.slowest() < OUTAGE_ANSWER_SECONDS, call.timings
        report_timings("PostgreSQL stopped", [known, stranger, office])
    finally:
        postgres.start()

    # Both instances replay the one journal of this host by themselves, taking turns.
    journal = Journal(tmp_path / "var" / "journal.jsonl")
    wait_until(lambda: journal.archives(), timeout=30, what="the journal replay to finish")
    with Session(engine) as session:
        sids = session.scalars(select(TicketCall.sid)).all()
        assert sorted(sids) == sorted([known.sid, stranger.sid])  # once each, office none
        new = session.scalar(select(TicketCall).where(TicketCall.sid == stranger.sid)).ticket
        assert new.from_journal and not new.verified and new.priority == "urgent"
        assert new.calls[0].outcome == "answered" and new.calls[0].recording_url.endswith("RE4")
        old = session.scalar(select(TicketCall).where(TicketCall.sid == known.sid))
        assert old.ticket.verified and not old.ticket.from_journal
        assert old.ticket.reason == "outage" and old.outcome == "voicemail"
        kinds = session.scalars(
            select(TicketEvent.kind).where(TicketEvent.call_sid.in_([known.sid, stranger.sid]))
        ).all()
        assert kinds.count("journal") == 2
        office_log = session.scalar(select(CallLog).where(CallLog.sid == office.sid))
        assert office_log.status == "completed"
        applied = session.scalar(select(func.count()).select_from(JournalReplay))
    logs = one.log() + two.log()
    assert "from the outage journal for call " + stranger.sid in logs

    # Replaying again, by hand, changes nothing.
    archived = journal.archives()[0]
    shutil.copy(archived, journal.path)
    again = one.ivr("journal", "replay")
    assert again.returncode == 0, again.stderr
    assert "applied 0" in again.stdout
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(JournalReplay)) == applied
        assert session.scalar(select(func.count()).select_from(TicketCall)) == 2


def test_a_hung_database_server_cannot_hold_a_caller(postgres, database, config, servers):
    """The server keeps its connections but answers nothing: pings and statements are cut."""
    url, engine = database
    server = servers(url, config, workers=2)
    for _ in range(4):  # both workers hold pooled connections to the server
        assert RealCall(to=OFFICE_NUMBER, from_=SUPER_PHONE).post(server, "/voice/incoming")
    frozen = postgres.freeze()
    calls_made = []
    try:
        for number in (EMERGENCY_NUMBER, OFFICE_NUMBER, EMERGENCY_NUMBER, EMERGENCY_0900):
            call = RealCall(to=number, from_="+31622222222")
            root = call.post(server, "/voice/incoming")
            expected = RECEPTION if number == OFFICE_NUMBER else ENGINEERS
            assert dialled(root) == expected
            call.post(server, "/voice/status", CallStatus="completed", CallDuration="30")
            calls_made.append(call)
    finally:
        postgres.thaw(frozen)
    for call in calls_made:
        assert call.slowest() < OUTAGE_ANSWER_SECONDS, call.timings
    report_timings("PostgreSQL hung (SIGSTOP)", calls_made)
    journal = Journal(server.workdir.parent / "var" / "journal.jsonl")
    wait_until(lambda: journal.archives(), timeout=30, what="the journal replay to finish")
    with Session(engine) as session:
        sids = sorted(session.scalars(select(TicketCall.sid)).all())
    emergency_calls = [call.sid for call in calls_made if call.base["To"] != OFFICE_NUMBER]
    assert sids == sorted(emergency_calls)
    assert "past its deadline" in server.log()


# ---------------------------------------------------------------- two instances, one database


def test_any_instance_answers_any_webhook_of_a_call(database, config, servers):
    url, engine = database
    first = servers(url, config, "first", workers=1)
    second = servers(url, config, "second", workers=1)
    call = RealCall(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    # Each webhook goes to the other instance than the one before it.
    root = call.post(first, "/voice/incoming")
    gather = root.find("Gather")  # triage: the answer to its key rings the engineers at once
    assert gather is not None, ET.tostring(root)
    root = call.post(second, gather.get("action"), Digits="1")
    assert dialled(root) == ENGINEERS
    number = root.find("Dial/Number")
    screen = call.leg(first, number.get("url"), number.text.strip())
    assert screen.find("Gather") is not None
    call.leg(second, screen.find("Gather").get("action"), number.text.strip(), Digits="1")
    call.post(
        first, root.find("Dial").get("action"), DialCallStatus="completed", DialBridged="true"
    )
    call.post(second, "/voice/status", CallStatus="completed", CallDuration="80")
    with Session(engine) as session:
        log = session.scalar(select(CallLog).where(CallLog.sid == call.sid))
        assert log is not None and log.status == "completed" and log.duration == 80


# ---------------------------------------------------------------- a graceful reload mid-call


def test_a_graceful_reload_loses_no_webhook(database, config, servers):
    url, _engine = database
    server = servers(url, config, workers=2)
    failures: list[str] = []
    answered = []
    stop = threading.Event()

    def caller(index: int) -> None:
        while not stop.is_set():
            call = RealCall(to=OFFICE_NUMBER if index % 2 else EMERGENCY_NUMBER, from_=SUPER_PHONE)
            try:
                root = call.post(server, "/voice/incoming")
                answered.append(root is not None)
                call.post(server, "/voice/status", CallStatus="completed", CallDuration="1")
            except Exception as exc:  # noqa: BLE001 - every failure is collected and reported
                failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=caller, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(answered) >= 5, timeout=20, what="calls before the reload")
        for generation in (2, 3):  # two deploys in a row, each while calls keep coming
            mark = len(answered)
            server.reload()
            wait_until(
                lambda n=generation: server.log().count("Booting worker") >= 2 * n,
                timeout=30,
                what=f"generation {generation} of workers",
            )
            wait_until(
                lambda n=generation: server.log().count("Worker exiting") >= 2 * (n - 1),
                timeout=30,
                what="the old workers to finish and leave",
            )
            wait_until(
                lambda m=mark: len(answered) >= m + 5,
                timeout=30,
                what="calls answered across the reload",
            )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    assert all(answered)
