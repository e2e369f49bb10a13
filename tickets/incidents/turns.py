"""Let the transactions that change an incident take turns, across instances.

Joining a ticket, posting an update, acknowledging and resolving each begin by writing the
incident's row (`lock_open`): PostgreSQL's row lock, SQLite's one write lock. An update then
sees every ticket that joined before it, and a ticket joining after it hears the update.
Deciding whether to open an incident takes its own turn (`take_turn`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from tickets.incidents.models import OPEN, THE_OPEN_SLOT, Incident

# Any fixed number: PostgreSQL lets one transaction at a time decide whether to open one.
GROUPING_LOCK = 720_184_921


def lock_open(session: Session, incident: Incident, now: datetime) -> bool:
    """Take the incident's row lock if it is still open, and read it afresh; say whether.

    One statement while it is open: the update returns the row, which refreshes `incident`.
    """
    fresh = session.scalars(
        update(Incident)
        .where(Incident.id == incident.id, Incident.status == OPEN)
        .values(changed_at=now)
        .returning(Incident)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()
    if fresh is None:
        session.refresh(incident)
        return False
    return True


def take_turn(session: Session) -> None:
    """Wait for any other transaction deciding whether to open an incident.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: its one write lock, taken by a
    write that changes nothing; it also begins the transaction, so a savepoint after it is
    nested in it (a savepoint outside one would commit on release).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": GROUPING_LOCK})
    else:
        session.execute(
            update(Incident)
            .where(Incident.open_slot == THE_OPEN_SLOT)
            .values(changed_at=Incident.changed_at)
            .execution_options(synchronize_session=False)
        )
