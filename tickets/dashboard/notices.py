"""The notices every dashboard page shows while they hold: a major incident open, PIN checks
paused, a helpdesk receiver switched off."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g
from sqlalchemy import func, select

from core.db import db
from tickets import pin_guard
from tickets.dashboard import bp
from tickets.dashboard.display import format_local
from tickets.helpdesk import deliveries
from tickets.helpdesk.events import policy as helpdesk_policy
from tickets.incidents import current_incident
from tickets.models import Ticket


@dataclass(frozen=True)
class IncidentNotice:
    """The banner of the open incident: what it says, and which incident it links to."""

    number: int
    text: str


def incident_notice() -> IncidentNotice | None:
    """Return the banner of the open major incident (asked once per request), or None."""
    if "incident_notice" not in g:
        incident = current_incident(db.session)
        g.incident_notice = None
        if incident is not None:
            count = db.session.scalar(
                select(func.count(func.distinct(Ticket.organization_id))).where(
                    Ticket.incident_id == incident.id
                )
            )
            state = (
                f"acknowledged by {incident.acknowledged_by.name}"
                if incident.acknowledged_by is not None
                else "not acknowledged yet"
            )
            g.incident_notice = IncidentNotice(
                number=incident.number,
                text=(
                    f"Major incident open since {format_local(incident.opened_at)}: "
                    f"{count} organisation(s), {state}."
                ),
            )
    return g.incident_notice


def pin_pause_notice() -> str | None:
    """Return the notice of a pause of PIN checks in force (asked once per request), or None."""
    if "pin_pause_notice" not in g:
        pause = pin_guard.active_pause(db.session)
        g.pin_pause_notice = None
        if pause is not None:
            g.pin_pause_notice = (
                "PIN checks on the emergency line are paused until "
                f"{format_local(pause.paused_until)}: {pin_guard.describe_pause(pause)}. "
                "Callers whose number is not recognised go through to the engineers as "
                "unverified; the engineer decides."
            )
    return g.pin_pause_notice


def helpdesk_notice() -> str | None:
    """Return the notice of configured helpdesk receivers switched off after a 410, or None."""
    if not helpdesk_policy().receivers:
        return None
    held = deliveries.disabled_receivers(db.session)
    names = [name for name in helpdesk_policy().names if name in held]
    if not names:
        return None
    said = "; ".join(
        f"{name} on {format_local(held[name].disabled_at)}: {held[name].disabled_reason}"
        for name in names
    )
    return (
        f"Helpdesk events are not sent to {', '.join(names)}: switched off ({said}). "
        "Their events wait; an admin enables the receiver again under Settings."
    )


@bp.context_processor
def _notices() -> dict:
    # Callables: only pages that show the notices (those built on base.html) ask the database.
    return {
        "incident_notice": incident_notice,
        "pin_pause_notice": pin_pause_notice,
        "helpdesk_notice": helpdesk_notice,
    }
