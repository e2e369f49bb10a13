"""The audit trail: changes to line-wide switches, the rota and staff accounts, and who touched
personal data.

Every row says who (a staff member's e-mail, "cli:<user>", or the service itself), when and
what. Besides the switches it holds the reads and upkeep of personal data: each playing of a
recording, each export and erasure of a person's data, each retention purge.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utcnow
from tickets.models import AuditEvent

RECORDING_PLAYED = "recording_played"
PRIVACY_EXPORT = "privacy_export"
PRIVACY_ERASE = "privacy_erase"
RETENTION_PURGE = "retention_purge"
# Kept on the trail, but not listed with the switches' changes (they would crowd them out).
PERSONAL_DATA_ACTIONS = (RECORDING_PLAYED, PRIVACY_EXPORT, PRIVACY_ERASE, RETENTION_PURGE)
# A recording played again by the same person within this time is the same listen: a browser
# asks for an audio file in several range requests, and people skip back and forth.
SAME_LISTEN = timedelta(minutes=10)


def note_change(session: Session, *, actor: str | None, action: str, detail: str = "") -> None:
    """Add a change to the trail; it is written with the change itself, in the same commit."""
    session.add(
        AuditEvent(at=utcnow(), actor=(actor or "unknown")[:320], action=action, detail=detail)
    )


def recent_changes(
    session: Session, *, limit: int = 30, action_prefix: str = "", mentioning: str = ""
) -> list[AuditEvent]:
    """Return the latest changes (not the personal-data trail), newest first.

    With `action_prefix`, only actions that start with it (`staff_`); with `mentioning`, only
    changes whose detail contains that text (an account's `<e-mail>`).
    """
    query = (
        select(AuditEvent)
        .where(AuditEvent.action.not_in(PERSONAL_DATA_ACTIONS))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    if action_prefix:
        query = query.where(AuditEvent.action.startswith(action_prefix, autoescape=True))
    if mentioning:
        query = query.where(AuditEvent.detail.contains(mentioning, autoescape=True))
    return list(session.scalars(query))


def note_recording_played(
    session: Session, *, actor: str, recording: str, now: datetime | None = None
) -> bool:
    """Put a staff member's playing of a recording on the trail; once per listen.

    `recording` names it (which call or voicemail). Returns whether a row was written: not
    when the same person played the same recording within `SAME_LISTEN`.
    """
    now = now or utcnow()
    earlier = session.scalar(
        select(AuditEvent.id)
        .where(
            AuditEvent.at > now - SAME_LISTEN,
            AuditEvent.action == RECORDING_PLAYED,
            AuditEvent.actor == actor[:320],
            AuditEvent.detail == recording,
        )
        .limit(1)
    )
    if earlier is not None:
        return False
    session.add(AuditEvent(at=now, actor=actor[:320], action=RECORDING_PLAYED, detail=recording))
    session.flush()
    return True


def personal_data_trail(session: Session, *, limit: int = 100) -> list[AuditEvent]:
    """Return the latest reads and upkeep of personal data, newest first."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.in_(PERSONAL_DATA_ACTIONS))
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )
