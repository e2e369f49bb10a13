"""Read on-call shifts from an iCalendar file, and write an engineer's shifts as a feed.

Calendars exported by Outlook, Google Calendar or an on-call tool are read with `icalendar`;
recurrences (RRULE, RDATE, EXDATE, moved or cancelled instances) are expanded with
`recurring-ical-events`. Times with a TZID keep their zone, floating times and all-day events
are read in the service's zone, so a weekly 09:00 hand-over stays at 09:00 across the change to
and from summer time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import icalendar

    from tickets.rota import RotaSegment

from tickets.models import StaffUser

MAX_CALENDAR_BYTES = 5 * 1024 * 1024
MAX_SHIFTS = 20_000


class CalendarRejected(ValueError):
    """The calendar cannot be imported; `problems` has a line per reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class ParsedShift:
    """One occurrence of a calendar event: who is on call, from when to when (UTC)."""

    staff_id: int
    starts_at: datetime
    ends_at: datetime
    note: str


class StaffIndex:
    """Find the staff member a calendar event names, by e-mail or by name."""

    def __init__(self, staff: Iterable[StaffUser]) -> None:
        self.by_email: dict[str, StaffUser] = {}
        self.by_name: dict[str, list[StaffUser]] = {}
        for member in staff:
            self.by_email[member.email.lower()] = member
            self.by_name.setdefault(member.name.strip().lower(), []).append(member)

    def named(self, text: str) -> StaffUser | None:
        """Return the one staff member whose e-mail or name `text` is."""
        key = text.strip().removeprefix("mailto:").removeprefix("MAILTO:").strip().lower()
        if key in self.by_email:
            return self.by_email[key]
        matches = self.by_name.get(key, [])
        return matches[0] if len(matches) == 1 else None


def _moment(value: date | datetime, zone: ZoneInfo) -> datetime:
    """Return a DTSTART/DTEND value as an aware UTC datetime; dates are local midnight."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0), tzinfo=zone)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _describe(event: icalendar.Event, zone: ZoneInfo) -> str:
    """Return how a problem line names an event: its summary and start."""
    summary = str(event.get("SUMMARY", "")).strip() or "(no summary)"
    start = event.get("DTSTART")
    when = ""
    if start is not None:
        value = start.dt
        if isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=zone)
            when = f" starting {aware.astimezone(zone):%Y-%m-%d %H:%M}"
        else:
            when = f" on {value:%Y-%m-%d}"
    return f"event {summary!r}{when}"


def _ringable(member: StaffUser) -> bool:
    return bool(member.phone) and member.active


def engineers_named(event: icalendar.Event, staff: StaffIndex) -> tuple[list[StaffUser], str]:
    """Return the staff an event puts on call, or why there are none.

    ATTENDEEs first (those who declined left out; when some can be rung, the others, such as
    an organiser listed as attendee, are passed over), else the SUMMARY.
    """
    attendees = event.get("ATTENDEE") or []
    if not isinstance(attendees, list):
        attendees = [attendees]
    present = [a for a in attendees if str(a.params.get("PARTSTAT", "")).upper() != "DECLINED"]
    named = [member for member in (staff.named(str(a)) for a in present) if member]
    if not named:
        member = staff.named(str(event.get("SUMMARY", "")))
        named = [member] if member else []
    if not named:
        return [], "names nobody known (no ATTENDEE e-mail or SUMMARY matches a staff member)"
    ringable = [member for member in named if _ringable(member)]
    if not ringable:
        emails = ", ".join(member.email for member in named)
        return [], f"names {emails}, who cannot be rung (inactive or no phone)"
    return ringable, ""


def read_calendar(data: bytes) -> icalendar.Calendar:
    """Parse an iCalendar file, or reject it with one line saying why."""
    import icalendar  # here, not at the top: only an import reads iCalendar (~2 MB per worker)

    if len(data) > MAX_CALENDAR_BYTES:
        raise CalendarRejected([f"the file is larger than {MAX_CALENDAR_BYTES} bytes"])
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise CalendarRejected([f"not an iCalendar file: {exc}"]) from None
    if not isinstance(calendar, icalendar.Calendar):
        raise CalendarRejected(["not an iCalendar file: no VCALENDAR"])
    return calendar


def shifts_in_calendar(
    data: bytes, *, staff: StaffIndex, zone: ZoneInfo, start: datetime, end: datetime
) -> list[ParsedShift]:
    """Return every shift the calendar holds between `start` and `end`.

    Only occurrences inside the window are checked, so old history in an exported calendar
    (an engineer who has left) does not block a new rota; cancelled events and instances are
    no shifts. Any occurrence in the window naming nobody who can be rung rejects the file,
    with one line per event.
    """
    calendar = read_calendar(data)
    problems = [
        f"{_describe(event, zone)}: has no start (DTSTART)"
        for event in calendar.walk("VEVENT")
        if event.get("DTSTART") is None
    ]
    if problems:
        raise CalendarRejected(problems)
    import recurring_ical_events  # only an import expands recurrences; see read_calendar

    try:
        occurrences = recurring_ical_events.of(calendar).between(start, end)
    except Exception as exc:  # the library raises many kinds on malformed recurrences
        raise CalendarRejected([f"the recurrences cannot be read: {exc}"]) from None
    shifts: list[ParsedShift] = []
    by_event: dict[str, str] = {}
    for occurrence in occurrences:
        if str(occurrence.get("STATUS", "")).upper() == "CANCELLED":
            continue
        named, problem = engineers_named(occurrence, staff)
        if problem:
            key = str(occurrence.get("UID", "")) or _describe(occurrence, zone)
            by_event.setdefault(key, f"{_describe(occurrence, zone)}: {problem}")
            continue
        shifts.extend(_shifts_of(occurrence, named, zone=zone))
        if len(shifts) > MAX_SHIFTS:
            raise CalendarRejected([f"more than {MAX_SHIFTS} shifts in the import window"])
    if by_event:
        raise CalendarRejected(list(by_event.values()))
    return shifts


def _shifts_of(
    event: icalendar.Event, named: list[StaffUser], *, zone: ZoneInfo
) -> list[ParsedShift]:
    """Return the shifts of one occurrence: one per engineer it puts on call."""
    begins = event.get("DTSTART").dt
    starts_at = _moment(begins, zone)
    if event.get("DTEND") is not None:
        ends_at = _moment(event.get("DTEND").dt, zone)
    elif event.get("DURATION") is not None:
        ends_at = starts_at + event.get("DURATION").dt
    else:  # RFC 5545: an all-day event without an end lasts one day, a timed one no time
        ends_at = (
            _moment(begins + timedelta(days=1), zone)
            if not isinstance(begins, datetime)
            else starts_at
        )
    if ends_at <= starts_at:
        return []
    note = str(event.get("SUMMARY", "")).strip()[:200]
    return [ParsedShift(member.id, starts_at, ends_at, note) for member in named]


def feed_for(
    staff: StaffUser, segments: Iterable[RotaSegment], *, product: str, now: datetime
) -> bytes:
    """Return when an engineer is on call as an iCalendar feed their calendar can subscribe to."""
    import icalendar  # only a feed request writes iCalendar; see read_calendar

    calendar = icalendar.Calendar()
    calendar.add("PRODID", f"-//{product}//on call//EN")
    calendar.add("VERSION", "2.0")
    calendar.add("X-WR-CALNAME", f"On call: {staff.name}")
    for segment in segments:
        event = icalendar.Event()
        start = segment.starts_at.astimezone(UTC)
        event.add("UID", f"oncall-{staff.id}-{segment.level}-{start:%Y%m%dT%H%M%SZ}@{product}")
        event.add("DTSTAMP", now)
        event.add("DTSTART", segment.starts_at)
        event.add("DTEND", segment.ends_at)
        event.add("SUMMARY", f"On call, level {segment.level}")
        calendar.add_component(event)
    return calendar.to_ical()
