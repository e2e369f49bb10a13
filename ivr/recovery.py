"""Replay the outage journal into the database: the handlers per event, and when to run them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from ivr import calls
from ivr.journal import Entry, Handler, Journal, ReplayReport, replay, replay_engine
from ivr.lines import EMERGENCY
from ivr.models import CALL_FINAL_STATUSES
from ivr.settings import Settings

log = logging.getLogger(__name__)


def _as_int(value: object) -> int | None:
    """Parse a non-negative integer from a journalled Twilio value; None when odd."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= 10**7 else None


def _text(value: object, limit: int = 64) -> str | None:
    """Return a journalled value as bounded text, None when empty."""
    if value is None or value == "":
        return None
    return str(value)[:limit]


def replay_call(settings: Settings, session: Session, entry: Entry) -> str:
    """Record a call served during the outage in the call log, marked as from the journal."""
    data = entry.data
    line = data.get("line") if data.get("line") in ("office", EMERGENCY) else "office"
    call = calls.get_call(session, entry.call_sid)
    if call is None:
        call = calls.record_call_start(
            session,
            sid=entry.call_sid,
            line=line,
            from_number=_text(data.get("from")),
            to_number=_text(data.get("to")),
            language=_text(data.get("language"), 5) or settings.default_language,
        )
        call.from_journal = True
        call.started_at = entry.at
        session.commit()
    calls.note_step(session, sid=entry.call_sid, step="outage:journal")
    return f"{line} call {entry.call_sid} served during the outage, now in the call log"


def replay_status(settings: Settings, session: Session, entry: Entry) -> str:
    """Record a status callback that arrived during the outage."""
    data = entry.data
    call = calls.record_call_status(
        session,
        sid=entry.call_sid,
        status=_text(data.get("status"), 20) or "",
        line=data.get("line") if data.get("line") in ("office", EMERGENCY) else "office",
        duration=_text(data.get("duration")),
        sequence=_text(data.get("sequence")),
    )
    if call.status in CALL_FINAL_STATUSES and call.ended_at and call.ended_at > entry.at:
        call.ended_at = entry.at  # it ended when Twilio said so, not when we replayed it
        session.commit()
    return f"status {data.get('status')} of call {entry.call_sid}"


def replay_note(settings: Settings, session: Session, entry: Entry) -> str:
    """Note an outage event on the call's trail in the call log."""
    calls.note_step(session, sid=entry.call_sid, step=f"outage:{entry.kind}")
    return f"{entry.kind} of call {entry.call_sid}"


HandlerFactory = Callable[[Settings, Session, Entry], str | None]

REPLAYERS: dict[str, HandlerFactory] = {
    "call": replay_call,
    "status": replay_status,
    "reason": replay_note,
    "dial": replay_note,
    "answered": replay_note,
    "recording": replay_note,
    "voicemail": replay_note,
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
    try:
        report = replay(journal, engine, handlers_for(settings))
    finally:
        engine.dispose()
    if report.applied or report.failed or report.unknown:
        log.warning(
            "outage journal replay: %d applied, %d already in, %d failed, %d of unknown kind%s",
            report.applied,
            report.already,
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


def describe_entry_time(at: datetime, settings: Settings) -> str:
    """Return an entry's moment in the service's time zone, for timelines and logs."""
    return at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M:%S %Z")


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
