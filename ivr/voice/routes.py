"""The webhooks Twilio's console points at: incoming calls and status changes.

The console's fallback URL, `/voice/fallback`, is served by `ivr.outage.routes`.
"""

from __future__ import annotations

from flask import Blueprint, request

from core.db import db
from core.settings import current_settings
from ivr import calls, params
from ivr.emergency import engineers, identify
from ivr.flow import commit_now, webhook
from ivr.lines import EMERGENCY, line_for_number
from ivr.metrics import counters
from ivr.office import steps as office
from ivr.prompts import twiml

bp = Blueprint("voice", __name__, url_prefix="/voice")


@bp.post("/incoming")
@webhook
def incoming():
    """Answer any call and hand it to the line its called number belongs to."""
    settings = current_settings()
    line = line_for_number(settings, request.form.get("To"))
    if line == EMERGENCY:
        return twiml(identify.answer(settings, request.form))
    return twiml(office.answer(settings, request.form))


@bp.post("/status")
@webhook
def status():
    """Record call progress and the end of every call."""
    settings = current_settings()
    form = request.form
    sid = params.sid(form.get("CallSid"))
    if sid is None:
        return ("", 204)
    line = line_for_number(settings, form.get("To"))
    ended_before = calls.has_ended(db.session, sid)
    call = calls.record_call_status(
        db.session,
        sid=sid,
        status=form.get("CallStatus", ""),
        line=line,
        from_number=form.get("From"),
        to_number=form.get("To"),
        duration=form.get("CallDuration"),
        sequence=form.get("SequenceNumber"),
    )
    # Written before the ticket is settled: a failed settle must not take the call's end with
    # it (Twilio does not resend), and this webhook never holds the call log's row while it
    # waits for the ticket call's (triage takes them the other way round): keep the two apart.
    commit_now(context=sid)
    # Also office calls: option 3 hands them to the emergency flow (a no-op without a ticket).
    ticket_call = engineers.settle_call(form)
    if call.ended_at is not None and not ended_before:
        outcome = ticket_call.outcome if ticket_call is not None else None
        counters.count_call(call.line, calls.call_outcome(call.status, call.choices, outcome))
    return ("", 204)
