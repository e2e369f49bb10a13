"""Claim helpdesk deliveries in order, hold and release receivers, redeliver, and list them.

A receiver gets the events of one subject (a ticket) one after the other: a row is claimed
only when no earlier row of the same receiver and subject is still unfinished. A later event
of a ticket therefore waits while an earlier one is being retried, and other tickets' events
go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from core.clock import utcnow
from tickets.audit import note_change
from tickets.helpdesk.models import UNFINISHED, HelpdeskDelivery, HelpdeskReceiver

HELPDESK_REDELIVER = "helpdesk_redeliver"
HELPDESK_DISABLED = "helpdesk_disabled"
HELPDESK_ENABLED = "helpdesk_enabled"


class DeliveryError(ValueError):
    """A redelivery or a receiver change was refused; nothing changed."""


def disabled_receivers(session: Session) -> dict[str, HelpdeskReceiver]:
    """Return the receivers switched off (after a 410), by name."""
    rows = session.scalars(
        select(HelpdeskReceiver).where(HelpdeskReceiver.disabled_at.is_not(None))
    )
    return {row.name: row for row in rows}


def due(session: Session, now: datetime, *, receivers: Sequence[str], limit: int) -> list:
    """Return due rows of these receivers that are next in line for their subject, locked.

    Due: pending and its time has come, or claimed by a process whose lease ran out. Next in
    line: no earlier row of the same receiver and subject is unfinished.
    """
    if not receivers:
        return []
    earlier = aliased(HelpdeskDelivery)
    waits_for_earlier = exists().where(
        earlier.receiver == HelpdeskDelivery.receiver,
        earlier.subject == HelpdeskDelivery.subject,
        earlier.id < HelpdeskDelivery.id,
        earlier.status.in_(UNFINISHED),
    )
    return list(
        session.scalars(
            select(HelpdeskDelivery)
            .where(
                HelpdeskDelivery.receiver.in_(list(receivers)),
                or_(
                    and_(
                        HelpdeskDelivery.status == "pending",
                        HelpdeskDelivery.next_attempt_at <= now,
                    ),
                    and_(
                        HelpdeskDelivery.status == "sending",
                        HelpdeskDelivery.lease_until < now,
                    ),
                ),
                ~waits_for_earlier,
            )
            .order_by(HelpdeskDelivery.next_attempt_at, HelpdeskDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=HelpdeskDelivery)
        )
    )


def disable_receiver(session: Session, *, name: str, reason: str, now: datetime) -> bool:
    """Switch a receiver off until support enables it again; return whether it was on.

    Its events wait (none is lost): enabling it again sends them, in order. Not committed.
    """
    row = session.scalar(select(HelpdeskReceiver).where(HelpdeskReceiver.name == name))
    if row is None:
        row = HelpdeskReceiver(name=name)
        session.add(row)
    elif row.disabled_at is not None:
        return False
    row.disabled_at, row.disabled_reason, row.updated_at = now, reason[:500], now
    note_change(
        session, actor="helpdesk sender", action=HELPDESK_DISABLED, detail=f"{name}: {reason}"
    )
    return True


def enable_receiver(session: Session, *, name: str, actor: str) -> None:
    """Switch a disabled receiver on again: its waiting events go out; committed."""
    row = session.scalar(select(HelpdeskReceiver).where(HelpdeskReceiver.name == name))
    if row is None or row.disabled_at is None:
        raise DeliveryError(f"The receiver {name[:40]} is not disabled.")
    row.disabled_at, row.disabled_reason = None, None
    session.execute(
        update(HelpdeskDelivery)
        .where(HelpdeskDelivery.receiver == name, HelpdeskDelivery.status == "pending")
        .values(next_attempt_at=utcnow(), version=HelpdeskDelivery.version + 1)
        .execution_options(synchronize_session=False)
    )
    note_change(session, actor=actor, action=HELPDESK_ENABLED, detail=name)
    session.commit()


def redeliver(
    session: Session, *, delivery_id: int, actor: str, retry_for: timedelta
) -> HelpdeskDelivery:
    """Send a delivery again now, under the same `webhook-id`, and retry it as a new one; committed.

    A delivery still on its way (being sent right now) is refused.
    """
    row = session.get(HelpdeskDelivery, delivery_id)
    if row is None:
        raise DeliveryError("There is no such delivery.")
    if row.status == "sending":
        raise DeliveryError("This event is being sent right now; look again in a moment.")
    now = utcnow()
    row.status, row.next_attempt_at, row.retry_until = "pending", now, now + retry_for
    row.lease_until = None
    ticket = f" of ticket {row.ticket_number}" if row.ticket_number else ""
    detail = f"{row.type}{ticket} ({row.msg_id}) to {row.receiver}"
    note_change(session, actor=actor, action=HELPDESK_REDELIVER, detail=detail)
    session.commit()
    return row


def recent(session: Session, *, limit: int = 50) -> list[HelpdeskDelivery]:
    """Return the latest deliveries, newest first, for the settings page."""
    return list(
        session.scalars(
            select(HelpdeskDelivery)
            .order_by(HelpdeskDelivery.created_at.desc(), HelpdeskDelivery.id.desc())
            .limit(limit)
        )
    )


def waiting(session: Session) -> dict[str, int]:
    """Return how many deliveries each receiver still has to take."""
    rows = session.execute(
        select(HelpdeskDelivery.receiver, func.count(HelpdeskDelivery.id))
        .where(HelpdeskDelivery.status.in_(UNFINISHED))
        .group_by(HelpdeskDelivery.receiver)
    )
    return {name: count for name, count in rows}
