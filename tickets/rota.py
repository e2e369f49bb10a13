"""Answer who is on call at a moment, and change the rota's overrides.

A level's engineers at a moment are the people of its override shifts when any override covers
that moment, else the people of its imported shifts: an override ("Carla covers level 1 from
... to ...") replaces the calendar for its span, it does not add to it. Only active accounts
with a phone number can be rung, so only they are on call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, contains_eager

from tickets.audit import note_change
from tickets.models import ONCALL_LEVELS, OnCallShift, StaffUser


class RotaError(ValueError):
    """A change to the rota cannot be made as asked."""


@dataclass(frozen=True)
class Engineer:
    """An engineer the emergency line can ring."""

    staff_id: int
    name: str
    email: str
    phone: str


@dataclass(frozen=True)
class OnCallLevel:
    """The engineers of one escalation level at one moment."""

    level: int
    engineers: tuple[Engineer, ...]


# Built once: every emergency call asks it.
_SHIFTS_AT = (
    select(OnCallShift)
    .join(OnCallShift.staff)
    .options(contains_eager(OnCallShift.staff))
    .where(
        OnCallShift.starts_at <= bindparam("at"),
        OnCallShift.ends_at > bindparam("at"),
        StaffUser.active.is_(True),
        StaffUser.phone.is_not(None),
    )
    .order_by(OnCallShift.level, StaffUser.name, StaffUser.id)
)


def engineer_of(staff: StaffUser) -> Engineer:
    """Return the ringable view of a staff account."""
    return Engineer(staff_id=staff.id, name=staff.name, email=staff.email, phone=staff.phone or "")


def engineers_by_id(session: Session, ids: Iterable[int]) -> list[Engineer]:
    """Return the ringable engineers among these staff ids, in the order given."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = {
        staff.id: engineer_of(staff)
        for staff in session.scalars(
            select(StaffUser).where(
                StaffUser.id.in_(wanted), StaffUser.active.is_(True), StaffUser.phone.is_not(None)
            )
        )
    }
    return [found[staff_id] for staff_id in wanted if staff_id in found]


def engineer_with_phone(session: Session, number: str | None) -> Engineer | None:
    """Return the ringable engineer with this E.164 phone number, if there is one."""
    if not number:
        return None
    staff = session.scalar(
        select(StaffUser)
        .where(StaffUser.phone == number, StaffUser.active.is_(True))
        .order_by(StaffUser.id)
        .limit(1)
    )
    return engineer_of(staff) if staff is not None else None


def levels_from_shifts(shifts: list[OnCallShift]) -> list[OnCallLevel]:
    """Return each level's engineers from the shifts covering one moment, overrides winning."""
    levels = []
    for level in sorted({shift.level for shift in shifts}):
        at_level = [shift for shift in shifts if shift.level == level]
        overrides = [shift for shift in at_level if shift.source == "override"]
        chosen = overrides or at_level
        engineers: dict[int, Engineer] = {}
        for shift in chosen:
            engineers.setdefault(shift.staff_id, engineer_of(shift.staff))
        levels.append(OnCallLevel(level=level, engineers=tuple(engineers.values())))
    return levels


def on_call_at(session: Session, at: datetime) -> list[OnCallLevel]:
    """Return the levels with someone on call at `at`, level 1 first; empty when nobody is."""
    shifts = list(session.scalars(_SHIFTS_AT, {"at": at}).unique())
    return levels_from_shifts(shifts)


def shifts_between(session: Session, start: datetime, end: datetime) -> list[OnCallShift]:
    """Return every shift that overlaps [start, end), for the rota page and the feeds."""
    return list(
        session.scalars(
            select(OnCallShift)
            .join(OnCallShift.staff)
            .options(contains_eager(OnCallShift.staff))
            .where(OnCallShift.starts_at < end, OnCallShift.ends_at > start)
            .order_by(OnCallShift.starts_at, OnCallShift.level, StaffUser.name)
        ).unique()
    )


# Moments outside these years are typing errors, and near datetime's limits converting to UTC
# overflows.
YEARS = range(2000, 2200)


def read_moment(value: str | datetime, zone: ZoneInfo) -> datetime | None:
    """Return an ISO 8601 text or a datetime as a UTC moment, or None when it is not one.

    Without an offset the time is local to `zone`; years far outside any rota are refused.
    """
    if isinstance(value, str):
        if len(value) > 40:
            return None
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if value.year not in YEARS:
        return None
    moment = value if value.tzinfo else value.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def check_level(level: int) -> None:
    """Raise RotaError unless `level` is an escalation level."""
    if level not in ONCALL_LEVELS:
        raise RotaError(f"the level must be one of {', '.join(map(str, ONCALL_LEVELS))}")


def add_override(
    session: Session,
    *,
    level: int,
    staff: StaffUser,
    starts_at: datetime,
    ends_at: datetime,
    added_by: str,
) -> OnCallShift:
    """Let `staff` cover `level` from `starts_at` to `ends_at`, in place of the calendar."""
    check_level(level)
    if ends_at <= starts_at:
        raise RotaError("the end must come after the start")
    if not staff.active:
        raise RotaError(f"{staff.email} cannot sign in any more")
    if not staff.phone:
        raise RotaError(f"{staff.email} has no phone number to ring")
    shift = OnCallShift(
        level=level,
        staff_id=staff.id,
        starts_at=starts_at,
        ends_at=ends_at,
        source="override",
        note=f"override by {added_by}"[:200],
    )
    session.add(shift)
    note_change(
        session,
        actor=added_by,
        action="oncall_override_added",
        detail=f"{staff.name} covers level {level} from {starts_at:%Y-%m-%d %H:%M} to "
        f"{ends_at:%Y-%m-%d %H:%M} UTC",
    )
    session.flush()
    return shift


def remove_override(session: Session, *, shift_id: int, removed_by: str | None = None) -> bool:
    """Remove an override; imported shifts are changed only by importing their level again."""
    shift = session.get(OnCallShift, shift_id)
    if shift is None or shift.source != "override":
        return False
    note_change(
        session,
        actor=removed_by,
        action="oncall_override_removed",
        detail=f"{shift.staff.name}, level {shift.level}, "
        f"from {shift.starts_at:%Y-%m-%d %H:%M} UTC",
    )
    session.delete(shift)
    session.flush()
    return True


@dataclass(frozen=True)
class RotaSegment:
    """A stretch of time in which one level's engineers stay the same."""

    level: int
    starts_at: datetime
    ends_at: datetime
    engineers: tuple[Engineer, ...]
    override: bool


def effective_rota(
    shifts: list[OnCallShift], start: datetime, end: datetime
) -> dict[int, list[RotaSegment]]:
    """Return, per level, who is really on call from `start` to `end`, overrides applied."""
    rota: dict[int, list[RotaSegment]] = {}
    # Only who can be rung is on call, as in `on_call_at`.
    shifts = [shift for shift in shifts if shift.staff.active and shift.staff.phone]
    for level in sorted({shift.level for shift in shifts}):
        at_level = [shift for shift in shifts if shift.level == level]
        edges = {start, end}
        edges.update(s.starts_at for s in at_level if start < s.starts_at < end)
        edges.update(s.ends_at for s in at_level if start < s.ends_at < end)
        segments: list[RotaSegment] = []
        ordered = sorted(edges)
        for begin, finish in zip(ordered, ordered[1:], strict=False):
            covering = [s for s in at_level if s.starts_at <= begin and s.ends_at >= finish]
            if not covering:
                continue
            (found,) = levels_from_shifts(covering)
            override = any(s.source == "override" for s in covering)
            previous = segments[-1] if segments else None
            if (
                previous is not None
                and previous.ends_at == begin
                and previous.engineers == found.engineers
                and previous.override == override
            ):
                segments[-1] = RotaSegment(
                    level, previous.starts_at, finish, found.engineers, override
                )
            else:
                segments.append(RotaSegment(level, begin, finish, found.engineers, override))
        rota[level] = segments
    return rota


def upcoming_overrides(session: Session, now: datetime) -> list[OnCallShift]:
    """Return every override that has not ended yet, however far ahead."""
    return list(
        session.scalars(
            select(OnCallShift)
            .join(OnCallShift.staff)
            .options(contains_eager(OnCallShift.staff))
            .where(OnCallShift.source == "override", OnCallShift.ends_at > now)
            .order_by(OnCallShift.starts_at, OnCallShift.level)
        ).unique()
    )


def segments_of(
    session: Session, staff_id: int, start: datetime, end: datetime
) -> list[RotaSegment]:
    """Return when one engineer is really on call from `start` to `end`, overrides applied."""
    rota = effective_rota(shifts_between(session, start, end), start, end)
    return [
        segment
        for segments in rota.values()
        for segment in segments
        if any(engineer.staff_id == staff_id for engineer in segment.engineers)
    ]
