import json
import logging

import pytest
from conftest import EMERGENCY_0900, EMERGENCY_NUMBER, OFFICE_NUMBER, dialled, spoken
from sqlalchemy import event, select

from ivr import outage
from ivr.journal import Journal, entry_id
from ivr.models import CallLog
from ivr.recovery import replay_journal
from tickets.db import db

ENGINEERS = ["+31318584941", "+31318584942"]
RECEPTION = ["+31318584901"]


class Outage:
    """A database that refuses every new connection, and a count of the attempts."""

    def __init__(self, engine):
        self.engine = engine
        self.attempts = 0
        self.active = False

    def refuse(self, *_args):
        self.attempts += 1
        raise self.engine.dialect.loaded_dbapi.OperationalError("connection refused (simulated)")

    def start(self):
        db.session.remove()
        self.engine.dispose()
        event.listen(self.engine, "do_connect", self.refuse)
        self.active = True

    def end(self):
        if self.active:
            event.remove(self.engine, "do_connect", self.refuse)
            self.engine.dispose()
            self.active = False


@pytest.fixture
def database_down(app):
    """Take the database away for the rest of the test (the app stays up)."""
    down = Outage(db.engine)
    down.start()
    yield down
    down.end()


@pytest.fixture
def journal(settings):
    return Journal(settings.resolved_journal_path)


def entries(journal):
    return {entry.id: entry for entry in journal.read().entries}


def screening_urls(root):
    return [number.get("url") for number in root.iter("Number")]


def engineer_leg(client_call, path, **params):
    """Post a webhook the way Twilio does for an engineer's leg of our <Dial>."""
    params.setdefault("Direction", "outbound-dial")
    params.setdefault("ParentCallSid", client_call.sid)
    params.setdefault("CallSid", "CA" + "e" * 32)
    params.setdefault("To", ENGINEERS[0])
    return client_call.post(path, **params)


# ---------------------------------------------------------------- at the start of a call


@pytest.mark.parametrize("number", [EMERGENCY_NUMBER, EMERGENCY_0900])
def test_emergency_caller_reaches_the_engineers_while_the_database_is_down(
    phone, database_down, journal, number
):
    call = phone(to=number, from_="+31612345678")
    root = call.start()
    assert dialled(root) == ENGINEERS
    assert all(url.startswith("/voice/fallback/screen?caller=") for url in screening_urls(root))
    assert "technische storing" in spoken(root)
    dial = root.find("Dial")
    assert dial.get("action").startswith("/voice/outage/dialled?line=emergency")
    entry = entries(journal)[f"{call.sid}:call"]
    assert entry.data["caller"] == "+31612345678"
    assert entry.data["line"] == "emergency"


def test_office_caller_reaches_reception_while_the_database_is_down(phone, database_down, journal):
    call = phone(to=OFFICE_NUMBER)
    root = call.start()
    assert dialled(root) == RECEPTION
    assert entries(journal)[f"{call.sid}:call"].data["line"] == "office"


def test_after_one_failure_webhooks_skip_the_database_for_a_while(phone, database_down):
    phone(to=EMERGENCY_NUMBER).start()
    tried = database_down.attempts
    assert tried >= 1
    for _ in range(3):
        root = phone(to=EMERGENCY_NUMBER).start()
        assert dialled(root) == ENGINEERS
    assert database_down.attempts == tried


@pytest.mark.parametrize("settings_overrides", [{"database_retry_seconds": 0}])
def test_without_a_retry_pause_every_webhook_tries_the_database_again(phone, database_down):
    phone(to=EMERGENCY_NUMBER).start()
    tried = database_down.attempts
    phone(to=EMERGENCY_NUMBER).start()
    assert database_down.attempts > tried


def test_the_database_is_used_again_once_it_is_back(app, phone, database_down):
    phone(to=OFFICE_NUMBER).start()
    database_down.end()
    app.extensions["outage"].health.mark_up()  # what the replay thread does when it succeeds
    call = phone(to=OFFICE_NUMBER)
    call.start()
    assert db.session.scalar(select(CallLog).where(CallLog.sid == call.sid)) is not None


# ---------------------------------------------------------------- in the middle of a call


def test_an_office_call_that_loses_the_database_mid_menu_goes_to_reception(
    phone, app, journal, session
):
    call = phone(to=OFFICE_NUMBER)
    root = call.start()
    down = Outage(db.engine)
    down.start()
    try:
        gather = root.find("Gather")
        action = gather.get("action") if gather is not None else "/voice/office/menu?lang=nl"
        root = call.post(action, Digits="1")
    finally:
        down.end()
    assert dialled(root) == RECEPTION
    assert f"{call.sid}:call" in entries(journal)


def test_an_emergency_step_that_loses_the_database_still_rings_the_engineers(
    phone, database_down, journal
):
    call = phone(to=EMERGENCY_NUMBER)
    call.base["CallStatus"] = "in-progress"
    root = call.post("/voice/emergency/triage?lang=en&misses=0", Digits="1")
    assert dialled(root) == ENGINEERS
    assert root.find("Say").get("language") == "en-GB"
    assert f"{call.sid}:call" in entries(journal)


def test_the_emergency_hand_off_from_the_office_menu_is_an_emergency_call(
    phone, database_down, journal
):
    call = phone(to=OFFICE_NUMBER)
    call.base["CallStatus"] = "in-progress"
    root = call.post("/voice/emergency/start?via=office&lang=nl")
    assert dialled(root) == ENGINEERS
    data = entries(journal)[f"{call.sid}:call"].data
    assert (data["line"], data["via"]) == ("emergency", "office")


def test_a_reason_carried_in_our_urls_is_journalled(phone, database_down, journal):
    call = phone(to=EMERGENCY_NUMBER)
    call.post("/voice/emergency/description?lang=nl&reason=urgent_bug", SpeechResult="kapot")
    assert entries(journal)[f"{call.sid}:reason"].data == {"reason": "urgent_bug"}


# ---------------------------------------------------------------- the engineer's leg


def test_the_engineers_leg_is_screened_as_unverified_and_never_dialled(phone, database_down):
    call = phone(to=EMERGENCY_NUMBER, from_="+31612345678")
    root = engineer_leg(call, "/voice/fallback/screen?caller=%2B31612345678")
    assert dialled(root) == []
    gather = root.find("Gather")
    assert gather.get("action") == "/voice/fallback/accept"
    assert "niet geverifieerde beller" in spoken(root)
    assert "3 1 6 1 2 3 4 5 6 7 8" in spoken(root)
    assert root[-1].tag == "Hangup"


@pytest.mark.parametrize(
    "path", ["/voice/emergency/screen?ticket=100001&eng=0", "/voice/fallback/screen"]
)
def test_a_screening_webhook_without_leg_details_is_still_never_dialled(phone, database_down, path):
    call = phone(to=EMERGENCY_NUMBER)
    root = call.post(path)  # no Direction, no ParentCallSid: still a screening path
    assert dialled(root) == []
    assert root.find("Gather") is not None


def test_an_engineer_pressing_1_is_bridged_and_journalled(phone, database_down, journal):
    call = phone(to=EMERGENCY_NUMBER)
    root = engineer_leg(call, "/voice/fallback/accept", Digits="1")
    assert list(root) == []  # an empty answer bridges the engineer
    answered = [e for e in entries(journal).values() if e.kind == "answered"]
    assert answered[0].call_sid == call.sid
    assert answered[0].data["engineer"] == ENGINEERS[0]


@pytest.mark.parametrize("digits", ["2", "", "11", "*"])
def test_an_engineer_pressing_anything_else_is_refused(phone, database_down, digits):
    call = phone(to=EMERGENCY_NUMBER)
    root = engineer_leg(call, "/voice/emergency/accept?ticket=100001&eng=1", Digits=digits)
    assert [child.tag for child in root] == ["Hangup"]


# ---------------------------------------------------------------- after the dial


def test_a_dial_that_ended_a_conversation_says_goodbye_and_rings_nobody_again(
    phone, database_down, journal
):
    call = phone(to=EMERGENCY_NUMBER)
    call.base["CallStatus"] = "in-progress"
    root = call.post(
        "/voice/outage/dialled?line=emergency&lang=nl",
        DialCallStatus="completed",
        DialCallSid="CA" + "d" * 32,
        DialCallDuration="300",
    )
    assert dialled(root) == []
    assert root[-1].tag == "Hangup"
    dial = entries(journal)[entry_id(call.sid, f"dial:CA{'d' * 32}")]
    assert dial.data["status"] == "completed"


def test_a_flow_dial_callback_during_the_outage_never_rings_again_after_a_conversation(
    phone, database_down
):
    call = phone(to=EMERGENCY_NUMBER)
    call.base["CallStatus"] = "in-progress"
    root = call.post(
        "/voice/emergency/dialled?lang=nl&eng=0", DialCallStatus="completed", DialBridged="true"
    )
    assert dialled(root) == []


def test_a_caller_who_hung_up_during_the_dial_gets_nothing_more(phone, database_down):
    call = phone(to=EMERGENCY_NUMBER)
    call.base["CallStatus"] = "completed"
    root = call.post("/voice/outage/dialled?line=emergency", DialCallStatus="no-answer")
    assert dialled(root) == []
    assert [child.tag for child in root] == ["Hangup"]


@pytest.mark.parametrize("line", ["emergency", "office"])
def test_nobody_answering_during_the_outage_leads_to_a_journalled_voicemail(
    phone, database_down, journal, line
):
    call = phone(to=EMERGENCY_NUMBER if line == "emergency" else OFFICE_NUMBER)
    call.base["CallStatus"] = "in-progress"
    root = call.post(f"/voice/outage/dialled?line={line}&lang=nl", DialCallStatus="no-answer")
    record = root.find("Record")
    assert record is not None and dialled(root) == []
    root = call.post(
        record.get("action"),
        RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        RecordingSid="RE" + "1" * 32,
        RecordingDuration="14",
    )
    assert root[-1].tag == "Hangup"
    voicemail = entries(journal)[entry_id(call.sid, f"voicemail:RE{'1' * 32}")]
    assert voicemail.data["line"] == line
    assert voicemail.data["duration"] == "14"


def test_the_recording_callback_of_an_outage_dial_is_journalled(phone, database_down, journal):
    call = phone(to=EMERGENCY_NUMBER)
    root = call.post(
        "/voice/outage/recording?line=emergency",
        RecordingStatus="completed",
        RecordingUrl="https://api.twilio.com/rec/RE2",
        RecordingSid="RE2",
    )
    assert list(root) == []
    found = entries(journal)
    assert found[f"{call.sid}:recording:RE2"].kind == "recording"
    assert f"{call.sid}:call" not in found  # a progress report is not a call being served


def test_status_callbacks_during_the_outage_are_journalled(phone, database_down, journal):
    call = phone(to=EMERGENCY_NUMBER)
    response = call.post_raw(
        "/voice/status", CallStatus="completed", CallDuration="61", SequenceNumber="4"
    )
    assert response.status_code == 204
    status = entries(journal)[f"{call.sid}:status:completed"]
    assert status.data["duration"] == "61"


# ---------------------------------------------------------------- /voice/fallback


@pytest.mark.parametrize(
    ("number", "expected"),
    [(EMERGENCY_NUMBER, ENGINEERS), (EMERGENCY_0900, ENGINEERS), (OFFICE_NUMBER, RECEPTION)],
)
def test_fallback_serves_callers_and_journals_without_touching_the_database(
    phone, database_down, journal, number, expected
):
    call = phone(to=number)
    root = call.post("/voice/fallback", ErrorCode="11200", ErrorUrl="https://x/voice/incoming")
    assert dialled(root) == expected
    assert database_down.attempts == 0
    assert entries(journal)[f"{call.sid}:call"].data["error_code"] == "11200"


def test_fallback_survives_an_unwritable_journal(phone, settings, caplog, tmp_path):
    settings.resolved_journal_path.parent.mkdir(parents=True, exist_ok=True)
    settings.resolved_journal_path.mkdir()  # a directory where the file should be
    call = phone(to=EMERGENCY_NUMBER)
    with caplog.at_level(logging.ERROR):
        root = call.post("/voice/fallback", ErrorCode="11200")
    assert dialled(root) == ENGINEERS
    assert "not writable" in caplog.text


# ---------------------------------------------------------------- the error handler


def test_a_bug_in_a_flow_still_serves_the_caller(app, phone, monkeypatch, journal):
    from ivr import office

    def broken(*_args, **_kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(office, "answer", broken)
    call = phone(to=OFFICE_NUMBER)
    root = call.start()
    assert dialled(root) == RECEPTION
    assert not app.extensions["outage"].health.looks_down()  # a bug is not an outage


def test_a_bug_on_an_engineers_leg_screens_and_never_dials(phone, monkeypatch):
    from ivr import emergency

    def broken(*_args, **_kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(emergency, "screen", broken)
    call = phone(to=EMERGENCY_NUMBER)
    root = engineer_leg(call, "/voice/emergency/screen?ticket=100001&eng=0")
    assert dialled(root) == []
    assert root.find("Gather") is not None


def test_api_answers_503_while_the_database_is_down(client, database_down):
    response = client.get("/api/tickets", headers={"Authorization": "Bearer nothing"})
    assert response.status_code == 503
    assert response.get_json() == {"error": "database unavailable"}


def test_health_stays_200_while_only_the_fallback_path_works(client, database_down):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json()["database"] == "unavailable"


# ---------------------------------------------------------------- replay


def test_calls_of_the_outage_reach_the_call_log_after_replay(phone, database_down, settings):
    office_call = phone(to=OFFICE_NUMBER)
    office_call.start()
    office_call.hang_up(duration="33")
    database_down.end()
    report = replay_journal(settings)
    assert report.complete and report.applied >= 2
    db.session.expire_all()
    log = db.session.scalar(select(CallLog).where(CallLog.sid == office_call.sid))
    assert log.from_journal and log.status == "completed" and log.duration == 33
    assert "outage:journal" in log.choices
    assert replay_journal(settings).applied == 0


def test_the_journal_is_plain_json_lines(phone, database_down, journal):
    phone(to=EMERGENCY_NUMBER).start()
    for line in journal.path.read_text().splitlines():
        assert json.loads(line)["kind"]


def test_outage_module_has_no_call_state():
    state = {
        name
        for name, value in vars(outage).items()
        if isinstance(value, dict | list | set) and not name.startswith("__")
    }
    assert state == set()
