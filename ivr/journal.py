"""The outage journal: call events written to a local file while the database is away.

Each event is one JSON line with an id made of the CallSid and the step, so a webhook Twilio
retries writes the same id twice and is still applied once. Lines are appended under an
exclusive `flock` and made durable with `fsync`, so several workers and instances on one host
can share the file. Replay applies each entry through a handler registered for its kind, in
one database transaction together with a `JournalReplay` row for its id: an entry is done only
when both are committed, and an id already present is never applied again. A fully replayed
journal is renamed to `<name>.replayed-<UTC time>` and kept for reference.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from ivr.models import JournalReplay
from tickets.db import is_database_unreachable, make_engine, utcnow

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_ID_LENGTH = 64
MAX_VALUE_LENGTH = 500
# Arbitrary constant that names "the journal replay" among PostgreSQL advisory locks.
ADVISORY_LOCK_KEY = 0x1A7E_0001

Handler = Callable[[Session, "Entry"], "str | None"]


class Deferred(Exception):
    """Raised by a handler whose entry must wait, e.g. for the call it belongs to."""


def entry_id(call_sid: str, step: str) -> str:
    """Return the idempotency key of one event of a call: its CallSid and step.

    Keys longer than the column shorten the step's detail to a hash, keeping the CallSid and
    the kind of step readable; odd (non-printable or non-ASCII) keys become a hash entirely.
    """
    key = f"{call_sid}:{step}"
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    if not (key.isascii() and key.isprintable()):
        return "h:" + digest[: MAX_ID_LENGTH - 2]
    if len(key) <= MAX_ID_LENGTH:
        return key
    head = f"{call_sid}:{step.split(':', 1)[0]}:"
    if len(head) <= MAX_ID_LENGTH - 16:
        return head + digest[: MAX_ID_LENGTH - len(head)]
    return "h:" + digest[: MAX_ID_LENGTH - 2]


def _clean(value: object) -> object:
    """Return a JSON-safe, size-limited copy of an untrusted value."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k)[:64]: _clean(v) for k, v in list(value.items())[:50]}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value[:50]]
    return str(value)[:MAX_VALUE_LENGTH]


@dataclass(frozen=True)
class Entry:
    """One journalled event of a call."""

    id: str
    kind: str
    call_sid: str
    at: datetime
    data: dict = field(default_factory=dict)

    def to_line(self) -> bytes:
        """Return the entry as one JSON line."""
        record = {
            "v": FORMAT_VERSION,
            "id": self.id,
            "kind": self.kind,
            "call_sid": self.call_sid,
            "at": self.at.isoformat(),
            "data": self.data,
        }
        return (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> Entry:
        """Parse one JSON line; ValueError when it is not a whole, valid entry."""
        try:
            record = json.loads(line)
            at = datetime.fromisoformat(record["at"])
            entry = cls(
                id=str(record["id"]),
                kind=str(record["kind"]),
                call_sid=str(record["call_sid"]),
                at=at if at.tzinfo else at.replace(tzinfo=UTC),
                data=dict(record.get("data") or {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a journal entry ({type(exc).__name__})") from None
        if not entry.id or len(entry.id) > MAX_ID_LENGTH:
            raise ValueError("journal entry without a usable id")
        return entry


@dataclass(frozen=True)
class Snapshot:
    """What one read of the journal file saw: its entries and the file's identity and size."""

    entries: list[Entry]
    inode: int | None
    size: int
    skipped_lines: int = 0


def _fsync_directory(directory: Path) -> None:
    """Make a new or renamed directory entry durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """The append-only journal file of this host."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"<Journal {self.path}>"

    def record(
        self,
        kind: str,
        *,
        call_sid: str,
        step: str,
        data: Mapping | None = None,
        at: datetime | None = None,
    ) -> Entry:
        """Append the event `step` of call `call_sid` and return the entry written."""
        entry = Entry(
            id=entry_id(call_sid, step),
            kind=kind,
            call_sid=str(call_sid)[:64],
            at=at or utcnow(),
            data=_clean(dict(data or {})),
        )
        self.append(entry)
        return entry

    def append(self, entry: Entry) -> None:
        """Write one entry durably: exclusive lock, whole line, fsync."""
        line = entry.to_line()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if not self._is_current(fd):
                    continue  # archived while we waited for the lock: write to the new file
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    # A torn earlier write: end it so our line stays whole and readable.
                    line = b"\n" + line
                written = 0
                while written < len(line):
                    written += os.write(fd, line[written:])
                os.fsync(fd)
                break
            finally:
                os.close(fd)
        if created:
            _fsync_directory(self.path.parent)

    def _is_current(self, fd: int) -> bool:
        """Return whether `fd` is still the file at our path (not an archived one)."""
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def has_entries(self) -> bool:
        """Return whether anything waits in the journal (cheap: one stat)."""
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def read(self) -> Snapshot:
        """Read every whole entry; corrupt or truncated lines are skipped with a warning."""
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below, after the lock
        except FileNotFoundError:
            return Snapshot(entries=[], inode=None, size=0)
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
            content = handle.read()
            inode = os.fstat(handle.fileno()).st_ino
        entries: list[Entry] = []
        skipped = 0
        for number, line in enumerate(content.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                entries.append(Entry.from_line(line))
            except ValueError as exc:
                skipped += 1
                log.warning("journal %s line %d skipped: %s", self.path, number, exc)
        return Snapshot(entries=entries, inode=inode, size=len(content), skipped_lines=skipped)

    def archive(self, snapshot: Snapshot) -> Path | None:
        """Rename the journal aside if nothing was appended since `snapshot` was read."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            stat = os.fstat(fd)
            if not self._is_current(fd) or (stat.st_ino, stat.st_size) != (
                snapshot.inode,
                snapshot.size,
            ):
                return None
            stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
            target = self.path.with_name(f"{self.path.name}.replayed-{stamp}")
            os.rename(self.path, target)
            _fsync_directory(self.path.parent)
            return target
        finally:
            os.close(fd)

    def archives(self) -> list[Path]:
        """Return the replayed journals kept next to this one, oldest first."""
        return sorted(self.path.parent.glob(f"{self.path.name}.replayed-*"))


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
        with engine.connect() as connection:
            query = text("SELECT pg_try_advisory_lock(:key)")
            got = bool(connection.execute(query, {"key": ADVISORY_LOCK_KEY}).scalar())
            connection.commit()
            try:
                yield got
            finally:
                if got:
                    with contextlib.suppress(SQLAlchemyError):
                        unlock = text("SELECT pg_advisory_unlock(:key)")
                        connection.execute(unlock, {"key": ADVISORY_LOCK_KEY})
                        connection.commit()
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
        session.commit()
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
