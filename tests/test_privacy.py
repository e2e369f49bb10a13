"""Privacy: retention purges what is older and keeps what is younger; a person's data is exported
whole and erased without a trace while their tickets stay; every step is on the audit trail.

Recordings are deleted through the twilio library's real REST client, at a local stand-in that
answers like Twilio's Recordings API; the clock is moved, never slept.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, timedelta

import pytest
import requests
from helpers import AUTH_TOKEN, EMERGENCY_NUMBER, OFFICE_NUMBER
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from support_helpers import make_staff, sign_in

from app.background import background_round
from bench.standin import TwilioStandIn
from core.settings import ConfigError
from ivr.models import CallLog, MaintenanceRun, PinFailure, RecordingDeletion
from ivr.outage.journal import Journal
from ivr.privacy import daily
from ivr.privacy.retention import apply_retention
from tickets import paging
from tickets.audit import note_recording_played
from tickets.models import (
    AuditEvent,
    CallbackRequest,
    Contact,
    ContactPhone,
    Organization,
    OutboxMessage,
    StaffUser,
    Ticket,
    TicketCall,
    TicketEvent,
    TimeEntry,
)

ACCOUNT_SID = "AC" + "7" * 32
EMAIL, NAME = "sanne@acme.example", "Sanne Visser"
MOBILE, LANDLINE = "+31611110000", "+31201234567"
PIET_MOBILE = "+31622220000"


def rec(n: int) -> str:
    """Return a recording sid."""
    return f"RE{n:032d}"


def recording_url(sid: str) -> str:
    return f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"


@pytest.fixture(scope="module")
def twilio():
    standin = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture
def settings_overrides(twilio):
    twilio.recordings.clear()
    twilio.deleted.clear()
    twilio.fail_deletes = twilio.delete_requests = 0
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_url": twilio.url,
        "paging.sms_from": "+31612340000",
    }


@pytest.fixture
def journal(settings) -> Journal:
    return Journal(settings.resolved_journal_path)


@pytest.fixture
def privacy(cli, app, settings):
    """Run `ivr privacy ...` on the test database, journal and Twilio, at the test's clock."""
    env = {
        "IVR_JOURNAL_PATH": str(settings.resolved_journal_path),
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "TWILIO_API_URL": settings.twilio_api_url,
    }

    def run(*args: str):
        with app.app_context():  # the command reads the test's clock
            return cli("privacy", *args, env=env)

    return run


def reloaded(session, model, row_id):
    session.expire_all()
    return session.get(model, row_id)


def audit_rows(session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# ------------------------------------------------------------------------------ retention


def _rows_by_number(ticket: Ticket, *, sid: str, at, n: int) -> list:
    """The call's log row, an office voicemail, a wrong PIN and a text, all from its number."""
    return [
        CallLog(
            sid=sid,
            line="emergency",
            from_number=ticket.caller,
            caller_id=ticket.caller,
            started_at=at,
            status="completed",
            duration=60 + n,
        ),
        CallbackRequest(
            call_sid=f"CB{n:032d}",
            caller=ticket.caller,
            department="finance",
            created_at=at,
            recording_url=recording_url(rec(200 + n)),
            recording_sid=rec(200 + n),
        ),
        PinFailure(caller_key=ticket.caller, call_sid=sid, at=at),
        OutboxMessage(
            ticket=ticket,
            kind=paging.CALLER_TICKET,
            channel="sms",
            recipient=ticket.caller,
            status="sent",
            idempotency_key=f"key-{n}",
            created_at=at,
            next_attempt_at=at,
        ),
    ]


def a_call_with_everything(session, twilio, *, at, n: int) -> dict:
    """An emergency call at `at` with a recording, a voicemail, words, numbers and a text."""
    acme = session.scalar(select(Organization)) or Organization(name="Acme")
    ticket = Ticket(
        organization=acme,
        status="closed",
        caller=f"+3161000000{n}",
        description=f"description {n}",
        created_at=at,
        updated_at=at,
    )
    sid = f"CA{n:032d}"
    call = TicketCall(
        ticket=ticket,
        sid=sid,
        line="emergency",
        caller=ticket.caller,
        outcome="answered",
        started_at=at,
        duration=60 + n,
        recording_url=recording_url(rec(n)),
        recording_sid=rec(n),
        recording_duration=50,
        transcription=f"transcription {n}",
    )
    voicemail = recording_url(rec(100 + n))
    session.add_all(
        [
            call,
            TicketEvent(ticket=ticket, kind="voicemail", detail=voicemail, call_sid=sid, at=at),
            TicketEvent(ticket=ticket, kind="description", detail=f"said {n}", call_sid=sid, at=at),
            TicketEvent(ticket=ticket, kind="triage", detail="outage", call_sid=sid, at=at),
            *_rows_by_number(ticket, sid=sid, at=at, n=n),
        ]
    )
    session.commit()
    twilio.recordings.update({rec(n), rec(100 + n), rec(200 + n)})
    return {"ticket": ticket.id, "call": call.id, "sid": sid, "number": ticket.caller}


def test_purge_removes_what_is_older_than_its_days_and_keeps_what_is_younger(
    app, session, clock, twilio
):
    at_old, at_young = clock.now - timedelta(days=91), clock.now - timedelta(days=89)
    old = a_call_with_everything(session, twilio, at=at_old, n=1)
    young = a_call_with_everything(session, twilio, at=at_young, n=2)

    with app.app_context():
        report = apply_retention(session, app.config["SETTINGS"], actor="test", now=clock.now)
        session.commit()

    assert sorted(twilio.deleted) == [rec(1), rec(101), rec(201)]
    assert (report.deletions.deleted, report.deletions.waiting) == (3, 0)
    assert report.removed["recordings"] == 2 and report.removed["transcriptions"] == 1
    call = reloaded(session, TicketCall, old["call"])
    assert (call.recording_url, call.recording_sid, call.transcription, call.caller) == (
        None,
        None,
        None,
        None,
    )
    # What the statistics count stays.
    assert (call.outcome, call.duration, call.recording_duration) == ("answered", 61, 50)
    ticket = session.get(Ticket, old["ticket"])
    assert ticket.caller is None and ticket.updated_at == at_old
    assert ticket.description == "description 1"  # kept a year
    details = dict(
        session.execute(
            select(TicketEvent.kind, TicketEvent.detail).where(TicketEvent.call_sid == old["sid"])
        ).all()
    )
    assert details == {"voicemail": None, "description": None, "triage": "outage"}
    log_row = session.scalar(select(CallLog).where(CallLog.sid == old["sid"]))
    assert (log_row.from_number, log_row.caller_id, log_row.duration) == (None, None, 61)
    callback = session.scalar(select(CallbackRequest).where(CallbackRequest.created_at == at_old))
    assert (callback.caller, callback.recording_url, callback.recording_sid) == (None, None, None)
    assert callback.department == "finance"
    keys = set(session.scalars(select(PinFailure.caller_key)))
    recipients = set(session.scalars(select(OutboxMessage.recipient)))
    assert keys == recipients == {"erased", young["number"]}

    young_call = session.get(TicketCall, young["call"])
    assert young_call.recording_sid == rec(2) and young_call.transcription == "transcription 2"
    assert young_call.caller == young["number"] == session.get(Ticket, young["ticket"]).caller
    assert session.scalar(select(func.count(TicketCall.id))) == 2
    assert session.scalar(select(func.count(CallLog.id))) == 2
    assert twilio.recordings >= {rec(2), rec(102), rec(202)}
    [row] = audit_rows(session, "retention_purge")
    assert row.actor == "test" and "2 recordings" in row.detail and "3 deleted" in row.detail


def test_a_description_is_kept_a_year_and_while_its_ticket_is_open(app, session, clock):
    def ticket(days: int, status: str) -> int:
        row = Ticket(
            status=status, description=f"{status} {days}", created_at=clock.now - timedelta(days)
        )
        session.add(row)
        session.commit()
        return row.id

    closed_old = ticket(366, "closed")
    open_old = ticket(366, "planned")
    closed_young = ticket(364, "resolved")
    with app.app_context():
        apply_retention(session, app.config["SETTINGS"], actor="test", now=clock.now)
        session.commit()

    assert reloaded(session, Ticket, closed_old).description is None
    assert session.get(Ticket, open_old).description == "planned 366"
    assert session.get(Ticket, closed_young).description == "resolved 364"


def test_a_recording_twilio_cannot_delete_now_is_deleted_by_the_next_purge(
    session, clock, twilio, privacy
):
    old = a_call_with_everything(session, twilio, at=clock.now - timedelta(days=100), n=1)
    twilio.recordings.discard(rec(201))  # Twilio no longer has it: a 404 counts as gone
    twilio.fail_deletes = 1

    first = privacy("purge")

    assert first.exit_code == 1
    assert "1 waiting (Twilio answered 500 20500); the next purge tries again" in first.stdout
    assert "not yet deleted at Twilio" in first.stderr
    # Gone from the dashboard at once; the obligation stays until Twilio confirms.
    assert reloaded(session, TicketCall, old["call"]).recording_url is None
    [waiting] = session.scalars(
        select(RecordingDeletion).where(RecordingDeletion.deleted_at.is_(None))
    ).all()
    assert waiting.last_error == "Twilio answered 500 20500" and waiting.attempts == 1

    second = privacy("purge")

    assert second.exit_code == 0, second.output
    assert "0 waiting" in second.stdout
    assert sorted(twilio.deleted) == [rec(1), rec(101)]
    assert twilio.delete_requests == 4
    session.expire_all()
    assert session.scalar(select(func.count()).where(RecordingDeletion.deleted_at.is_(None))) == 0
    assert [row.actor.startswith("cli:") for row in audit_rows(session, "retention_purge")] == [
        True,
        True,
    ]


def test_replayed_journals_are_deleted_after_the_shortest_period_and_the_journal_kept(
    app, session, clock, journal
):
    def archive(days: int):
        stamp = (clock.now - timedelta(days=days)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = journal.path.with_name(f"{journal.path.name}.replayed-{stamp}")
        Journal(path).record("call", call_sid="CA" + "9" * 32, step="call", data={"from": MOBILE})
        return path

    old, young = archive(91), archive(89)
    journal.record("call", call_sid="CA" + "8" * 32, step="call", data={"from": MOBILE})
    with app.app_context():
        report = apply_retention(session, app.config["SETTINGS"], actor="test", now=clock.now)
        session.commit()
    assert report.archives == 1
    assert not old.exists() and young.exists() and journal.path.exists()


def test_bad_privacy_settings_stop_start_up_with_one_line_naming_the_key(database_url, tmp_path):
    from helpers import build_settings

    with pytest.raises(ConfigError) as error:
        build_settings(database_url, tmp_path, **{"privacy.recording_days": 0})
    message = str(error.value)
    assert "\n" not in message and "privacy.recording_days" in message
    with pytest.raises(ConfigError, match="privacy.purge_hour"):
        build_settings(database_url, tmp_path, **{"privacy.purge_hour": 24})


# ------------------------------------------------------------------- a person's data

# How she may appear in text: e-mail, name, her numbers in E.164 and written as people do.
IDENTIFIERS = [EMAIL, NAME, MOBILE, LANDLINE, "0611110000", "0201234567"]
CA = {n: f"CA{n:032d}" for n in range(1, 10)}
# Every table that can hold a caller (the outage journal is a file).
HOLDING_A_CALLER = {
    "contacts",
    "contact_phones",
    "tickets",
    "ticket_calls",
    "ticket_events",
    "time_entries",
    "call_logs",
    "callback_requests",
    "pin_failures",
    "outbox_messages",
}


def _people_and_tickets(session, at) -> dict:
    """Sanne with two numbers and her ticket; Piet and his; an unverified call's ticket."""
    acme = Organization(name="Acme Uitzendbureau")
    sanne = Contact(organization=acme, name=NAME, email=EMAIL, role="super_user", pin_hash="h1")
    sanne.phones = [ContactPhone(number=MOBILE), ContactPhone(number=LANDLINE)]
    piet = Contact(organization=acme, name="Piet Bos", email="piet@acme.example", role="key_user")
    piet.phones = [ContactPhone(number=PIET_MOBILE)]
    own = Ticket(
        organization=acme,
        contact=sanne,
        caller=MOBILE,
        reason="outage",
        description="De omgeving is weg, zegt Sanne Visser",
        waiting_question=f"Kunnen we {NAME} op 0611110000 bellen?",
        created_at=at,
    )
    made = {
        "sanne": sanne,
        "piet": piet,
        "anna": StaffUser(email="anna@otys.test", name="Anna Jansen", password_hash="x"),
        "own": own,
        "pieters": Ticket(organization=acme, contact=piet, caller=PIET_MOBILE, created_at=at),
        "unverified": Ticket(caller=LANDLINE, verified=False, created_at=at),
    }
    session.add_all(made.values())
    session.flush()
    return made


def _calls_and_timelines(session, made: dict, at) -> None:
    """Her calls (one joins Piet's ticket), Piet's call on hers, and what the timelines say."""
    own, pieters, unverified, anna = made["own"], made["pieters"], made["unverified"], made["anna"]
    for sid, ticket, contact, caller, recording, words in [
        (CA[1], own, made["sanne"], MOBILE, rec(1), "Ik ben Sanne Visser, alles ligt eruit"),
        (CA[2], own, made["piet"], PIET_MOBILE, rec(6), "Piet hier, nog steeds stuk"),
        (CA[3], pieters, made["sanne"], MOBILE, None, "Sanne weer, nog steeds stuk"),
        (CA[4], unverified, None, LANDLINE, rec(3), None),
    ]:
        session.add(
            TicketCall(
                ticket=ticket,
                sid=sid,
                line="emergency",
                caller=caller,
                contact=contact,
                outcome="answered",
                started_at=at,
                duration=95,
                answered_by="Anna Jansen",
                recording_url=recording_url(recording) if recording else None,
                recording_sid=recording,
                transcription=words,
            )
        )
    for ticket, sid, kind, detail, staff in [
        (own, CA[1], "recognised", f"{NAME} (super_user) by caller ID", None),
        (own, CA[1], "voicemail", recording_url(rec(2)), None),
        (own, CA[1], "call_recorded", recording_url(rec(1)), None),
        (own, CA[1], "description", "Ik ben Sanne Visser, alles ligt eruit", None),
        (own, CA[1], "engineer_accepted", "Anna Jansen (level 1)", None),
        (own, CA[2], "call_joined", "Piet Bos called again; the call was added", None),
        (own, None, "note", f"{NAME} belde terug op 0611110000", anna),
        (pieters, CA[3], "call_joined", f"{NAME} called again; the call was added", None),
        (pieters, None, "note", f"Overlegd met {NAME} ({EMAIL})", anna),
        (unverified, CA[4], "unverified", "too many wrong PINs from this number", None),
    ]:
        session.add(TicketEvent(ticket=ticket, call_sid=sid, kind=kind, detail=detail, staff=staff))
    session.add(TimeEntry(ticket=own, staff=anna, minutes=20, note=f"{NAME} teruggebeld"))


def _kept_by_number(session, made: dict, at) -> None:
    """The call log, an office voicemail, a wrong PIN and texts to her mobile."""
    for sid, number in ((CA[1], MOBILE), (CA[3], MOBILE), (CA[4], LANDLINE), (CA[5], MOBILE)):
        session.add(CallLog(sid=sid, line="emergency", from_number=number, caller_id=number))
    session.add(
        CallLog(sid=CA[2], line="emergency", from_number=PIET_MOBILE, caller_id=PIET_MOBILE)
    )
    session.add(
        CallbackRequest(
            call_sid=CA[5],
            caller=MOBILE,
            department="finance",
            recording_url=recording_url(rec(4)),
            recording_sid=rec(4),
        )
    )
    session.add(PinFailure(caller_key=LANDLINE, call_sid=CA[4], at=at))
    for kind, status in ((paging.CALLER_TICKET, "sent"), (paging.CALLER_ACK, "pending")):
        session.add(
            OutboxMessage(
                ticket=made["own"],
                kind=kind,
                channel="sms",
                recipient=MOBILE,
                status=status,
                idempotency_key=f"{kind}-1",
            )
        )


def _journalled(journal: Journal) -> None:
    """An archive of a replayed outage, and a call of hers still waiting for replay."""
    archive = Journal(
        journal.path.with_name(journal.path.name + ".replayed-20261201T080000000000Z")
    )
    archive.record("call", call_sid=CA[6], step="call", data={"from": MOBILE, "caller": MOBILE})
    archive.record(
        "voicemail",
        call_sid=CA[6],
        step=f"voicemail:{rec(5)}",
        data={"url": recording_url(rec(5)), "recording_sid": rec(5), "department": "finance"},
    )
    journal.record("call", call_sid=CA[7], step="call", data={"from": MOBILE, "caller": MOBILE})
    journal.record("description", call_sid=CA[7], step="description", data={"text": "Sanne!"})
    journal.record("call", call_sid=CA[8], step="call", data={"from": "+31633330000"})


def everything_about_sanne(session, clock, journal: Journal, twilio) -> dict:
    """Sanne, a super user, in every table and file that can hold a caller; Piet beside her."""
    at = clock.now - timedelta(days=3)
    made = _people_and_tickets(session, at)
    _calls_and_timelines(session, made, at)
    _kept_by_number(session, made, at)
    session.commit()
    _journalled(journal)
    twilio.recordings.update(rec(n) for n in range(1, 7))
    return {name: made[name].id for name in ("own", "pieters", "unverified", "piet")}


def strings(value) -> set[str]:
    """Return every string in a JSON document."""
    if isinstance(value, str):
        return {value}
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return set().union(set(), *(strings(item) for item in items))


def texts_naming(session, identifiers) -> list[tuple[str, str, str]]:
    """Return (table, column, text) for every text in every column of every table naming her.

    The test's own scan, over everything in Base.metadata: keys, hashes and staff tables too.
    """
    from sqlalchemy import String

    from core.db import Base

    session.expire_all()
    found = []
    lowered = [text.lower() for text in identifiers]
    for table in Base.metadata.sorted_tables:
        columns = [column for column in table.columns if isinstance(column.type, String)]
        for row in session.execute(select(*columns)) if columns else []:
            for column, value in zip(columns, row, strict=True):
                if isinstance(value, str) and any(text in value.lower() for text in lowered):
                    found.append((table.name, column.name, value))
    return found


def journal_texts(journal: Journal) -> str:
    paths = [journal.path, *journal.archives()]
    return "".join(path.read_text() for path in paths if path.exists())


def test_an_export_holds_everything_held_about_the_person(session, clock, journal, twilio, privacy):
    made = everything_about_sanne(session, clock, journal, twilio)

    result = privacy("export", EMAIL)

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    exported = strings(document)
    naming = texts_naming(session, IDENTIFIERS)
    # Every table that holds her is in the export, and every text in them that names her.
    assert {table for table, _, _ in naming} == HOLDING_A_CALLER
    assert [text for _, _, text in naming if text not in exported] == []
    contact = document["contact"]
    assert [contact[key] for key in ("name", "email", "organization", "phones", "has_pin")] == [
        NAME,
        EMAIL,
        "Acme Uitzendbureau",
        [LANDLINE, MOBILE],
        True,
    ]
    numbers = {ticket["number"]: ticket for ticket in document["tickets"]}
    own, joined = str(100000 + made["own"]), str(100000 + made["pieters"])
    assert set(numbers) == {own, joined, str(100000 + made["unverified"])}
    assert numbers[own]["description"].startswith("De omgeving") and numbers[own]["opened_by_them"]
    assert "description" not in numbers[joined]  # Piet's ticket: only her call's part
    assert [call["sid"] for call in document["calls"]] == [CA[1], CA[3], CA[4]]
    urls = {recording["url"] for recording in document["recordings"]}
    assert urls == {recording_url(rec(n)) for n in (1, 3, 4)}
    assert recording_url(rec(2)) in exported  # the voicemail a recording replaced, on the timeline
    assert [row["sid"] for row in document["call_log"]] == [CA[1], CA[3], CA[4], CA[5]]
    assert document["callback_requests"][0]["recording_sid"] == rec(4)
    assert [row["call_sid"] for row in document["wrong_pins"]] == [CA[4]]
    assert {row["kind"] for row in document["messages"]} == {"caller_ticket", "caller_ack"}
    journalled = [entry["call_sid"] for entry in document["outage_journal"]]
    assert journalled == [CA[6], CA[6], CA[7], CA[7]]
    assert "Sanne!" in exported
    # Nobody else's data: not Piet's, nor the other caller in the journal.
    assert not any("Piet" in text or PIET_MOBILE in text or "+3163333" in text for text in exported)
    # The export is on the audit trail; the trail names her only by a keyed hash.
    [row] = audit_rows(session, "privacy_export")
    assert row.actor.startswith("cli:") and re.fullmatch(r"person [0-9a-f]{16}", row.detail)
    assert [entry["detail"] for entry in document["audit_trail"]] == [row.detail]
    # A staff note naming her on Piet's ticket is no part of her tickets: listed as a mention.
    assert document["mentioned_elsewhere"] == [
        {"table": "ticket_events", "column": "detail", "text": f"Overlegd met {NAME} ({EMAIL})"}
    ]


def test_erasing_a_person_leaves_no_trace_and_keeps_their_tickets(
    session, clock, journal, twilio, privacy
):
    made = everything_about_sanne(session, clock, journal, twilio)
    counted = (Ticket, TicketCall, TicketEvent, CallLog, CallbackRequest, PinFailure, OutboxMessage)
    before = {model: session.scalar(select(func.count()).select_from(model)) for model in counted}

    assert privacy("export", EMAIL).exit_code == 0

    result = privacy("erase", "06-11110000")  # her mobile, as people write it

    assert result.exit_code == 0, result.output
    assert "contact: 1 deleted, with 2 numbers" in result.stdout
    assert "recordings at Twilio: 5 deleted, 0 already gone, 0 waiting" in result.stdout
    assert texts_naming(session, IDENTIFIERS) == []
    assert "Sanne" not in journal_texts(journal) and MOBILE not in journal_texts(journal)
    assert sorted(twilio.deleted) == [rec(n) for n in range(1, 6)]  # not Piet's recording
    # Tickets, calls and the counts behind the statistics stay.
    after = {model: session.scalar(select(func.count()).select_from(model)) for model in counted}
    assert after == before
    own = session.get(Ticket, made["own"])
    assert (own.contact_id, own.caller, own.organization.name) == (None, None, "Acme Uitzendbureau")
    call = session.scalar(select(TicketCall).where(TicketCall.sid == CA[1]))
    assert (call.outcome, call.duration, call.answered_by) == ("answered", 95, "Anna Jansen")
    assert session.scalar(select(func.count(Contact.id))) == 1
    # Piet, on her ticket and with his own, is untouched.
    piet_call = session.scalar(select(TicketCall).where(TicketCall.sid == CA[2]))
    assert (piet_call.contact_id, piet_call.caller) == (made["piet"], PIET_MOBILE)
    assert piet_call.recording_sid == rec(6) and rec(6) in twilio.recordings
    # The text still waiting to go to her is not sent.
    statuses = set(session.scalars(select(OutboxMessage.status)))
    assert statuses == {"sent", "cancelled"}
    # The still waiting journal entry is replayed without her: the call becomes a ticket.
    waiting = [entry for entry in journal.read().entries if entry.call_sid == CA[7]]
    assert [entry.data for entry in waiting] == [
        {"from": None, "caller": None},
        {"text": None},
    ]
    [row] = audit_rows(session, "privacy_erase")
    [export] = audit_rows(session, "privacy_export")
    assert row.actor.startswith("cli:") and row.detail.startswith(f"{export.detail}: ")
    assert "tickets kept without the person: 2" in row.detail

    again = privacy("export", EMAIL)
    assert again.exit_code == 1 and "no contact has the e-mail address" in again.stderr


def test_a_person_unknown_or_ambiguous_is_refused_and_nothing_changes(session, clock, privacy):
    acme = Organization(name="Acme")
    for name, email in (("Ann de Wit", "ann@acme.example"), ("Bert de Wit", "bert@acme.example")):
        contact = Contact(organization=acme, name=name, email=email, role="key_user")
        contact.phones = [ContactPhone(number="+31301234567")]  # the family's landline
        session.add(contact)
    session.commit()
    refusals = {
        "nobody@acme.example": "no contact has the e-mail address nobody@acme.example",
        "+31 6 4444 0000": "nothing is held about +31644440000",
        "not a number": "'not a number' is neither an e-mail address nor a phone number",
        "030-1234567": "+31301234567 is the number of 2 contacts; ask by e-mail address",
    }
    for who, why in refusals.items():
        for command in ("export", "erase"):
            result = privacy(command, who)
            assert result.exit_code == 1
            assert result.stderr == f"error: {why}\n" and result.stdout == ""
    session.expire_all()
    assert session.scalar(select(func.count(AuditEvent.id))) == 0
    assert session.scalar(select(func.count(Contact.id))) == 2

    by_email = privacy("export", "ANN@acme.example")
    assert (
        by_email.exit_code == 0 and json.loads(by_email.stdout)["contact"]["name"] == "Ann de Wit"
    )


def test_a_caller_known_only_from_the_outage_journal_can_be_exported_and_erased(
    session, clock, journal, twilio, privacy
):
    sid = "CA" + "4" * 32
    journal.record("call", call_sid=sid, step="call", data={"from": MOBILE, "caller": MOBILE})
    journal.record(
        "voicemail",
        call_sid=sid,
        step="voicemail",
        data={"url": recording_url(rec(9)), "recording_sid": rec(9)},
    )
    twilio.recordings.add(rec(9))

    exported = json.loads(privacy("export", "0611110000").stdout)
    assert exported["contact"] is None and exported["phone_numbers"] == [MOBILE]
    assert [entry["kind"] for entry in exported["outage_journal"]] == ["call", "voicemail"]

    erased = privacy("erase", "0611110000")
    assert erased.exit_code == 0, erased.output
    assert MOBILE not in journal_texts(journal) and twilio.deleted == [rec(9)]


def test_a_caller_whose_number_was_erased_gets_no_more_texts(app, session, clock, privacy):
    acme = Organization(name="Acme")
    sanne = Contact(organization=acme, name=NAME, email=EMAIL, role="super_user")
    sanne.phones = [ContactPhone(number=MOBILE)]
    ticket = Ticket(organization=acme, contact=sanne, caller=MOBILE)
    session.add_all([sanne, ticket])
    session.flush()
    session.add(
        OutboxMessage(
            ticket=ticket,
            kind=paging.CALLER_TICKET,
            channel="sms",
            recipient=MOBILE,
            status="delivered",
            idempotency_key="caller-ticket",
        )
    )
    session.commit()
    assert privacy("erase", EMAIL).exit_code == 0

    with app.app_context():
        paging.tell_caller(session, ticket=session.get(Ticket, ticket.id), kind=paging.CALLER_ACK)
        session.commit()
    assert list(session.scalars(select(OutboxMessage.kind))) == [paging.CALLER_TICKET]


# --------------------------------------------------------------------- who listened


class FakeRecording:
    status_code = 200
    headers = {"Content-Type": "audio/mpeg", "Content-Length": "4"}

    def iter_content(self, size):
        yield b"ID3 "

    def close(self):
        pass


def test_each_listen_to_a_recording_is_on_the_audit_trail_once(
    app, client, session, clock, monkeypatch
):
    monkeypatch.setattr(requests, "get", lambda url, **kwargs: FakeRecording())
    make_staff(session, email="agent@otys.test")
    make_staff(session, email="admin@otys.test", name="Ada Admin", role="admin")
    ticket = Ticket(caller=MOBILE)
    call = TicketCall(
        ticket=ticket,
        sid=CA[1],
        line="emergency",
        recording_url=recording_url(rec(1)),
        recording_sid=rec(1),
    )
    voicemail = CallbackRequest(
        call_sid=CA[2], department="finance", recording_url=recording_url(rec(2))
    )
    session.add_all([call, voicemail])
    session.commit()
    assert sign_in(client).status_code == 303

    for _ in range(3):  # a browser fetches a recording in ranges, and people skip back
        assert client.get(f"/support/recordings/{call.id}").status_code == 200
    clock.now += timedelta(minutes=11)
    client.get(f"/support/recordings/{call.id}")
    client.get(f"/support/callbacks/{voicemail.id}/recording")

    rows = audit_rows(session, "recording_played")
    heard = f"recording {rec(1)} of call {CA[1]} on ticket {ticket.number}"
    assert [(row.actor, row.detail) for row in rows] == [
        ("agent@otys.test", heard),
        ("agent@otys.test", heard),
        ("agent@otys.test", f"office voicemail of call {CA[2]} (finance)"),
    ]
    with app.app_context():
        assert not note_recording_played(session, actor="agent@otys.test", recording=heard)
        assert note_recording_played(session, actor="admin@otys.test", recording=heard)
        session.commit()
    # On the settings page, apart from the switches' changes.
    page = client.get("/support/settings").get_data(as_text=True)
    personal = page[page.index('id="personal-data"') :]
    assert personal.count("Recording played") == 4 and "admin@otys.test" in personal
    assert "Recording played" not in page[: page.index('id="personal-data"')]


# ------------------------------------------------------------------- once a day


def test_only_one_of_two_processes_racing_for_the_day_takes_the_purge(database_url, clock):
    from core.db import make_engine

    start = threading.Barrier(2)
    taken: list[int | None] = []

    def process() -> None:
        engine = make_engine(database_url, timeout_seconds=5)  # a process of its own
        try:
            with Session(engine) as session:
                start.wait()
                run = daily.claim_day(session, job=daily.JOB, day=clock.now.date(), now=clock.now)
                session.commit()  # as the process that claims it does
                taken.append(run)
        finally:
            engine.dispose()

    racers = [threading.Thread(target=process) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(30)
    assert len(taken) == 2 and sorted(run is None for run in taken) == [False, True]
    engine = create_engine(database_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count(MaintenanceRun.id))) == 1
    engine.dispose()


def test_the_service_purges_once_a_day_from_the_purge_hour_in_one_process(
    app, session, clock, twilio, settings
):
    from app import create_app

    a_call_with_everything(session, twilio, at=clock.now - timedelta(days=95), n=1)
    daily.enable_daily_purge(app)
    other = create_app(settings)  # a second process (or instance) over the same database
    other.config["CLOCK"] = clock
    daily.enable_daily_purge(other)

    def round_of(process) -> threading.Thread | None:
        background_round(process)
        thread = process.extensions["daily_purge"].thread
        if thread is not None:
            thread.join(30)
        return thread

    clock.now = clock.now.replace(hour=2, minute=59)  # before `privacy.purge_hour`
    assert round_of(app) is None and round_of(other) is None
    clock.now = clock.now.replace(hour=3, minute=0)
    first = round_of(app)
    assert first is not None and round_of(other) is None
    assert round_of(app) is first  # once a day: no second run
    assert sorted(twilio.deleted) == [rec(1), rec(101), rec(201)]
    session.expire_all()
    [run] = session.scalars(select(MaintenanceRun)).all()
    assert run.job == "privacy_purge" and run.day == clock.now.date()
    assert run.finished_at == clock.now and run.summary.startswith("purged 2 recordings")
    assert [row.actor for row in audit_rows(session, "retention_purge")] == ["service"]

    clock.now += timedelta(days=1)
    assert round_of(other) is not None  # the next day, whoever comes first
    assert session.scalar(select(func.count(MaintenanceRun.id))) == 2


def test_what_real_calls_leave_behind_is_exported_whole_and_erased_without_a_trace(
    session, clock, phone, twilio, privacy
):
    from tickets.availability import set_hours_override

    acme = Organization(name="Acme Uitzendbureau")
    sanne = Contact(organization=acme, name=NAME, email=EMAIL, role="super_user")
    sanne.phones = [ContactPhone(number=MOBILE)]
    session.add(sanne)
    session.commit()
    missed = phone(to=EMERGENCY_NUMBER, from_=MOBILE)  # rings the engineers; she hangs up
    assert missed.press(missed.start(), "1").find("Dial") is not None
    missed.hang_up(duration="40")
    set_hours_override(session, mode="closed", set_by="test")
    session.commit()
    for number, keys, n in ((EMERGENCY_NUMBER, None, 1), (OFFICE_NUMBER, "1", 2)):
        call = phone(to=number, from_=MOBILE)  # closed: a voicemail on each line
        root = call.start() if keys is None else call.press(call.start(), keys)
        call.post(
            root.find("Record").get("action"),
            RecordingUrl=recording_url(rec(n)),
            RecordingSid=rec(n),
            RecordingDuration="20",
            Digits="hangup",
        )
        call.hang_up()
        twilio.recordings.add(rec(n))
    naming = texts_naming(session, IDENTIFIERS)
    assert {"tickets", "ticket_calls", "ticket_events", "call_logs"} < {t for t, _, _ in naming}
    assert {"callback_requests", "outbox_messages"} < {t for t, _, _ in naming}

    exported = strings(json.loads(privacy("export", MOBILE).stdout))
    assert [text for _, _, text in naming if text not in exported] == []
    assert privacy("erase", EMAIL).exit_code == 0
    assert texts_naming(session, IDENTIFIERS) == []
    assert sorted(twilio.deleted) == [rec(1), rec(2)]
    # Her second call joined the open ticket of the first: one ticket, both calls, kept.
    assert session.scalar(select(func.count(Ticket.id))) == 1
    assert session.scalar(select(func.count(TicketCall.id))) == 2
