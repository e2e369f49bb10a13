"""Models of the ticket side: directory, staff, tickets, their calls and history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base

# Staff accounts live beside, in their own module; re-exported here with every other table.
from tickets.staff_models import ApiToken, LoginFailure, StaffUser  # noqa: F401

ROLES = ("user", "key_user", "super_user")
ENTITLED_ROLES = ("key_user", "super_user")
CATEGORIES = ("bug", "question", "other")
PRIORITIES = ("urgent", "high", "normal", "low")
STATUSES = (
    "new",
    "in_progress",
    "waiting_for_customer",
    "with_product_team",
    "planned",
    "resolved",
    "closed",
)
OPEN_STATUSES = ("new", "in_progress", "waiting_for_customer", "with_product_team", "planned")
SOURCES = ("phone", "web", "email")
REASONS = ("outage", "urgent_bug")
STAFF_ROLES = ("agent", "admin")

# First ticket number; a ticket's number is this plus its id, so it needs no extra write.
TICKET_NUMBER_BASE = 100000
# The largest value of an INTEGER key: a bigger number names no row.
MAX_ID = 2**31 - 1
# Stands in for a phone number that was purged or erased, in a column that cannot be empty.
ERASED = "erased"
# Ticket calls an engineer accepted whose end is not in: that engineer is on the phone.
BUSY_CALLS = "answered_by_number IS NOT NULL AND ended_at IS NULL"


def _where(condition: str) -> dict:
    """Return the keywords of a partial index over the rows that meet `condition`."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


def _still_personal(condition: str) -> dict:
    """Return a partial index over rows still holding personal data: what the purge reads."""
    return _where(condition)


class Organization(Base):
    """A client organisation."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Written first by every emergency call of the organisation that opens or joins an urgent
    # ticket: the row lock it takes lets one call at a time decide "join or open".
    last_emergency_call_at: Mapped[datetime | None]

    contacts: Mapped[list[Contact]] = relationship(back_populates="organization")

    def __repr__(self) -> str:
        return f"<Organization {self.id} {self.name!r}>"


class Contact(Base):
    """A person at a client organisation, with their role and optional hashed PIN."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    # Keyed hash (HMAC with the server secret) so a PIN is found by index, never stored plain.
    pin_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="contacts")
    phones: Mapped[list[ContactPhone]] = relationship(
        back_populates="contact", cascade="all, delete-orphan"
    )

    @property
    def is_entitled(self) -> bool:
        """Return whether this contact may use the emergency line."""
        return self.role in ENTITLED_ROLES

    def __repr__(self) -> str:
        return f"<Contact {self.id} {self.email!r} {self.role}>"


class ContactPhone(Base):
    """One phone number (E.164) of a contact."""

    __tablename__ = "contact_phones"
    __table_args__ = (UniqueConstraint("contact_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(20), index=True)

    contact: Mapped[Contact] = relationship(back_populates="phones")

    def __repr__(self) -> str:
        return f"<ContactPhone {self.number} contact={self.contact_id}>"


class Ticket(Base):
    """A support ticket; emergency calls open urgent ones."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_created_at_id", "created_at", "id"),
        Index("ix_tickets_status_priority_created", "status", "priority", "created_at"),
        Index("ix_tickets_org_status_created", "organization_id", "status", "created_at"),
        # Equality on one API filter, then newest first, read straight off the index.
        Index("ix_tickets_priority_created_id", "priority", "created_at", "id"),
        Index("ix_tickets_source_created_id", "source", "created_at", "id"),
        Index("ix_tickets_reason_created_id", "reason", "created_at", "id"),
        Index("ix_tickets_caller", "caller"),
        Index(
            "ix_tickets_personal_created_at",
            "created_at",
            **_still_personal("caller IS NOT NULL OR description IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    category: Mapped[str] = mapped_column(String(10), default="bug")
    status: Mapped[str] = mapped_column(String(30), default="new")
    source: Mapped[str] = mapped_column(String(10), default="phone")
    reason: Mapped[str | None] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)
    caller: Mapped[str | None] = mapped_column(String(64))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    in_hours: Mapped[bool] = mapped_column(default=True)
    verified: Mapped[bool] = mapped_column(default=True)
    from_journal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    waiting_question: Mapped[str | None] = mapped_column(Text)
    release_week: Mapped[str | None] = mapped_column(String(10))
    rate_approved_at: Mapped[datetime | None]
    rate_approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    rating: Mapped[int | None]
    rating_comment: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    # The major incident the ticket belongs to (tickets.incidents); it keeps its own lifecycle.
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    contact: Mapped[Contact | None] = relationship()
    organization: Mapped[Organization | None] = relationship()
    acknowledged_by: Mapped[StaffUser | None] = relationship(foreign_keys=[acknowledged_by_id])
    assigned_to: Mapped[StaffUser | None] = relationship(foreign_keys=[assigned_to_id])
    calls: Mapped[list[TicketCall]] = relationship(
        back_populates="ticket", order_by="TicketCall.started_at"
    )
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id"
    )
    time_entries: Mapped[list[TimeEntry]] = relationship(
        back_populates="ticket", order_by="TimeEntry.id"
    )

    @property
    def number(self) -> str:
        """Return the ticket number callers and staff use."""
        return str(TICKET_NUMBER_BASE + self.id)

    @staticmethod
    def id_from_number(number: str | int) -> int | None:
        """Return the id a ticket number stands for, or None if it cannot be one.

        The one rule for reading a ticket number, from a URL, a search box or a phone's keys:
        up to ten ASCII digits, spaces around them ignored.
        """
        text = str(number).strip()
        if not text.isascii() or not text.isdigit() or len(text) > 10:
            return None
        ticket_id = int(text) - TICKET_NUMBER_BASE
        return ticket_id if 0 < ticket_id <= MAX_ID else None

    def __repr__(self) -> str:
        return f"<Ticket {self.id} {self.priority} {self.status}>"


class TicketCall(Base):
    """A phone call recorded on a ticket."""

    __tablename__ = "ticket_calls"
    # The statistics count a period's calls of one line; the purge finds what is still personal.
    __table_args__ = (
        Index("ix_ticket_calls_line_started_at", "line", "started_at"),
        # Engineers on one of the line's calls now (tickets.busy): accepted, its end not in yet.
        Index("ix_ticket_calls_busy", "answered_by_number", "answered_at", **_where(BUSY_CALLS)),
        Index(
            "ix_ticket_calls_personal_started_at",
            "started_at",
            **_still_personal(
                "caller IS NOT NULL OR recording_url IS NOT NULL OR recording_sid IS NOT NULL"
                " OR transcription IS NOT NULL"
            ),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    line: Mapped[str] = mapped_column(String(20))
    caller: Mapped[str | None] = mapped_column(String(64))
    # Who is on this call and why: a call that joins an open ticket may be someone else.
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    # "caller_id" or "pin" when the caller was recognised on this call; None when not verified.
    recognised_by: Mapped[str | None] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(20))
    # One of urgent.OUTCOME_RANK: in_progress until the call is settled.
    outcome: Mapped[str] = mapped_column(String(30), default="in_progress")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    duration: Mapped[int | None]
    ring_seconds: Mapped[int | None]
    answered_by: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[datetime | None]
    # The E.164 phone of the engineer who accepted: busy on this call until its end is in.
    answered_by_number: Mapped[str | None] = mapped_column(String(20))
    recording_url: Mapped[str | None] = mapped_column(String(500))
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    recording_duration: Mapped[int | None]
    transcription: Mapped[str | None] = mapped_column(Text)
    # The voicemail's transcript: None (not asked for), transcribing, done or failed.
    transcript_state: Mapped[str | None] = mapped_column(String(20))
    transcript_confidence: Mapped[float | None]
    # The last of Twilio's transcription callbacks (SequenceId) added: a retry adds nothing.
    transcript_sequence: Mapped[int | None]

    ticket: Mapped[Ticket] = relationship(back_populates="calls")
    contact: Mapped[Contact | None] = relationship()

    def __repr__(self) -> str:
        return f"<TicketCall {self.sid} ticket={self.ticket_id} {self.outcome}>"


class TicketEvent(Base):
    """One entry of a ticket's timeline and history: call steps, changes, notes."""

    __tablename__ = "ticket_events"
    # A call's events are looked up by its sid when it is answered and when it ends.
    __table_args__ = (
        Index("ix_ticket_events_call_sid_kind", "call_sid", "kind"),
        # Events whose detail is a recording's URL or what the caller said.
        Index(
            "ix_ticket_events_personal_at",
            "at",
            **_still_personal(
                "detail IS NOT NULL AND kind IN ('voicemail', 'call_recorded', 'description')"
            ),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    call_sid: Mapped[str | None] = mapped_column(String(64))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))

    ticket: Mapped[Ticket] = relationship(back_populates="events")
    staff: Mapped[StaffUser | None] = relationship()

    def __repr__(self) -> str:
        return f"<TicketEvent {self.id} ticket={self.ticket_id} {self.kind}>"


class TimeEntry(Base):
    """Minutes of work a staff member logged on a ticket."""

    __tablename__ = "time_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    minutes: Mapped[int]
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    billable: Mapped[bool] = mapped_column(default=False)

    ticket: Mapped[Ticket] = relationship(back_populates="time_entries")
    staff: Mapped[StaffUser] = relationship()

    def __repr__(self) -> str:
        return f"<TimeEntry {self.id} ticket={self.ticket_id} {self.minutes}min>"


class CallbackRequest(Base):
    """A voicemail left on the office line, for support to call back."""

    __tablename__ = "callback_requests"
    __table_args__ = (
        Index(
            "ix_callback_requests_personal_created_at",
            "created_at",
            **_still_personal(
                "caller IS NOT NULL OR recording_url IS NOT NULL OR recording_sid IS NOT NULL"
            ),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    caller: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    recording_url: Mapped[str | None] = mapped_column(String(500))
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    recording_duration: Mapped[int | None]
    in_hours: Mapped[bool] = mapped_column(default=True)
    called_back_at: Mapped[datetime | None]
    called_back_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))

    called_back_by: Mapped[StaffUser | None] = relationship()

    def __repr__(self) -> str:
        return f"<CallbackRequest {self.id} {self.department} {self.caller}>"


class HoursOverride(Base):
    """Support's manual override of the working-hours schedule (one row, id 1)."""

    __tablename__ = "hours_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[str] = mapped_column(String(10), default="auto")
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
    set_by: Mapped[str | None] = mapped_column(String(320))

    def __repr__(self) -> str:
        return f"<HoursOverride {self.mode}>"


class Announcement(Base):
    """A known-outage message emergency callers hear before triage while it is active."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    text_nl: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))

    def __repr__(self) -> str:
        return f"<Announcement {self.id} until {self.expires_at}>"


ONCALL_LEVELS = (1, 2, 3)
SHIFT_SOURCES = ("import", "override")


class OnCallShift(Base):
    """A stretch of time in which an engineer is on call at one escalation level."""

    __tablename__ = "oncall_shifts"
    __table_args__ = (
        Index("ix_oncall_shifts_span", "starts_at", "ends_at"),
        CheckConstraint("ends_at > starts_at", name="positive_span"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[int]
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # "import" (replaced by the next import of its level) or "override" (added on the page).
    source: Mapped[str] = mapped_column(String(10))
    # The calendar event's SUMMARY, or who added the override.
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    staff: Mapped[StaffUser] = relationship()

    def __repr__(self) -> str:
        return f"<OnCallShift L{self.level} staff={self.staff_id} {self.source} {self.starts_at}>"


class AuditEvent(Base):
    """A change to a line-wide switch, the rota or a staff account: who made it, when, what."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # The staff member's e-mail, or "cli:<user>" for a command.
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")

    def __repr__(self) -> str:
        return f"<AuditEvent {self.id} {self.action} by {self.actor!r}>"


PAGE_STATES = (
    "active",
    "waiting",
    "acknowledged",
    "exhausted",
    "summarised",
    "cancelled",
    "in_incident",
)
MESSAGE_CHANNELS = ("sms", "email", "chat", "call")
MESSAGE_STATUSES = ("pending", "sending", "sent", "delivered", "failed", "cancelled")


class Page(Base):
    """The paging of an urgent ticket or an incident: the rota level paged last, the next step.

    The timer is this row's `next_step_at`, not a thread: whichever server process looks first
    after that moment takes the next step, so a restart loses no page.
    """

    __tablename__ = "pages"
    __table_args__ = (Index("ix_pages_state_next_step_at", "state", "next_step_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # One of the two: a ticket's paging, or a major incident's (which stands for its tickets).
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), unique=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), unique=True)
    # active: paging the rota; waiting: came in while closed, summarised at opening time.
    state: Mapped[str] = mapped_column(String(20))
    # Position in the rota of the last step taken (0 before the first), and the round.
    level: Mapped[int] = mapped_column(default=0)
    round: Mapped[int] = mapped_column(default=1)
    next_step_at: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    ticket: Mapped[Ticket | None] = relationship()

    def __repr__(self) -> str:
        about = f"ticket={self.ticket_id}" if self.ticket_id else f"incident={self.incident_id}"
        return f"<Page {about} {self.state} L{self.level} R{self.round}>"


class OutboxMessage(Base):
    """A message to send (SMS, e-mail, chat), written in the transaction that causes it.

    The sender claims a due row, sends it, and records the result; `idempotency_key` names the
    message to the outside world, so a retry after a crash can be recognised.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_messages_ticket_id_kind", "ticket_id", "kind"),
        Index("ix_outbox_messages_recipient_kind", "recipient", "kind"),
        # Whether paging can send: each channel's latest attempts (tickets.paging_state).
        Index("ix_outbox_messages_channel_updated_at", "channel", "updated_at"),
        # Texts to callers whose number is still kept.
        Index("ix_outbox_messages_incident_id_kind", "incident_id", "kind"),
        # Texts to callers whose number is still kept (tickets.caller_texts.CALLER_KINDS).
        Index(
            "ix_outbox_messages_caller_created_at",
            "created_at",
            **_still_personal(
                "kind IN ('caller_ticket', 'caller_ack', 'caller_resolved', 'caller_incident',"
                " 'caller_incident_end') AND recipient <> 'erased'"
            ),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # A message about a major incident: its page, notice or digest, or an update to a caller.
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    # page, ack_notice, summary, digest (to engineers); caller_ticket, caller_ack, ... (callers).
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    # E.164 number (an SMS, or a call: a call-back rings the engineer), e-mail address, or "chat".
    recipient: Mapped[str] = mapped_column(String(320))
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(5), default="nl")
    # What the text needs beyond the ticket: who acknowledged, which tickets a summary lists.
    detail: Mapped[str | None] = mapped_column(Text)
    level: Mapped[int | None]
    round: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    ticket: Mapped[Ticket | None] = relationship()
    staff: Mapped[StaffUser | None] = relationship()

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.kind} {self.channel} {self.status}>"


class PinGuard(Base):
    """The emergency line's pause of PIN checks after too many wrong PINs (one row, id 1)."""

    __tablename__ = "pin_guards"

    id: Mapped[int] = mapped_column(primary_key=True)
    paused_at: Mapped[datetime | None]
    # While now is before this moment, no PIN is checked: callers go on unverified.
    paused_until: Mapped[datetime | None]
    # What tripped the last pause: wrong PINs in `window_minutes` from `numbers` (withheld: one).
    failures: Mapped[int] = mapped_column(default=0)
    numbers: Mapped[int] = mapped_column(default=0)
    window_minutes: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<PinGuard paused {self.paused_at} until {self.paused_until}>"
