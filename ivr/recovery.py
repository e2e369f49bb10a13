"""Replay the outage journal into the database: the handlers per event, and when to run them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ivr import calls
from ivr.hours import is_open
from ivr.journal import Deferred, Entry, Handler, Journal, ReplayReport, replay, replay_engine
from ivr.lines import EMERGENCY, OFFICE
from ivr.office.menu import RECEPTION
from ivr.outage import guard_connections
from ivr.params import CALL_FINAL_STATUSES, caller_id
from ivr.params import recording_url as clean_recording_url
from ivr.params import sid as clean_sid
from ivr.params import speech as clean_speech
from ivr.params import whole_number as parse_seconds
from ivr.settings import Settings
from tickets import urgent
from tickets.availability import get_hours_override
from tickets.callbacks import record_callback_request
from tickets.db import utcnow
from tickets.directory import find_contact_by_phone
from tickets.models import REASONS, TicketCall

log = logging.getLogger(__name__)


# How long an event of an emergency call waits for the call's own entry (which another
# instance may still hold in its journal) before it is applied without a ticket.
WAIT_FOR_CALL = timedelta(hours=1)


def _text(value: object, limit: int = 64) -> str | None:
    """Return a journalled value as bounded text, None when empty."""
    if value is None or value == "":
        return None
    return str(value)[:limit]


def _line(entry: Entry) -> str:
    """Return the line a journal entry belongs to."""
    return EMERGENCY if entry.data.get("line") == EMERGENCY else OFFICE


def _when(settings: Settings, at: datetime) -> str:
    """Return a moment in the service's time zone, for timelines."""
    return at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M:%S")


def _engineer_name(settings: Settings, number: object) -> str:
    """Return the configured name of the engineer with this number."""
    called = caller_id(_text(number))
    for engineer in settings.emergency.engineers:
        if engineer.number == called:
            return engineer.name
    return "unknown engineer"


def _ticket_call(session: Session, entry: Entry) -> TicketCall | None:
    """Return the ticket call an emergency event belongs to; wait a while for it to appear."""
    call = urgent.find_ticket_call(session, entry.call_sid)
    if call is None and entry.data.get("ticket"):
        ticket = urgent.find_ticket(session, _text(entry.data["ticket"], 12))
        if ticket is not None:
            call = urgent.find_call_on_ticket(session, ticket=ticket, sid=entry.call_sid)
    if call is None and utcnow() - entry.at < WAIT_FOR_CALL:
        raise Deferred(f"no ticket yet for call {entry.call_sid}")
    return call


def replay_call(settings: Settings, session: Session, entry: Entry) -> str:
    """Record a call served during the outage; an emergency call gets its urgent ticket."""
    data = entry.data
    line = _line(entry)
    log_row = calls.get_call(session, entry.call_sid)
    if log_row is None:
        log_row = calls.record_call_start(
            session,
            sid=entry.call_sid,
            line=line,
            from_number=_text(data.get("from")),
            to_number=_text(data.get("to")),
            language=_text(data.get("language"), 5) or settings.default_language,
        )
        log_row.from_journal = True
        log_row.started_at = entry.at
        session.commit()
    calls.note_step(session, sid=entry.call_sid, step="outage:journal")
    if line != EMERGENCY:
        return f"office call {entry.call_sid} served during the outage, now in the call log"
    note = (
        f"the database was unreachable during this call ({_when(settings, entry.at)}); "
        "the caller was put through to the engineers without being verified"
    )
    existing = urgent.find_ticket_call(session, entry.call_sid)
    if existing is not None:
        urgent.note_from_journal(session, call=existing, detail=note, at=entry.at)
        return f"call {entry.call_sid} on urgent ticket {existing.ticket.number}: outage replayed"
    caller = caller_id(_text(data.get("caller")))
    contact = find_contact_by_phone(session, caller)
    if contact is not None:
        note += (
            f"; the caller ID belongs to {contact.name} ({contact.role}) "
            f"of {contact.organization.name}"
        )
    else:
        note += "; the caller ID is unknown or withheld"
    schedule = settings.schedule_for(settings.emergency.schedule)
    in_hours = is_open(
        schedule,
        entry.at,
        zone=settings.zone,
        country=settings.holiday_country,
        override=get_hours_override(session),
    )
    call = urgent.open_journalled_ticket(
        session,
        call_sid=entry.call_sid,
        line=EMERGENCY,
        caller=caller or _text(data.get("from")),
        contact=contact,
        in_hours=in_hours,
        repeat_window_minutes=settings.emergency.repeat_window_minutes,
        at=entry.at,
        note=note,
    )
    if log_row.status in CALL_FINAL_STATUSES:  # its end was replayed first (another journal)
        urgent.settle_ticket_call(
            session, sid=entry.call_sid, duration=log_row.duration, now=log_row.ended_at
        )
    return (
        f"urgent ticket {call.ticket.number} from the outage journal for call "
        f"{entry.call_sid} (caller not verified)"
    )


def replay_reason(settings: Settings, session: Session, entry: Entry) -> str:
    """Record the triage key a caller pressed during the outage."""
    reason = entry.data.get("reason")
    call = _ticket_call(session, entry)
    if call is None or reason not in REASONS:
        return f"reason of call {entry.call_sid}: nothing to record"
    urgent.record_reason(session, call=call, reason=reason, now=entry.at)
    return f"reason {reason} on urgent ticket {call.ticket.number}"


def replay_description(settings: Settings, session: Session, entry: Entry) -> str:
    """Record the description a caller spoke during the outage."""
    text = clean_speech(_text(entry.data.get("text"), 1000))
    call = _ticket_call(session, entry)
    if call is None or not text:
        return f"description of call {entry.call_sid}: nothing to record"
    urgent.record_description(session, call=call, text=text, now=entry.at)
    return f"description on urgent ticket {call.ticket.number}"


def replay_dial(settings: Settings, session: Session, entry: Entry) -> str:
    """Record what ringing during the outage came to."""
    status = (_text(entry.data.get("status"), 20) or "").lower()
    if _line(entry) != EMERGENCY:
        calls.note_step(session, sid=entry.call_sid, step=f"outage:dial:{status}")
        return f"dial {status} of office call {entry.call_sid}"
    call = _ticket_call(session, entry)
    if call is None:
        return f"dial of call {entry.call_sid}: no ticket to record it on"
    if status == "completed" or str(entry.data.get("bridged")).lower() == "true":
        urgent.record_dial_outcome(session, call=call, outcome="answered")
    elif status == "canceled":
        urgent.record_dial_outcome(session, call=call, outcome="abandoned_while_ringing")
    else:
        urgent.record_engineers_unavailable(session, call=call, now=entry.at)
    return f"dial {status} on urgent ticket {call.ticket.number}"


def replay_answered(settings: Settings, session: Session, entry: Entry) -> str:
    """Record the engineer who accepted a call during the outage."""
    call = _ticket_call(session, entry)
    engineer = _engineer_name(settings, entry.data.get("engineer"))
    if call is None:
        return f"{engineer} answered call {entry.call_sid}: no ticket to record it on"
    urgent.record_engineer_response(
        session, ticket=call.ticket, call=call, engineer=engineer, accepted=True, now=entry.at
    )
    return f"{engineer} answered urgent ticket {call.ticket.number}"


def _recording(entry: Entry) -> tuple[str | None, str | None, int | None]:
    """Return the clean URL, sid and duration of a journalled recording."""
    data = entry.data
    return (
        clean_recording_url(_text(data.get("url"), 500)),
        clean_sid(_text(data.get("recording_sid"))),
        parse_seconds(_text(data.get("duration"), 10)),
    )


def replay_recording(settings: Settings, session: Session, entry: Entry) -> str:
    """Store the recording of a conversation held during the outage."""
    url, sid, duration = _recording(entry)
    status = (_text(entry.data.get("status"), 20) or "completed").lower()
    if _line(entry) != EMERGENCY or url is None or status != "completed":
        return f"recording of call {entry.call_sid}: nothing to store"
    call = _ticket_call(session, entry)
    if call is None:
        return f"recording of call {entry.call_sid}: no ticket to store it on"
    urgent.record_call_recording(
        session, call=call, recording_url=url, recording_sid=sid, duration=duration, now=entry.at
    )
    return f"recording on urgent ticket {call.ticket.number}"


def replay_voicemail(settings: Settings, session: Session, entry: Entry) -> str:
    """Store a voicemail left during the outage: on the urgent ticket, or for call-back."""
    url, sid, duration = _recording(entry)
    if url is None:
        return f"voicemail of call {entry.call_sid}: no usable recording"
    if _line(entry) == EMERGENCY:
        call = _ticket_call(session, entry)
        if call is None:
            return f"voicemail of call {entry.call_sid}: no ticket to store it on"
        urgent.record_voicemail(
            session,
            call=call,
            recording_url=url,
            recording_sid=sid,
            duration=duration,
            now=entry.at,
        )
        return f"voicemail on urgent ticket {call.ticket.number}"
    department = _text(entry.data.get("department"))
    if department not in settings.office.departments:
        department = RECEPTION
    log_row = calls.get_call(session, entry.call_sid)
    request = record_callback_request(
        session,
        call_sid=entry.call_sid,
        caller=log_row.caller_id if log_row is not None else None,
        department=department,
        recording_url=url,
        recording_sid=sid,
        recording_duration=duration,
        in_hours=entry.data.get("hours") != "out",
        at=entry.at,
    )
    return f"office voicemail for {request.department} kept for call-back (call {entry.call_sid})"


def replay_status(settings: Settings, session: Session, entry: Entry) -> str:
    """Record a status callback that arrived during the outage, and settle the ticket call."""
    data = entry.data
    log_row = calls.record_call_status(
        session,
        sid=entry.call_sid,
        status=_text(data.get("status"), 20) or "",
        line=_line(entry),
        duration=_text(data.get("duration")),
        sequence=_text(data.get("sequence")),
    )
    if log_row.status in CALL_FINAL_STATUSES and log_row.ended_at and log_row.ended_at > entry.at:
        log_row.ended_at = entry.at  # it ended when Twilio said so, not when we replayed it
        session.commit()
    if log_row.status in CALL_FINAL_STATUSES:
        urgent.settle_ticket_call(
            session, sid=entry.call_sid, duration=log_row.duration, now=log_row.ended_at
        )
    return f"status {data.get('status')} of call {entry.call_sid}"


HandlerFactory = Callable[[Settings, Session, Entry], str | None]

REPLAYERS: dict[str, HandlerFactory] = {
    "call": replay_call,
    "reason": replay_reason,
    "description": replay_description,
    "dial": replay_dial,
    "answered": replay_answered,
    "recording": replay_recording,
    "voicemail": replay_voicemail,
    "status": replay_status,
}


def handlers_for(settings: Settings) -> dict[str, Handler]:
    """Return the replay handler of each journal entry kind, bound to the settings."""

    def bind(replayer: HandlerFactory) -> Handler:
        return lambda session, entry: replayer(settings, session, entry)

    return {kind: bind(replayer) for kind, replayer in REPLAYERS.items()}


def journal_of(settings: Settings) -> Journal:
    """Return this host's outage journal."""
    return Journal(settings.resolved_journal_path)


def replay_journal(settings: Settings) -> ReplayReport:
    """Replay this host's journal into the configured database once."""
    journal = journal_of(settings)
    if not journal.has_entries():
        return ReplayReport()
    engine = replay_engine(
        settings.resolved_database_url, timeout_seconds=settings.database_timeout_seconds
    )
    guard_connections(engine, settings.database_timeout_seconds)
    try:
        report = replay(journal, engine, handlers_for(settings))
    finally:
        engine.dispose()
    if report.applied or report.failed or report.unknown:
        log.warning(
            "outage journal replay: %d applied, %d already in, %d waiting, %d failed, "
            "%d of unknown kind%s",
            report.applied,
            report.already,
            report.deferred,
            report.failed,
            report.unknown,
            f"; archived as {report.archived}" if report.archived else "",
        )
    return report


class ReplayThread(threading.Thread):
    """Background thread of one server process: replay the journal whenever it has entries."""

    def __init__(self, settings: Settings, *, on_report: Callable[[ReplayReport], None]) -> None:
        super().__init__(name="journal-replay", daemon=True)
        self.settings = settings
        self.on_report = on_report
        self.stopped = threading.Event()

    def run(self) -> None:
        journal = journal_of(self.settings)
        while not self.stopped.wait(self.settings.journal_replay_seconds):
            if not journal.has_entries():
                continue
            try:
                report = replay_journal(self.settings)
            except Exception:  # noqa: BLE001 - keep trying; the next round may succeed
                log.exception("outage journal replay failed")
                continue
            self.on_report(report)

    def stop(self) -> None:
        """Ask the thread to finish after its current round."""
        self.stopped.set()


def start_replay_thread(app) -> ReplayThread:
    """Start the background replay of a serving process; it also clears the database hint."""
    outage = app.extensions["outage"]

    def on_report(report: ReplayReport) -> None:
        if report.interrupted:
            outage.health.mark_down()
        elif report.applied or report.already:
            outage.health.mark_up()

    thread = ReplayThread(app.config["SETTINGS"], on_report=on_report)
    thread.start()
    return thread


def journal_status_lines(settings: Settings) -> list[str]:
    """Describe the journal for `ivr journal status`: path, waiting entries, archives."""
    journal = journal_of(settings)
    snapshot = journal.read()
    ids = {entry.id for entry in snapshot.entries}
    lines = [f"journal: {journal.path}", f"entries: {len(ids)}"]
    if snapshot.skipped_lines:
        lines.append(f"unreadable lines (skipped): {snapshot.skipped_lines}")
    lines.append(f"replayed journals kept: {len(journal.archives())}")
    return lines
