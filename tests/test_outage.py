import json
import logging
import os
import socket
import threading
import time

import psycopg
import pytest
from helpers import EMERGENCY_0900, EMERGENCY_NUMBER, OFFICE_NUMBER, dialled, spoken
from resilience_helpers import (
    SUPER_PHONE,
    USER_PHONE,
    DatabaseOutage,
    make_directory,
)
from sqlalchemy import make_url, select
from sqlalchemy.exc import OperationalError

from core.db import db, is_database_unreachable
from ivr import outage
from ivr.models import CallLog
from ivr.outage import detection, errors, routes, webhook, without_database
from ivr.outage.journal import Journal, entry_id
from ivr.outage.replay import (
    ReplayReport,
    _replay_entries,
    handlers_for,
    replay_engine,
    replay_journal,
)
from ivr.outage.watchdog import arm_connection, watchdog
from tickets.availability import set_hours_override
from tickets.models import CallbackRequest, Ticket, TicketCall, TicketEvent

ENGINEERS = ["+31318584941", "+31318584942"]
RECEPTION = ["+31318584901"]


@pytest.fixture
def database_down(app):
    """Take the database away for the rest of the test (the app stays up)."""
    down = DatabaseOutage().start()
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
    down = DatabaseOutage().start()
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


def test_a_caller_going_on_unverified_when_the_database_goes_still_rings_the_engineers(
    phone, database_down, journal
):
    call = phone(to=EMERGENCY_NUMBER, from_="anonymous")
    call.base["CallStatus"] = "in-progress"
    root = call.post("/voice/emergency/unverified?lang=nl&why=locked&misses=0", Digits="2")
    assert dialled(root) == ENGINEERS
    assert entries(journal)[f"{call.sid}:reason"].data == {"reason": "urgent_bug"}


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
    from ivr.office import steps as office

    def broken(*_args, **_kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(office, "answer", broken)
    call = phone(to=OFFICE_NUMBER)
    root = call.start()
    assert dialled(root) == RECEPTION
    assert not app.extensions["outage"].health.looks_down()  # a bug is not an outage


def test_a_bug_on_an_engineers_leg_screens_and_never_dials(phone, monkeypatch):
    from ivr.emergency import engineers as emergency

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


def test_every_endpoint_the_outage_handling_names_exists(app):
    named = {
        webhook.STATUS_ENDPOINT,
        *webhook.TRIAGE_ENDPOINTS,
        webhook.DESCRIPTION_ENDPOINT,
        webhook.OUTAGE_VOICEMAIL_ENDPOINT,
        *webhook.ENGINEER_LEG_ENDPOINTS,
    }
    assert named <= set(app.view_functions)
    assert set(app.blueprints) >= routes.VOICE_BLUEPRINTS


def test_every_voice_webhook_is_served_by_the_outage_handling(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/voice/"):
            assert rule.endpoint.split(".")[0] in routes.VOICE_BLUEPRINTS, rule.rule


def test_outage_module_has_no_call_state():
    modules = (outage, detection, webhook, without_database, routes, errors)
    state = {
        f"{module.__name__}.{name}"
        for module in modules
        for name, value in vars(module).items()
        if isinstance(value, dict | list | set) and not name.startswith("__")
    }
    assert state == set()


# ---------------------------------------------------------------- urgent tickets from the journal


@pytest.fixture
def directory(clock, session):
    people = make_directory(session)
    set_hours_override(session, mode="open", set_by="test")  # replay reads the real clock
    session.commit()
    return people


def tickets_of(session):
    session.expire_all()
    return session.scalars(select(Ticket).order_by(Ticket.id)).all()


def timeline(session, ticket):
    return [
        (event.kind, event.detail)
        for event in session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
        )
    ]


def outage_call(call, *, answered=True):
    """Walk a call served entirely without the database: rung, screened, answered, ended."""
    root = call.start()
    assert dialled(root) == ENGINEERS
    number = root.find("Dial/Number")
    screen = engineer_leg(call, number.get("url"), To=number.text)
    if answered:
        engineer_leg(call, screen.find("Gather").get("action"), To=number.text, Digits="1")
        call.post(
            root.find("Dial").get("action"),
            DialCallStatus="completed",
            DialCallSid="CA" + "d" * 32,
            DialBridged="true",
        )
        call.post(
            root.find("Dial").get("recordingStatusCallback"),
            RecordingStatus="completed",
            RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE9",
            RecordingSid="RE" + "9" * 32,
            RecordingDuration="80",
        )
    else:
        voicemail = call.post(root.find("Dial").get("action"), DialCallStatus="no-answer")
        call.post(
            voicemail.find("Record").get("action"),
            RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE8",
            RecordingSid="RE" + "8" * 32,
            RecordingDuration="21",
        )
    call.hang_up(duration="95")


def test_an_emergency_call_during_the_outage_becomes_an_unverified_urgent_ticket(
    phone, directory, session, settings, caplog
):
    down = DatabaseOutage().start()
    try:
        call = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
        outage_call(call)
    finally:
        down.end()
    assert tickets_of(session) == []
    with caplog.at_level(logging.WARNING, logger="ivr.outage.replay"):
        report = replay_journal(settings)
    assert report.complete and report.archived is not None
    [ticket] = tickets_of(session)
    assert (ticket.priority, ticket.source, ticket.from_journal, ticket.verified) == (
        "urgent",
        "phone",
        True,
        False,
    )
    assert ticket.caller == SUPER_PHONE and ticket.in_hours
    assert ticket.contact.name == "Sanne Visser" and ticket.organization.name.startswith("Acme")
    [ticket_call] = ticket.calls
    session.refresh(ticket_call)
    assert ticket_call.sid == call.sid and ticket_call.outcome == "answered"
    assert ticket_call.answered_by == "Support engineer 1"
    assert ticket_call.recording_url.endswith("/RE9") and ticket_call.duration == 95
    kinds = [kind for kind, _ in timeline(session, ticket)]
    assert kinds.count("journal") == 1 and "engineer_accepted" in kinds
    journal_note = dict(timeline(session, ticket))["journal"]
    assert "without being verified" in journal_note and "Sanne Visser" in journal_note
    assert f"urgent ticket {ticket.number} from the outage journal" in caplog.text


def test_a_second_replay_changes_nothing(phone, directory, session, settings):
    down = DatabaseOutage().start()
    try:
        outage_call(phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE))
    finally:
        down.end()
    journal = Journal(settings.resolved_journal_path)
    snapshot = journal.read()
    replay_journal(settings)
    [ticket] = tickets_of(session)
    before = timeline(session, ticket)
    # The same journal again (as if restored from the archive) is recognised entry by entry.
    for entry in snapshot.entries:
        journal.append(entry)
    report = replay_journal(settings)
    assert report.applied == 0 and report.already == len(snapshot.entries)
    [again] = tickets_of(session)
    assert again.id == ticket.id and timeline(session, again) == before


def test_replayers_racing_each_other_open_one_ticket_per_call(phone, directory, session, settings):
    down = DatabaseOutage().start()
    try:
        calls_made = [phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE) for _ in range(3)]
        calls_made.append(phone(to=EMERGENCY_NUMBER, from_="anonymous"))
        for call in calls_made:
            outage_call(call, answered=False)
    finally:
        down.end()
    entries_ = Journal(settings.resolved_journal_path).read().entries
    reports = [ReplayReport() for _ in range(3)]

    def run(report):
        engine = replay_engine(settings.resolved_database_url, timeout_seconds=5.0)
        try:
            _replay_entries(entries_, engine, handlers_for(settings), report)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run, args=(report,)) for report in reports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(report.failed for report in reports) == 0
    session.expire_all()
    sids = session.scalars(select(TicketCall.sid)).all()
    assert sorted(sids) == sorted(call.sid for call in calls_made)
    tickets = tickets_of(session)
    assert all(not ticket.verified and ticket.from_journal for ticket in tickets)
    anonymous = [ticket for ticket in tickets if ticket.contact is None]
    assert [ticket.caller for ticket in anonymous] == ["anonymous"]


def test_instances_replaying_at_once_take_turns_and_join_an_organisations_calls(
    phone, directory, session, settings
):
    down = DatabaseOutage().start()
    try:
        calls_made = [phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE) for _ in range(3)]
        for call in calls_made:
            outage_call(call, answered=False)
    finally:
        down.end()
    reports = []
    threads = [
        threading.Thread(target=lambda: reports.append(replay_journal(settings))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    while not any(report.archived for report in reports):  # those that found it busy retry
        reports.append(replay_journal(settings))
        assert len(reports) < 10
    [archived] = [report.archived for report in reports if report.archived]
    written = {entry.id for entry in Journal(archived).read().entries}
    assert sum(report.applied for report in reports) == len(written)
    [ticket] = tickets_of(session)  # one organisation, within the window: one ticket
    assert sorted(call.sid for call in ticket.calls) == sorted(call.sid for call in calls_made)


def test_the_outage_part_of_a_call_is_added_to_the_ticket_it_already_had(
    phone, directory, session, settings
):
    call = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    triage = call.start()
    [ticket] = tickets_of(session)
    assert ticket.verified
    down = DatabaseOutage().start()
    try:
        root = call.press(triage, "2")
        assert dialled(root) == ENGINEERS
        voicemail = call.post(root.find("Dial").get("action"), DialCallStatus="no-answer")
        call.post(
            voicemail.find("Record").get("action"),
            RecordingUrl="https://api.twilio.com/rec/RE7",
            RecordingSid="RE7",
            RecordingDuration="12",
        )
        call.hang_up(duration="70")
    finally:
        down.end()
    assert replay_journal(settings).complete
    [same] = tickets_of(session)
    assert same.id == ticket.id and same.verified and not same.from_journal
    assert same.reason == "urgent_bug"
    [ticket_call] = same.calls
    session.refresh(ticket_call)
    assert ticket_call.outcome == "voicemail" and ticket_call.recording_url.endswith("/RE7")
    assert "journal" in [kind for kind, _ in timeline(session, same)]


def test_a_description_posted_during_the_outage_reaches_the_ticket(
    phone, directory, session, settings
):
    # The flow no longer asks for one, but a call asked before an upgrade still posts it.
    call = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    call.start()
    down = DatabaseOutage().start()
    try:
        root = call.post(
            "/voice/emergency/description?lang=nl",
            SpeechResult="het rooster laadt niet",
            Confidence="0.9",
        )
        assert dialled(root) == ENGINEERS
        call.hang_up()
    finally:
        down.end()
    assert replay_journal(settings).complete
    [ticket] = tickets_of(session)
    assert ticket.description == "het rooster laadt niet"
    assert ("description", "het rooster laadt niet") in timeline(session, ticket)


def test_an_office_voicemail_during_the_outage_is_kept_for_call_back(
    phone, directory, session, settings
):
    down = DatabaseOutage().start()
    try:
        call = phone(to=OFFICE_NUMBER, from_="+31622222222")
        call.base["CallStatus"] = "in-progress"
        voicemail = call.post("/voice/office/dialed?dept=finance&lang=nl", DialCallStatus="busy")
        action = voicemail.find("Record").get("action")
        assert "dept=finance" in action
        call.post(action, RecordingUrl="https://api.twilio.com/rec/RE6", RecordingDuration="9")
    finally:
        down.end()
    assert replay_journal(settings).complete
    session.expire_all()
    [request] = session.scalars(select(CallbackRequest)).all()
    assert (request.call_sid, request.department, request.caller) == (
        call.sid,
        "finance",
        "+31622222222",
    )
    assert tickets_of(session) == []


def test_an_event_journalled_before_its_call_waits_for_it(directory, session, settings):
    journal = Journal(settings.resolved_journal_path)
    sid = "CA" + "7" * 32
    journal.record("answered", call_sid=sid, step="answered:CA1", data={"engineer": ENGINEERS[1]})
    report = replay_journal(settings)
    assert (report.applied, report.deferred) == (0, 1) and report.archived is None
    journal.record(
        "call",
        call_sid=sid,
        step="call",
        data={"line": "emergency", "caller": SUPER_PHONE, "from": SUPER_PHONE},
    )
    first = replay_journal(settings)
    assert (first.applied, first.deferred) == (1, 1)
    second = replay_journal(settings)
    assert second.applied == 1 and second.complete and second.archived is not None
    [ticket] = tickets_of(session)
    assert ticket.calls[0].answered_by == "Support engineer 2"


def test_a_normal_users_refused_call_ending_during_the_outage_opens_no_ticket(
    phone, directory, session, settings
):
    call = phone(to=EMERGENCY_NUMBER, from_=USER_PHONE)
    root = call.start()
    assert root[-1].tag == "Hangup"
    down = DatabaseOutage().start()
    try:
        call.hang_up(duration="8")
    finally:
        down.end()
    assert replay_journal(settings).complete
    assert tickets_of(session) == []


@pytest.mark.parametrize("settings_overrides", [{"emergency.ring_strategy": "sequential"}])
def test_with_sequential_ringing_an_outage_after_the_first_engineer_rings_them_all(
    phone, directory, session
):
    call = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    root = call.press(call.start(), "1")
    assert dialled(root) == ENGINEERS[:1]
    down = DatabaseOutage().start()
    try:
        root = call.dial_result(root, "no-answer")
    finally:
        down.end()
    assert dialled(root) == ENGINEERS


# ---------------------------------------------------------------- deadlines


@pytest.mark.skipif(
    not os.environ.get("IVR_TEST_DATABASE_URL"), reason="needs PostgreSQL (IVR_TEST_DATABASE_URL)"
)
@pytest.mark.parametrize("settings_overrides", [{"database_timeout_seconds": 0.5}])
def test_a_statement_past_its_deadline_is_cut_off_by_the_watchdog(app, caplog):
    with db.engine.connect() as connection:
        connection.exec_driver_sql("SET statement_timeout = 0")  # as if the server never answered
        started = time.monotonic()
        with pytest.raises(OperationalError) as failure:
            connection.exec_driver_sql("SELECT pg_sleep(20)")
        assert time.monotonic() - started < 10
        assert failure.value.connection_invalidated
    assert "past its deadline" in caplog.text
    assert is_database_unreachable(failure.value)


@pytest.mark.wall_clock
def test_the_watchdog_leaves_calls_that_finish_in_time_alone():
    left, right = socket.socketpair()
    with left, right:
        token = watchdog.arm(left.fileno(), 0.05)
        watchdog.disarm(token)
        time.sleep(0.2)
        left.sendall(b"x")
        assert right.recv(1) == b"x"


def test_the_watchdog_cuts_a_socket_past_its_deadline():
    left, right = socket.socketpair()
    with left, right:
        watchdog.arm(left.fileno(), 0.05)
        right.settimeout(5)
        assert right.recv(1) == b""  # the peer sees the connection shut down


@pytest.mark.wall_clock
@pytest.mark.skipif(
    not os.environ.get("IVR_TEST_DATABASE_URL"), reason="needs PostgreSQL (IVR_TEST_DATABASE_URL)"
)
def test_the_watchdog_leaves_a_closed_connections_socket_number_to_its_new_owner(database_url):
    url = make_url(database_url).set(drivername="postgresql")
    connection = psycopg.connect(url.render_as_string(hide_password=False))
    number = connection.pgconn.socket
    arm_connection(connection, 0.1)  # closed before its deadline, never disarmed
    connection.close()
    left, right = socket.socketpair()
    with left, right:
        # Another socket now has the closed connection's number (the lowest free one, or moved).
        taken_over = left.fileno() == number
        if not taken_over:
            os.dup2(left.fileno(), number)
        try:
            time.sleep(0.3)
            os.write(number, b"x")
            right.settimeout(5)
            assert right.recv(1) == b"x"
        finally:
            if not taken_over:
                os.close(number)


def test_a_line_in_the_query_counts_only_on_our_outage_urls(phone, database_down):
    call = phone(to=OFFICE_NUMBER)
    call.base["CallStatus"] = "in-progress"
    root = call.post("/voice/office/choice?lang=nl&misses=0&line=emergency", Digits="1")
    assert dialled(root) == RECEPTION
