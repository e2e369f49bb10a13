"""The rows of the call-back queue: a caller's request to be called back on their ticket."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base
from tickets.models import StaffUser, Ticket

# Where a request stands: in the queue, an engineer's phone ringing or on the call, done.
WAITING = "waiting"
CALLING = "calling"
DONE = "done"
STATUSES = (WAITING, CALLING, DONE)

# How the last attempt ended (`QueuedCallBack.outcome`).
ANSWERED = "answered"
ENGINEER_MISSED = "engineer_missed"
ENGINEER_DECLINED = "engineer_declined"
CUSTOMER_MISSED = "customer_missed"
NOT_PLACED = "not_placed"


class QueuedCallBack(Base):
    """A caller who was not put through and asked to be called back, in order of asking.

    An engineer starts it from the ticket: the service rings the engineer's phone through
    Twilio's Calls API, and once they accept it dials `number` showing the line's number.
    """

    __tablename__ = "queued_call_backs"
    __table_args__ = (
        Index("ix_queued_call_backs_status_requested_at", "status", "requested_at"),
        # The retention purge looks only through rows that still hold the caller's number.
        Index(
            "ix_queued_call_backs_personal_requested_at",
            "requested_at",
            postgresql_where=text("number IS NOT NULL"),
            sqlite_where=text("number IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # The CallSid of the call on which the caller asked (None: an engineer called back unasked).
    asked_on: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The caller ID Twilio gave us on that call (E.164), never digits the caller typed.
    number: Mapped[str | None] = mapped_column(String(64))
    # The language of the call: what the caller hears when the call-back reaches them.
    language: Mapped[str] = mapped_column(String(5), default="nl")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(10), default=WAITING)
    # The engineer of the latest attempt, and the CallSid of their leg (Twilio's Calls API).
    engineer_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    # How the latest attempt ended (ANSWERED, CUSTOMER_MISSED, ...); None while none ended.
    outcome: Mapped[str | None] = mapped_column(String(20))
    finished_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    ticket: Mapped[Ticket] = relationship()
    engineer: Mapped[StaffUser | None] = relationship()

    def __repr__(self) -> str:
        return f"<QueuedCallBack {self.id} ticket={self.ticket_id} {self.status}>"
