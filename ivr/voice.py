"""The webhooks Twilio's console points at: incoming calls and status changes.

The console's fallback URL, `/voice/fallback`, is served by `ivr.outage.routes`.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ivr import calls, emergency, office
from ivr.lines import EMERGENCY, line_for_number
from ivr.prompts import twiml
from ivr.settings import Settings
from ivr.signatures import twilio_only
from tickets.db import db

bp = Blueprint("voice", __name__, url_prefix="/voice")


def current_settings() -> Settings:
    """Return the running service's settings."""
    return current_app.config["SETTINGS"]


@bp.post("/incoming")
@twilio_only
def incoming():
    """Answer any call and hand it to the line its called number belongs to."""
    settings = current_settings()
    line = line_for_number(settings, request.form.get("To"))
    if line == EMERGENCY:
        return twiml(emergency.answer(settings, request.form))
    return twiml(office.answer(settings, request.form))


@bp.post("/status")
@twilio_only
def status():
    """Record call progress and the end of every call."""
    settings = current_settings()
    form = request.form
    sid = (form.get("CallSid") or "").strip()
    if not sid:
        return ("", 204)
    line = line_for_number(settings, form.get("To"))
    calls.record_call_status(
        db.session,
        sid=sid,
        status=form.get("CallStatus", ""),
        line=line,
        from_number=form.get("From"),
        to_number=form.get("To"),
        duration=form.get("CallDuration"),
        sequence=form.get("SequenceNumber"),
    )
    # Also office calls: option 3 hands them to the emergency flow (a no-op without a ticket).
    emergency.settle_call(settings, form)
    return ("", 204)
