"""The office line: greeting, four-option menu, teams, colleagues and voicemail."""

from __future__ import annotations

from flask import Blueprint
from twilio.twiml.voice_response import VoiceResponse

from ivr.prompts import Speaker
from ivr.settings import Settings

bp = Blueprint("office", __name__, url_prefix="/voice/office")


def answer(settings: Settings, form) -> VoiceResponse:
    """Greet an office caller and offer the menu (placeholder until the office flow lands)."""
    speak = Speaker.for_language(settings, settings.default_language)
    response = VoiceResponse()
    speak.say(response, "office_welcome")
    return response
