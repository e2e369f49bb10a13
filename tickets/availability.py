"""Support's switches that callers hear: the working-hours override and outage announcements."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.models import HoursOverride

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
        from tickets.db import utcnow

        row.mode = mode
        row.set_by = set_by
        row.set_at = utcnow()
    session.commit()
    return row
