"""Rows of major incidents: the incident, and its timeline of updates, joins and pages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base
from tickets.models import StaffUser, Ticket

OPEN = "open"
RESOLVED = "resolved"
INCIDENT_STATUSES = (OPEN, RESOLVED)
# The value of `Incident.open_slot` while an incident is open. The column is unique and NULL
# once the incident is resolved, so the database itself allows one open incident at a time.
THE_OPEN_SLOT = 1

# Kinds of `IncidentUpdate`: what support says (update, resolved) and what happened.
OPENED = "opened"
JOINED = "joined"
ACKNOWLEDGED = "acknowledged"
UPDATE = "update"
RESOLUTION = "resolved"
DIGEST = "digest"
UPDATE_KINDS = (OPENED, JOINED, ACKNOWLEDGED, UPDATE, RESOLUTION, DIGEST)
# Who opened an incident that grouped outage reports by itself.
AUTOMATIC = "automatic"


class Incident(Base):
    """A major outage: the urgent tickets of several organisations, paged and told as one."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_opened_at", "opened_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default=OPEN)
    # THE_OPEN_SLOT while open, NULL once resolved; unique: two instances opening at once end
    # with one incident (the loser's insert fails and it joins the winner's).
    open_slot: Mapped[int | None] = mapped_column(unique=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    # AUTOMATIC, a staff member's e-mail, or "cli:<user>".
    opened_by: Mapped[str] = mapped_column(String(320), default=AUTOMATIC)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(320))
    # Written by every change of the incident or of its tickets' membership: the row lock (the
    # write lock on SQLite) makes joins, updates and resolving take turns.
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The digest of organisations that joined after the acknowledgement: when the next is
    # due (None: nothing new), and when the last went out.
    digest_due_at: Mapped[datetime | None]
    last_digest_at: Mapped[datetime | None]

    acknowledged_by: Mapped[StaffUser | None] = relationship()
    tickets: Mapped[list[Ticket]] = relationship(
        primaryjoin="Incident.id == foreign(Ticket.incident_id)",
        order_by="Ticket.id",
        viewonly=True,
    )
    updates: Mapped[list[IncidentUpdate]] = relationship(
        back_populates="incident", order_by="IncidentUpdate.id"
    )

    @property
    def number(self) -> int:
        """Return the number staff and engineers use: "incident 7"."""
        return self.id

    @property
    def is_open(self) -> bool:
        """Return whether the incident is still open."""
        return self.status == OPEN

    def __repr__(self) -> str:
        return f"<Incident {self.id} {self.status} {self.summary[:30]!r}>"


class IncidentUpdate(Base):
    """One entry of an incident's timeline: support's updates, and what happened to it."""

    __tablename__ = "incident_updates"
    __table_args__ = (
        Index("ix_incident_updates_incident_id_kind_at", "incident_id", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # One of UPDATE_KINDS.
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text, default="")
    # A staff member's name and e-mail, "cli:<user>", or AUTOMATIC.
    author: Mapped[str] = mapped_column(String(320), default=AUTOMATIC)
    # The ticket a JOINED entry is about.
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)

    incident: Mapped[Incident] = relationship(back_populates="updates")
    ticket: Mapped[Ticket | None] = relationship()

    def __repr__(self) -> str:
        return f"<IncidentUpdate {self.id} incident={self.incident_id} {self.kind}>"
