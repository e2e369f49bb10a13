"""Serve callers with no database and no call state: the last line of defence."""

from __future__ import annotations

from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from ivr.lines import EMERGENCY, OFFICE
from ivr.params import caller_id
from ivr.prompts import Speaker
from ivr.settings import Settings

SCREEN_PATH = "/voice/fallback/screen"
ACCEPT_PATH = "/voice/fallback/accept"
# Database-free webhooks of the outage machinery (ivr.outage) that journal what they hear.
DIALLED_PATH = "/voice/outage/dialled"
RECORDING_PATH = "/voice/outage/recording"


def reception_response(settings: Settings, speak: Speaker) -> VoiceResponse:
    """Put an office caller through to reception; if nobody answers, offer a voicemail."""
    response = VoiceResponse()
    speak.say(response, "office_to_reception")
    dial = response.dial(
        timeout=settings.office.reception_dial_timeout,
        action=f"{DIALLED_PATH}?line={OFFICE}&lang={speak.language}",
        method="POST",
    )
    for number in settings.office.reception:
        dial.number(number)
    return response


def engineers_response(settings: Settings, speak: Speaker, raw_caller: str | None) -> VoiceResponse:
    """Ring every engineer at once, screened as an unverified urgent call."""
    response = VoiceResponse()
    speak.say(response, "technical_problem")
    number = caller_id(raw_caller) or "anonymous"
    recording = {}
    if settings.emergency.record_calls:
        recording = {
            "record": "record-from-answer-dual",
            "recording_status_callback": f"{RECORDING_PATH}?line={EMERGENCY}",
            "recording_status_callback_method": "POST",
        }
    dial = response.dial(
        timeout=settings.emergency.dial_timeout,
        action=f"{DIALLED_PATH}?line={EMERGENCY}&lang={speak.language}",
        method="POST",
        **recording,
    )
    screen = f"{SCREEN_PATH}?{urlencode({'caller': number})}"
    for engineer in settings.emergency.engineers:
        dial.number(engineer.number, url=screen, method="POST")
    return response


def safe_response(
    settings: Settings, line: str, raw_caller: str | None, *, language: str | None = None
) -> VoiceResponse:
    """Return TwiML that serves a caller of `line` without touching the database."""
    speak = Speaker.for_language(settings, language or settings.default_language)
    if line == EMERGENCY:
        return engineers_response(settings, speak, raw_caller)
    return reception_response(settings, speak)


def screen_unverified(settings: Settings, caller: str) -> VoiceResponse:
    """Ask the engineer to accept an unverified urgent call with 1."""
    speak = Speaker.for_language(settings, settings.default_language)
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1, action=ACCEPT_PATH, method="POST", timeout=settings.emergency.screen_timeout
    )
    digits = " ".join(caller.lstrip("+")) if caller and caller != "anonymous" else None
    speak.say(gather, "screen_unverified", caller=digits or speak.text("caller_withheld"))
    response.hangup()
    return response


def accept_unverified(digits: str | None) -> VoiceResponse:
    """Bridge the engineer who pressed 1; hang up on anything else so others keep ringing."""
    response = VoiceResponse()
    if (digits or "").strip() != "1":
        response.hangup()
    return response
