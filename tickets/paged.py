"""What was paged to whom: a ticket's messages for its timeline, and the tickets a staff
member was paged for (what an SMS reply of theirs may acknowledge)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.models import OPEN_STATUSES, OutboxMessage, StaffUser, Ticket
from tickets.paging import LISTING_KINDS, PAGE, PAGED_WITHIN


def messages_of(session: Session, ticket_id: int) -> list[OutboxMessage]:
    """Return every message about a ticket, oldest first, for its timeline."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.ticket_id == ticket_id)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
    )


def is_waiting(ticket: Ticket) -> bool:
    """Return whether nobody acknowledged the open ticket yet."""
    return ticket.acknowledged_at is None and ticket.status in OPEN_STATUSES


def paged_tickets(session: Session, staff: StaffUser, *, now: datetime) -> list[Ticket]:
    """Return the tickets this staff member was paged for within `PAGED_WITHIN`, newest first.

    A page names its ticket; an opening summary or a digest of unverified calls lists its
    tickets, and each listed ticket counts as paged to whoever got it.
    """
    addresses = [address for address in (staff.phone, staff.email) if address]
    rows = session.execute(
        select(OutboxMessage.ticket_id, OutboxMessage.detail, OutboxMessage.kind)
        .where(
            OutboxMessage.kind.in_((PAGE, *LISTING_KINDS)),
            (OutboxMessage.staff_id == staff.id) | OutboxMessage.recipient.in_(addresses),
            OutboxMessage.created_at >= now - PAGED_WITHIN,
        )
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    ).all()
    ids: dict[int, None] = {}
    for ticket_id, detail, kind in rows:
        if kind in LISTING_KINDS:
            for number in reversed((detail or "").split()):
                listed = Ticket.id_from_number(number)
                if listed is not None:
                    ids.setdefault(listed)
        elif ticket_id is not None:
            ids.setdefault(ticket_id)
    if not ids:
        return []
    found = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(list(ids))))}
    return [found[ticket_id] for ticket_id in ids if ticket_id in found]
