"""Models of the telephone side: the call log, PIN failures and replayed journal entries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tickets.db import Base, utcnow


class CallLog(Base):
    """One inbound call: who, which line, when, how it ended and the choices made."""

    __tablename__ = "call_logs"
    __table_args__ = (Index("ix_call_logs_started_at", "started_at"),)

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
