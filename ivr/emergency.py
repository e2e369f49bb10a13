"""The emergency line: recognise entitled callers, open an urgent ticket, reach an engineer."""

from __future__ import annotations

from flask import Blueprint
from twilio.twiml.voice_response import VoiceResponse

from ivr import fallback
from ivr.lines import EMERGENCY
from ivr.settings import Settings

bp = Blueprint("emergency", __name__, url_prefix="/voice/emergency")


def answer(settings: Settings, form) -> VoiceResponse:
    """Answer an emergency call (placeholder: rings engineers as unverified)."""
    return fallback.safe_response(settings, EMERGENCY, form.get("From"))


def settle_call(settings: Settings, form) -> None:
    """Settle the outcome of an emergency call from its status callback (placeholder)."""
