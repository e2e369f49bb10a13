"""Ask a recognised emergency caller what is wrong (one key), then put them through at once.

The caller's own words are taken where they cost no waiting: as the voicemail when nobody
accepts. Asking for a description before ringing kept every caller from an engineer for the
length of a speech prompt plus their answer.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from core.clock import utcnow
from core.settings import Settings
from ivr import params
from ivr.emergency import known_outage
from ivr.emergency.engineers import put_through
from ivr.emergency.state import find_call, restart
from ivr.emergency.triage import triage_choice
from ivr.flow import action_url, guarded, note
from ivr.prompts import Speaker
from tickets import incidents
from tickets.urgent import timeline


def ask_triage(
    settings: Settings,
    speak: Speaker,
    response: VoiceResponse,
    *,
    misses: int,
    action: str | None = None,
) -> None:
    """Add the triage question: 1 major outage, 2 urgent bug; by default answered at /triage."""
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=settings.emergency.triage_timeout,
        action=action or action_url("emergency.triage", lang=speak.language, misses=misses),
        method="POST",
        action_on_empty_result=True,
    )
    speak.say(gather, "triage_menu")


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
    now = utcnow()
    guarded(timeline.record_reason, call=call, reason=step.reason, now=now)
    trail = f"triage:{step.reason or 'unknown'}"
    if step.reason == "outage":
        # In this webhook's transaction: the ticket joins the open incident, or opens one.
        incident = guarded(incidents.note_outage_report, ticket=call.ticket, now=now)
        if known_outage.is_known(incident, now):
            note(call.sid, f"{trail} incident:{incident.number}")  # one write for both steps
            return known_outage.tell(settings, speak, response, call, incident, now=now)
    note(call.sid, trail)
    return put_through(settings, speak, response, call)


def take_description(
    settings: Settings, form: Mapping[str, str], *, language: str
) -> VoiceResponse:
    """Store a spoken description and put the caller through.

    The flow no longer asks for one; this serves calls that were asked before an upgrade.
    """
    speak = Speaker.for_language(settings, language)
    call = find_call(form.get("CallSid"))
    if call is None:
        return restart(language)
    guarded(
        timeline.record_description,
        call=call,
        text=params.speech(form.get("SpeechResult")),
        confidence=params.confidence(form.get("Confidence")),
        now=utcnow(),
    )
    return put_through(settings, speak, VoiceResponse(), call)
