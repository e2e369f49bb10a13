"""The audit trail of line-wide switches, the rota and staff accounts: who changed what, when."""

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


def recent_changes(
    session: Session, *, limit: int = 30, action_prefix: str = "", mentioning: str = ""
) -> list[AuditEvent]:
    """Return the latest changes, newest first.

    With `action_prefix`, only actions that start with it (`staff_`); with `mentioning`, only
    changes whose detail contains that text (an account's `<e-mail>`).
    """
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    if action_prefix:
        query = query.where(AuditEvent.action.startswith(action_prefix, autoescape=True))
    if mentioning:
        query = query.where(AuditEvent.detail.contains(mentioning, autoescape=True))
    return list(session.scalars(query))
