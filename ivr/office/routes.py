"""Answer the office line's webhooks: each reads the request and hands it to one step."""

from __future__ import annotations

from flask import Blueprint, request

from core.settings import current_settings
from ivr import params
from ivr.flow import webhook
from ivr.office import steps
from ivr.prompts import twiml

bp = Blueprint("office", __name__, url_prefix="/voice/office")


@bp.post("/menu")
@webhook
def menu():
    """Offer the menu again (for flows that send a caller back to it)."""
    settings = current_settings()
    misses = params.count(request.args.get("misses"), limit=settings.office.max_misses)
    speak = steps.speaker(settings, request.args)
    return twiml(steps.menu_twiml(settings, speak, misses=misses))


@bp.post("/choice")
@webhook
def choice():
    """Act on the menu key (or silence)."""
    return twiml(steps.take_choice(current_settings(), request.args, request.form))


@bp.post("/dialed")
@webhook
def dialed():
    """Handle the end of ringing a department."""
    return twiml(steps.settle_team_dial(current_settings(), request.args, request.form))


@bp.post("/extension")
@webhook
def extension():
    """Act on the extension the caller typed."""
    return twiml(steps.take_extension(current_settings(), request.args, request.form))


@bp.post("/colleague-dialed")
@webhook
def colleague_dialed():
    """Handle the end of ringing a colleague."""
    return twiml(steps.settle_colleague_dial(current_settings(), request.args, request.form))


@bp.post("/reception")
@webhook
def reception():
    """Put the caller through to reception (after waiting at the extension prompt)."""
    settings = current_settings()
    speak = steps.speaker(settings, request.args)
    return twiml(steps.put_through_to_reception(settings, speak, request.form))


@bp.post("/reception-dialed")
@webhook
def reception_dialed():
    """Handle the end of ringing reception."""
    return twiml(steps.settle_reception_dial(current_settings(), request.args, request.form))


@bp.post("/voicemail")
@webhook
def voicemail():
    """Store the voicemail the caller left."""
    return twiml(steps.take_voicemail(current_settings(), request.args, request.form))
