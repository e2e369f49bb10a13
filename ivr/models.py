"""Models of the telephone side: the call log, PIN failures, replayed journal entries, upkeep."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base


class CallLog(Base):
    """One inbound call: who, which line, when, how it ended and the choices made."""

    __tablename__ = "call_logs"
    __table_args__ = (
        Index("ix_call_logs_started_at", "started_at"),
        # Only calls that still hold a caller's number: what the retention purge looks through.
        Index(
            "ix_call_logs_numbered_started_at",
            "started_at",
            postgresql_where=text("from_number IS NOT NULL OR caller_id IS NOT NULL"),
            sqlite_where=text("from_number IS NOT NULL OR caller_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    line: Mapped[str] = mapped_column(String(20))
    from_number: Mapped[str | None] = mapped_column(String(64))
    caller_id: Mapped[str | None] = mapped_column(String(20))
    to_number: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(5), default="nl")
    status: Mapped[str] = mapped_column(String(20), default="ringing")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    duration: Mapped[int | None]
    last_sequence: Mapped[int | None]
    # Space-separated trail of steps and keys, e.g. "menu:1 dial:finance:no-answer voicemail".
    choices: Mapped[str] = mapped_column(Text, default="")
    from_journal: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<CallLog {self.sid} {self.line} {self.status}>"


class PinFailure(Base):
    """A wrong PIN entered on the emergency line, for throttling and for support to review."""

    __tablename__ = "pin_failures"
    __table_args__ = (
        Index("ix_pin_failures_caller_at", "caller_key", "at"),
        # The line-wide limit counts every number's wrong PINs by time alone.
        Index("ix_pin_failures_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # E.164 caller ID, or "anonymous" for withheld numbers.
    caller_key: Mapped[str] = mapped_column(String(64))
    call_sid: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<PinFailure {self.caller_key} {self.at:%Y-%m-%d %H:%M}>"


class JournalReplay(Base):
    """An outage-journal entry already replayed into the database (keeps replay idempotent)."""

    __tablename__ = "journal_replays"

    entry_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    replayed_at: Mapped[datetime] = mapped_column(default=utcnow)
    summary: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<JournalReplay {self.entry_id}>"


class MaintenanceRun(Base):
    """A once-a-day job (the privacy purge) taken by one server process for one day.

    The unique (job, day) pair decides who runs it: every process that finds the job due tries
    to add the row, and only the one whose insert commits goes ahead.
    """

    __tablename__ = "maintenance_runs"
    __table_args__ = (UniqueConstraint("job", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    # The local calendar day (in `timezone`) the run is for.
    day: Mapped[date]
    # host:pid of the process that took it.
    runner: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    summary: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<MaintenanceRun {self.job} {self.day} by {self.runner}>"


class RecordingDeletion(Base):
    """A recording to delete at Twilio: written with the change that forgets it here.

    A deletion Twilio could not do (a server error, unreachable) stays pending and is tried
    again by the next purge, so the obligation outlives any failure.
    """

    __tablename__ = "recording_deletions"
    __table_args__ = (
        Index(
            "ix_recording_deletions_pending",
            "requested_at",
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_sid: Mapped[str] = mapped_column(String(64), unique=True)
    # retention or erase
    reason: Mapped[str] = mapped_column(String(20))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # When Twilio deleted it, or said it had no such recording.
    deleted_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        state = "deleted" if self.deleted_at else "pending"
        return f"<RecordingDeletion {self.recording_sid} {state}>"
