"""Rows of the helpdesk events: one per event and receiver, and each receiver's state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base
from tickets.models import TICKET_NUMBER_BASE

DELIVERY_STATUSES = ("pending", "sending", "delivered", "failed")
# Not final: the row still has to reach its receiver (and holds back later rows of its subject).
UNFINISHED = ("pending", "sending")


class HelpdeskDelivery(Base):
    """One event to one receiver, written in the transaction of its cause.

    `msg_id` is the event's `webhook-id`: the same on every attempt and for every receiver, so
    a receiver recognises a repeat. `data` is what the event says as of its cause, until the
    first attempt turns it into `body`, the exact bytes sent from then on.
    """

    __tablename__ = "helpdesk_deliveries"
    __table_args__ = (
        UniqueConstraint("receiver", "msg_id"),
        Index("ix_helpdesk_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # Order per receiver and subject: is an earlier row of this ticket still unfinished?
        Index("ix_helpdesk_deliveries_receiver_subject_id", "receiver", "subject", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(40))
    receiver: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(40))
    # What the event is about, "ticket:<id>" or "incident:<id>": the unit of ordering.
    subject: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # After this moment a failed attempt is the last; a redelivery sets it anew.
    retry_until: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    # The receiver's last HTTP status, or None when it did not answer.
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    @property
    def ticket_number(self) -> str | None:
        """Return the ticket number of a ticket's event, else None."""
        kind, _, key = self.subject.partition(":")
        return str(TICKET_NUMBER_BASE + int(key)) if kind == "ticket" and key.isdigit() else None

    def __repr__(self) -> str:
        return f"<HelpdeskDelivery {self.id} {self.type} to {self.receiver} {self.status}>"


class HelpdeskReceiver(Base):
    """What the service learnt about a configured receiver: disabled after it answered 410."""

    __tablename__ = "helpdesk_receivers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        state = "disabled" if self.disabled_at else "enabled"
        return f"<HelpdeskReceiver {self.name} {state}>"
