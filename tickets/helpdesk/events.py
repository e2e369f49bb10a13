"""Name the helpdesk events and write them: one row per receiver, in the cause's transaction.

What an event says is taken when it happens, cheaply: the own columns of the rows already in
the session (the ticket, its call), with no query and no serialising of related rows. The
document sent (`tickets.helpdesk.documents`) is built from that at the first attempt; only the
references in it (contact, organisation, staff) are looked up then.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import Column, inspect
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import Base, UTCDateTime
from core.helpdesk_settings import (
    CALL_ENDED,
    EVENT_TYPES,
    TICKET_CREATED,
    TICKET_UPDATED,
)
from tickets.helpdesk.models import HelpdeskDelivery
from tickets.models import StaffUser, Ticket, TicketCall


@dataclass(frozen=True)
class Receiver:
    """A configured receiver as the ticket side knows it: its name, events and address."""

    name: str
    events: frozenset[str]
    # The URL without user, password or query, for support's eyes.
    address: str = ""


@dataclass(frozen=True)
class HelpdeskPolicy:
    """The helpdesk settings the ticket side needs; the service builds it from its settings."""

    receivers: tuple[Receiver, ...] = ()
    retry_for: timedelta = timedelta(hours=24)
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(receiver.name for receiver in self.receivers))

    def receivers_of(self, type: str) -> list[str]:
        """Return the names of the receivers that take events of this type."""
        return [receiver.name for receiver in self.receivers if type in receiver.events]


def policy() -> HelpdeskPolicy:
    """Return the running service's helpdesk policy (no receivers outside a configured app)."""
    if has_app_context():
        configured = current_app.config.get("HELPDESK")
        if configured is not None:
            return configured
    return HelpdeskPolicy()


def new_msg_id() -> str:
    """Return a fresh `webhook-id`."""
    return "msg_" + secrets.token_hex(16)


def emit(
    session: Session,
    type: str,
    subject: str,
    data: dict,
    *,
    at: datetime | None = None,
    rules: HelpdeskPolicy | None = None,
) -> list[HelpdeskDelivery]:
    """Write an event for every receiver that takes its type; nothing when none does.

    `subject` is what the event is about (`ticket:<id>`, `incident:<id>`): a receiver gets the
    events of one subject in the order they were written. `data` must be JSON-ready and say
    what the subject is at this moment. Not committed: the caller's transaction holds the cause.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown helpdesk event type {type!r}")
    rules = rules or policy()
    names = rules.receivers_of(type)
    if not names:
        return []
    at = at or utcnow()
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    msg_id = new_msg_id()
    rows = [
        HelpdeskDelivery(
            msg_id=msg_id,
            receiver=name,
            type=type,
            subject=subject,
            occurred_at=at,
            data=text,
            next_attempt_at=at,
            retry_until=at + rules.retry_for,
            created_at=at,
            updated_at=at,
        )
        for name in names
    ]
    session.add_all(rows)
    return rows


# ------------------------------------------------------------------ what a row says now


def _value(row: Base, column: Column, written: bool):
    """Return a column's value; a row not yet written has its plain default (set on INSERT)."""
    if written or column.key in row.__dict__:
        return getattr(row, column.key)
    default = column.default
    return default.arg if default is not None and default.is_scalar else None


def state_of(row: Base) -> dict:
    """Return a row's own columns as JSON-ready values (times in ISO 8601); no query."""
    written = inspect(row).persistent
    state = {}
    for column in row.__table__.columns:
        value = _value(row, column, written)
        state[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return state


def restore(model: type[Base], state: dict) -> Base:
    """Return a detached object of `model` with the columns `state_of` took."""
    values = {}
    for column in model.__table__.columns:
        value = state.get(column.key)
        if isinstance(value, str) and isinstance(column.type, UTCDateTime):
            value = datetime.fromisoformat(value)
        values[column.key] = value
    return model(**values)


def ticket_subject(ticket_id: int) -> str:
    """Return the subject of a ticket's events."""
    return f"ticket:{ticket_id}"


def ticket_created(session: Session, *, ticket: Ticket, call: TicketCall | None) -> None:
    """Write `ticket.created` for a ticket an emergency call just opened."""
    if not policy().receivers_of(TICKET_CREATED):
        return
    calls = [state_of(call)] if call is not None else []
    data = {"ticket": state_of(ticket), "calls": calls}
    emit(session, TICKET_CREATED, ticket_subject(ticket.id), data, at=ticket.created_at)


def call_ended(session: Session, *, call: TicketCall, at: datetime) -> None:
    """Write `call.ended` for a ticket's call that was just settled (`call.ticket` loaded)."""
    if not policy().receivers_of(CALL_ENDED):
        return
    data = {"call": state_of(call), "ticket": state_of(call.ticket)}
    emit(session, CALL_ENDED, ticket_subject(call.ticket_id), data, at=at)


@dataclass(frozen=True)
class Change:
    """One change staff made to a ticket, as its history says it."""

    kind: str
    detail: str | None


def ticket_updated(
    session: Session,
    *,
    ticket: Ticket,
    staff: StaffUser | None,
    changes: Sequence[Change],
    at: datetime,
) -> None:
    """Write `ticket.updated` with the ticket as it is now and what changed, by whom."""
    if not changes or not policy().receivers_of(TICKET_UPDATED):
        return
    data = {
        "ticket": state_of(ticket),
        "calls": [state_of(call) for call in ticket.calls],
        "changes": [{"kind": change.kind, "detail": change.detail} for change in changes],
        "by_id": staff.id if staff is not None else None,
        "at": at.isoformat(),
    }
    emit(session, TICKET_UPDATED, ticket_subject(ticket.id), data, at=at)
