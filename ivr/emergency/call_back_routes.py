"""Answer the webhooks of a call-back's call: the engineer's leg first, then the caller's.

A blueprint of its own: while the database is away (or a step fails) the outage machinery
serves these with "the call-back cannot be made now" (`ivr.outage.without_database`), never as
an emergency caller; should the service not answer at all, Twilio asks the call's fallback URL,
which needs no database either.
"""

from __future__ import annotations

from flask import Blueprint, request
from twilio.twiml.voice_response import VoiceResponse

from core.settings import current_settings
from ivr import params
from ivr.emergency import call_back
from ivr.flow import webhook
from ivr.prompts import twiml
from ivr.signatures import twilio_only

bp = Blueprint("call_back", __name__, url_prefix="/voice/call-back")


def _request_id() -> int | None:
    """Return which call-back request our own URL is about."""
    return params.whole_number(request.args.get("request"))


@bp.post("/engineer")
@webhook
def engineer():
    """Screen the engineer's phone, which the call-back rings first."""
    return twiml(
        call_back.screen_engineer(current_settings(), request.form, request_id=_request_id())
    )


@bp.post("/accept")
@webhook
def accept():
    """Take the engineer's key: 1 dials the caller."""
    return twiml(call_back.accept(current_settings(), request.form, request_id=_request_id()))


@bp.post("/caller")
@webhook
def caller():
    """Greet the caller who picks up, before they are connected."""
    return twiml(call_back.greet_caller(current_settings(), request.form, request_id=_request_id()))


@bp.post("/dialled")
@webhook
def dialled():
    """Handle the end of dialling the caller."""
    return twiml(call_back.dialled(current_settings(), request.form, request_id=_request_id()))


@bp.post("/status")
@webhook
def status():
    """Record the end of the call-back's call (its status callback)."""
    call_back.settle(request.form, request_id=_request_id())
    return twiml(VoiceResponse())


@bp.post("/fallback")
@twilio_only
def fallback():
    """Answer when the other call-back webhooks failed: no database, no call state."""
    return twiml(call_back.unavailable(current_settings()))
