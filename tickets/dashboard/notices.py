"""What every dashboard page says while it holds: a major incident open, PIN checks paused, a
helpdesk receiver switched off, paging that cannot send or recordings that cannot be played."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, url_for
from sqlalchemy import func, select

from core.clock import utcnow
from core.db import db
from core.settings import current_settings
from tickets import paging, pin_guard
from tickets.dashboard import bp
from tickets.dashboard.display import format_local
from tickets.helpdesk import deliveries
from tickets.helpdesk.events import policy as helpdesk_policy
from tickets.incidents import current_incident
from tickets.models import Ticket
from tickets.paging_state import CANNOT_SEND, PagingState, paging_state


@dataclass(frozen=True)
class ServiceNotice:
    """A banner about something that does not work, and what to set to make it work."""

    key: str
    title: str
    text: str
    link: str | None = None
    link_text: str = ""


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


def current_paging_state() -> PagingState:
    """Return whether paging can send (asked once per request)."""
    if "paging_state" not in g:
        g.paging_state = paging_state(db.session, paging.policy(), utcnow())
    return g.paging_state


@bp.app_template_global()
def recordings_playable() -> bool:
    """Return whether the dashboard can fetch recordings from Twilio: it needs the account SID."""
    return bool(current_settings().twilio_account_sid)


def service_notices() -> list[ServiceNotice]:
    """Return the banners for what cannot work now: paging that cannot send, recordings."""
    notices = []
    state = current_paging_state()
    if state.state == CANNOT_SEND:
        notices.append(
            ServiceNotice(
                "paging",
                "Paging cannot send:",
                f"{state.advice[:1].upper()}{state.advice[1:]}. Engineers are not paged about "
                "urgent tickets nobody took.",
                url_for("dashboard.messages"),
                "Pages and messages",
            )
        )
    if not recordings_playable():
        notices.append(
            ServiceNotice(
                "recordings",
                "Recordings cannot be played:",
                "set TWILIO_ACCOUNT_SID (the account SID, AC…) in the service's environment; "
                "Twilio only gives recordings to the account.",
            )
        )
    return notices


@bp.context_processor
def _notices() -> dict:
    # Callables: only pages that show the notices (those built on base.html) ask the database.
    return {
        "incident_notice": incident_notice,
        "pin_pause_notice": pin_pause_notice,
        "helpdesk_notice": helpdesk_notice,
        "service_notices": service_notices,
    }
