"""Support's switches that callers hear: the working-hours override and outage announcements."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.db import utcnow
from tickets.models import Announcement, HoursOverride

OVERRIDE_MODES = ("auto", "open", "closed")
OVERRIDE_ROW = 1


def get_hours_override(session: Session) -> str:
    """Return the current override: 'auto' (follow the schedule), 'open' or 'closed'."""
    mode = session.scalar(select(HoursOverride.mode).where(HoursOverride.id == OVERRIDE_ROW))
    return mode or "auto"


def set_hours_override(session: Session, *, mode: str, set_by: str | None) -> HoursOverride:
    """Force the lines open or closed, or return them to the schedule with 'auto'."""
    if mode not in OVERRIDE_MODES:
        raise ValueError(f"mode must be one of {', '.join(OVERRIDE_MODES)}")
    row = session.get(HoursOverride, OVERRIDE_ROW)
    if row is None:
        row = HoursOverride(id=OVERRIDE_ROW, mode=mode, set_by=set_by)
        session.add(row)
    else:
        row.mode = mode
        row.set_by = set_by
        row.set_at = utcnow()
    session.commit()
    return row


def active_announcement(session: Session, *, now: datetime | None = None) -> Announcement | None:
    """Return the newest known-outage announcement that is active at `now`, if any."""
    now = now or utcnow()
    return session.scalar(
        select(Announcement)
        .where(Announcement.ended_at.is_(None))
        .where((Announcement.expires_at.is_(None)) | (Announcement.expires_at > now))
        .order_by(Announcement.created_at.desc(), Announcement.id.desc())
        .limit(1)
    )
