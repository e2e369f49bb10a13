"""The audit trail of line-wide switches and the rota: every change, who made it and when."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.db import utcnow
from tickets.models import AuditEvent


def note_change(session: Session, *, actor: str | None, action: str, detail: str = "") -> None:
    """Add a change to the trail; it is written with the change itself, in the same commit."""
    session.add(
        AuditEvent(at=utcnow(), actor=(actor or "unknown")[:320], action=action, detail=detail)
    )


def recent_changes(session: Session, *, limit: int = 30) -> list[AuditEvent]:
    """Return the latest changes, newest first."""
    return list(
        session.scalars(
            select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
        )
    )
