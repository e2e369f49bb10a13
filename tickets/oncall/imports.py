"""Import a level's shifts from an iCalendar file into the rota."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tickets.models import OnCallShift, StaffUser
from tickets.oncall.calendar import StaffIndex, shifts_in_calendar
from tickets.rota import check_level

# An import keeps a month of history for the timeline.
IMPORT_HISTORY = timedelta(days=31)


def import_level(
    session: Session,
    data: bytes,
    *,
    level: int,
    zone: ZoneInfo,
    now: datetime,
    horizon_days: int,
) -> int:
    """Replace a level's imported shifts with those of an iCalendar file; return how many.

    The file is read whole before anything changes: a file naming somebody unknown raises
    `CalendarRejected` and leaves the rota as it was.
    """
    check_level(level)
    staff = StaffIndex(session.scalars(select(StaffUser)))
    shifts = shifts_in_calendar(
        data,
        staff=staff,
        zone=zone,
        start=now - IMPORT_HISTORY,
        end=now + timedelta(days=horizon_days),
    )
    session.execute(
        delete(OnCallShift).where(OnCallShift.level == level, OnCallShift.source == "import")
    )
    session.add_all(
        OnCallShift(
            level=level,
            staff_id=shift.staff_id,
            starts_at=shift.starts_at,
            ends_at=shift.ends_at,
            source="import",
            note=shift.note,
        )
        for shift in shifts
    )
    session.flush()
    return len(shifts)
