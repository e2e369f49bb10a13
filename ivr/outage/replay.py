"""Replay the outage journal into the database, once per entry, and keep doing it.

Replay applies each entry through the handler for its kind (`ivr.outage.replayers`), in one
database transaction together with a `JournalReplay` row for its id: an entry is done only
when both are committed, and an id already present is never applied again. One process per
host (a file lock) and per cluster (a PostgreSQL advisory lock) replays at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from core.db import is_database_unreachable, make_engine
from core.settings import Settings
from ivr.models import JournalReplay
from ivr.outage.detection import guard_connections
from ivr.outage.journal import Entry, Journal
from ivr.outage.replayers import REPLAYERS, Deferred, Replayer

log = logging.getLogger(__name__)

# Arbitrary constant that names "the journal replay" among PostgreSQL advisory locks.
ADVISORY_LOCK_KEY = 0x1A7E_0001

Handler = Callable[[Session, Entry], "str | None"]


@dataclass
class ReplayReport:
    """What one replay run did."""

    applied: int = 0
    already: int = 0
    failed: int = 0
    unknown: int = 0
    deferred: int = 0
    skipped_lines: int = 0
    busy: bool = False
    interrupted: bool = False
    archived: Path | None = None
    summaries: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Return whether every entry of the journal is now in the database."""
        return not (self.busy or self.interrupted or self.failed or self.unknown or self.deferred)


def replay_engine(url: str, *, timeout_seconds: float) -> Engine:
    """Return an engine for replay whose sessions can nest savepoints (SQLite included)."""
    engine = make_engine(url, timeout_seconds=timeout_seconds)
    if engine.dialect.name == "sqlite":
        # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy drive it.
        @event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediately(connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextlib.contextmanager
def _replay_guard(engine: Engine, journal: Journal) -> Iterator[bool]:
    """Hold the host's replay file lock and, on PostgreSQL, the cluster-wide advisory lock."""
    lock_path = journal.path.with_name(journal.path.name + ".replay-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        if engine.dialect.name != "postgresql":
            yield True
            return
        # The lock is the connection's, not a transaction's: no transaction is held open.
        autocommit = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        with autocommit as connection:
            query = text("SELECT pg_try_advisory_lock(:key)")
            got = bool(connection.execute(query, {"key": ADVISORY_LOCK_KEY}).scalar())
            try:
                yield got
            finally:
                if got:
                    with contextlib.suppress(SQLAlchemyError):
                        unlock = text("SELECT pg_advisory_unlock(:key)")
                        connection.execute(unlock, {"key": ADVISORY_LOCK_KEY})
    finally:
        os.close(fd)


def _apply(connection, entry: Entry, handler: Handler) -> str | None:
    """Apply one entry and mark it replayed, both in one transaction; None if already done."""
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        marker = JournalReplay(entry_id=entry.id, summary=f"{entry.kind} {entry.call_sid}")
        session.add(marker)
        try:
            session.flush()
        except IntegrityError:
            return None  # another process replayed it a moment ago
        summary = handler(session, entry) or f"{entry.kind} {entry.call_sid}"
        marker.summary = summary[:2000]
        session.commit()  # the entry's savepoint; the transaction below makes it stand
        session.close()
        transaction.commit()
        return summary
    finally:
        session.close()
        if transaction.is_active:
            transaction.rollback()


def replay(journal: Journal, engine: Engine, handlers: Mapping[str, Handler]) -> ReplayReport:
    """Apply every journal entry not yet in the database; archive the file when all are in."""
    report = ReplayReport()
    if not journal.has_entries():
        return report
    try:
        with _replay_guard(engine, journal) as acquired:
            if not acquired:
                report.busy = True
                return report
            snapshot = journal.read()
            report.skipped_lines = snapshot.skipped_lines
            _replay_entries(snapshot.entries, engine, handlers, report)
            if report.complete:
                report.archived = journal.archive(snapshot)
    except Exception as exc:
        if not is_database_unreachable(exc):
            raise
        report.interrupted = True
        log.warning("journal replay postponed: database unavailable (%s)", type(exc).__name__)
    return report


def _replay_entries(
    entries: list[Entry], engine: Engine, handlers: Mapping[str, Handler], report: ReplayReport
) -> None:
    """Apply each entry once, in the order written; stop when the database goes away."""
    seen: set[str] = set()
    with engine.connect() as connection:
        for entry in entries:
            if entry.id in seen:
                report.already += 1
                continue
            seen.add(entry.id)
            done = connection.scalar(
                select(JournalReplay.entry_id).where(JournalReplay.entry_id == entry.id)
            )
            connection.rollback()
            if done is not None:
                report.already += 1
                continue
            handler = handlers.get(entry.kind)
            if handler is None:
                report.unknown += 1
                log.warning("journal entry %s has unknown kind %r", entry.id, entry.kind)
                continue
            try:
                summary = _apply(connection, entry, handler)
            except Deferred as wait:
                report.deferred += 1
                log.info("journal entry %s waits: %s", entry.id, wait)
                continue
            except Exception as exc:
                if is_database_unreachable(exc):
                    raise
                report.failed += 1
                log.exception("journal entry %s (%s) could not be applied", entry.id, entry.kind)
                continue
            if summary is None:
                report.already += 1
            else:
                report.applied += 1
                report.summaries.append(summary)
                log.warning("replayed from the outage journal: %s", summary)


def handlers_for(settings: Settings) -> dict[str, Handler]:
    """Return the replay handler of each journal entry kind, bound to the settings."""

    def bind(replayer: Replayer) -> Handler:
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
        """Replay the journal every `journal_replay_seconds` until stopped."""
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
