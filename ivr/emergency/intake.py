"""Ask a recognised emergency caller what is wrong: the triage key, then a spoken description."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from ivr import params
from ivr.emergency.engineers import ring
from ivr.emergency.state import find_call, restart
from ivr.emergency.triage import spoken_digits, triage_choice
from ivr.flow import action_url, guarded, note
from ivr.prompts import Speaker
from ivr.settings import Settings
from tickets import urgent
from tickets.db import db, utcnow


def ask_triage(settings: Settings, speak: Speaker, response: VoiceResponse, *, misses: int) -> None:
    """Add the triage question: 1 major outage, 2 urgent bug."""
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=settings.emergency.triage_timeout,
        action=action_url("emergency.triage", lang=speak.language, misses=misses),
        method="POST",
        action_on_empty_result=True,
    )
    speak.say(gather, "triage_menu")


def _ask_description(settings: Settings, speak: Speaker, response: VoiceResponse) -> None:
    """Add the invitation to describe the problem in a few words (or to skip it with #)."""
    gather = response.gather(
        input="speech dtmf",
        language=settings.emergency.description_language,
        speech_timeout="auto",
        timeout=settings.emergency.description_timeout,
        finish_on_key="#",
        action=action_url("emergency.description", lang=speak.language),
        method="POST",
        action_on_empty_result=True,
    )
    speak.say(gather, "description_prompt")


def take_triage(
    settings: Settings, form: Mapping[str, str], *, language: str, misses: int
) -> VoiceResponse:
    """Take the triage key; ask again on odd input, then go on without a reason."""
    speak = Speaker.for_language(settings, language)
    call = find_call(form.get("CallSid"))
    if call is None:
        return restart(language)
    digits = params.digits(form.get("Digits"))
    step = triage_choice(digits, misses, settings.emergency.triage_max_misses)
    response = VoiceResponse()
    if not step.done:
        speak.say(response, "triage_invalid" if digits else "office_no_input")
        ask_triage(settings, speak, response, misses=step.misses)
        return response
    guarded(urgent.record_reason, call=call, reason=step.reason, now=utcnow())
    note(call.sid, f"triage:{step.reason or 'unknown'}")
    _ask_description(settings, speak, response)
    return response


def take_description(
    settings: Settings, form: Mapping[str, str], *, language: str
) -> VoiceResponse:
    """Store the spoken description (if any), say the ticket number and ring the engineers."""
    speak = Speaker.for_language(settings, language)
    call = find_call(form.get("CallSid"))
    if call is None:
        return restart(language)
    guarded(
        urgent.record_description,
        call=call,
        text=params.speech(form.get("SpeechResult")),
        confidence=params.confidence(form.get("Confidence")),
        now=utcnow(),
    )
    response = VoiceResponse()
    key = "ticket_existing" if urgent.is_joined_call(db.session, call) else "ticket_number"
    speak.say(response, key, digits=spoken_digits(call.ticket.number))
    speak.say(response, "connecting_engineer")
    ring(settings, response, call, language=language, index=0)
    return response
