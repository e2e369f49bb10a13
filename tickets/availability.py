"""Support's switches that callers hear: the working-hours override and outage announcements."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from core.clock import utcnow
from tickets.audit import note_change
from tickets.models import Announcement, HoursOverride

OVERRIDE_MODES = ("auto", "open", "closed")
OVERRIDE_ROW = 1


# Built once: every call in hours asks for it.
_OVERRIDE_MODE = select(HoursOverride.mode).where(HoursOverride.id == OVERRIDE_ROW)


def get_hours_override(session: Session) -> str:
    """Return the current override: 'auto' (follow the schedule), 'open' or 'closed'."""
    mode = session.scalar(_OVERRIDE_MODE)
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
    note_change(session, actor=set_by, action="hours_override", detail=mode)
    session.flush()
    return row


# Built once: every emergency call in hours asks for it.
_ACTIVE_ANNOUNCEMENT = (
    select(Announcement)
    .where(Announcement.ended_at.is_(None))
    .where((Announcement.expires_at.is_(None)) | (Announcement.expires_at > bindparam("now")))
    .order_by(Announcement.created_at.desc(), Announcement.id.desc())
    .limit(1)
)


def active_announcement(session: Session, *, now: datetime | None = None) -> Announcement | None:
    """Return the newest known-outage announcement that is active at `now`, if any."""
    return session.scalar(_ACTIVE_ANNOUNCEMENT, {"now": now or utcnow()})


ANNOUNCEMENT_MAX_LENGTH = 600


class AnnouncementError(ValueError):
    """An announcement cannot be posted or ended as asked."""


def create_announcement(
    session: Session,
    *,
    text_nl: str,
    text_en: str | None = None,
    expires_at: datetime | None = None,
    created_by_id: int | None = None,
    actor: str | None = None,
) -> Announcement:
    """Post a known-outage announcement that emergency callers hear until it ends or expires."""
    dutch = (text_nl or "").strip()
    english = (text_en or "").strip() or None
    if not dutch:
        raise AnnouncementError("the Dutch text is required")
    if len(dutch) > ANNOUNCEMENT_MAX_LENGTH or len(english or "") > ANNOUNCEMENT_MAX_LENGTH:
        raise AnnouncementError(f"keep the text under {ANNOUNCEMENT_MAX_LENGTH} characters")
    now = utcnow()
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now):
        raise AnnouncementError("the expiry must be a moment in the future")
    row = Announcement(
        text_nl=dutch,
        text_en=english,
        created_at=now,
        expires_at=expires_at,
        created_by_id=created_by_id,
    )
    session.add(row)
    note_change(session, actor=actor, action="announcement_posted", detail=dutch)
    session.flush()
    return row


def end_announcement(
    session: Session, *, announcement_id: int, actor: str | None = None
) -> Announcement:
    """End an announcement now; callers no longer hear it."""
    row = session.get(Announcement, announcement_id)
    if row is None:
        raise AnnouncementError("there is no such announcement")
    if row.ended_at is None:
        row.ended_at = utcnow()
        note_change(session, actor=actor, action="announcement_ended", detail=row.text_nl)
        session.flush()
    return row


def recent_announcements(session: Session, *, limit: int = 20) -> list[Announcement]:
    """Return the newest announcements, active or not."""
    return list(
        session.scalars(
            select(Announcement)
            .order_by(Announcement.created_at.desc(), Announcement.id.desc())
            .limit(limit)
        )
    )
