"""How the dashboard shows times, durations and names: template filters and globals."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.clock import utcnow
from core.settings import current_settings
from tickets import labels
from tickets.dashboard import bp

for _label in (
    labels.status_label,
    labels.reason_label,
    labels.role_label,
    labels.event_label,
    labels.outcome_label,
    labels.outcome_group_label,
    labels.message_label,
    labels.delivery_label,
    labels.category_label,
    labels.priority_label,
    labels.source_label,
    labels.line_label,
    labels.channel_label,
    labels.staff_role_label,
    labels.audit_label,
    labels.event_detail,
    labels.short_recording,
    labels.incident_update_label,
):
    bp.add_app_template_global(_label)
    bp.add_app_template_filter(_label)  # for map(): lines|map('line_label')


@bp.app_template_global()
def department_label(department: str) -> str:
    """Return an office department's name as the menu says it (English where it has one)."""
    found = current_settings().office.departments.get(department)
    if found is None:
        return department.replace("_", " ").capitalize()
    name = found.names.get("en") or next(iter(found.names.values()), department)
    return name[:1].upper() + name[1:]


def local_zone() -> ZoneInfo:
    """Return the time zone staff read times in."""
    return current_settings().zone


def local_today() -> date:
    """Return today's date where the support desk is."""
    return utcnow().astimezone(local_zone()).date()


def day_start(day: date) -> datetime:
    """Return the UTC moment a local calendar day begins."""
    return datetime.combine(day, time(0), tzinfo=local_zone()).astimezone(UTC)


@bp.app_template_filter("local")
def format_local(moment: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """Render a stored UTC time in the desk's time zone."""
    if moment is None:
        return "—"
    return moment.astimezone(local_zone()).strftime(pattern)


@bp.app_template_filter("duration")
def format_duration(value: timedelta | int | None) -> str:
    """Render a duration as '45 s', '3 min 05 s', '2 h 10 min' or '3 d 4 h'."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    seconds = max(0, seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
