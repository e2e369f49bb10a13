"""Keep the outage journal: call events written to a local file while the database is away.

Each event is one JSON line with an id made of the CallSid and the step, so a webhook Twilio
retries writes the same id twice and is still applied once (see `ivr.outage.replay`). Lines
are appended under an exclusive `flock` and made durable with `fsync`, so several workers and
instances on one host can share the file. A fully replayed journal is renamed to
`<name>.replayed-<UTC time>` and kept for reference.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.clock import utcnow

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_ID_LENGTH = 64
MAX_VALUE_LENGTH = 500


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


def write_events(journal: Journal, events: Iterable[tuple[str, str, str, dict]]) -> None:
    """Append (kind, call sid, step, data) events; a failing disk is logged, never raised."""
    for kind, sid, step, data in events:
        try:
            journal.record(kind, call_sid=sid, step=step, data=data)
        except OSError:
            log.exception("outage journal %s not writable; event %s of %s lost", journal, kind, sid)
