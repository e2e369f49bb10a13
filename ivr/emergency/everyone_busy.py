"""Every engineer is on a call: say so, and offer a call-back (or a voicemail) at once.

Ringing phones whose owners are on another call only keeps a caller waiting for a voicemail
in the end. So nobody is rung: the caller hears that every engineer is on a call and may ask
to be called back with 2, on the number they call from (the call-back queue of their ticket);
staying on the line leaves a voicemail instead. A caller who cannot be called back (an
unverified caller, a withheld or far-away number) goes straight to the voicemail.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from core.clock import utcnow
from core.settings import Settings
from ivr import params
from ivr.emergency.state import find_call, restart
from ivr.emergency.voicemail import offer_voicemail
from ivr.flow import action_url, goodbye, guarded, note
from ivr.prompts import Speaker
from tickets import callback_queue
from tickets.models import TicketCall
from tickets.urgent import outcomes

# The key that asks for a call-back, here and after hearing an outage is known.
CALL_BACK_KEY = "2"


def call_back_number(settings: Settings, call: TicketCall) -> str | None:
    """Return the number this caller may be called back on, or None when they may not be."""
    return callback_queue.number_of_call(call, settings.emergency.call_back_countries)


def offer(
    settings: Settings, speak: Speaker, response: VoiceResponse, call: TicketCall
) -> VoiceResponse:
    """Say that every engineer is on a call; offer a call-back with 2, else a voicemail."""
    guarded(outcomes.record_engineers_busy, call=call, now=utcnow())
    note(call.sid, "engineers_busy")
    speak.say(response, "engineers_busy")
    if call_back_number(settings, call) is None:
        return leave_message(settings, speak, response)
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=settings.emergency.triage_timeout,
        action=action_url("emergency.busy_choice", lang=speak.language),
        method="POST",
        action_on_empty_result=True,
    )
    speak.say(gather, "busy_offer")
    return response


def leave_message(settings: Settings, speak: Speaker, response: VoiceResponse) -> VoiceResponse:
    """Invite a voicemail on the urgent ticket."""
    speak.say(response, "busy_leave_message")
    return offer_voicemail(settings, speak, response)


def take_choice(settings: Settings, form: Mapping[str, str], *, language: str) -> VoiceResponse:
    """Queue a call-back on 2; anything else (staying on the line) leaves a voicemail."""
    speak = Speaker.for_language(settings, language)
    call = find_call(form.get("CallSid"))
    if call is None:
        return restart(language)
    if params.digits(form.get("Digits")) == CALL_BACK_KEY:
        return ask_call_back(settings, speak, VoiceResponse(), call)
    return leave_message(settings, speak, VoiceResponse())


def ask_call_back(
    settings: Settings, speak: Speaker, response: VoiceResponse, call: TicketCall
) -> VoiceResponse:
    """Queue the caller's call-back on their ticket and say goodbye; a voicemail if it fails."""
    number = call_back_number(settings, call)
    request = None
    if number is not None:
        request = guarded(
            callback_queue.ask, call=call, number=number, language=speak.language, now=utcnow()
        )
    if request is None:
        return leave_message(settings, speak, response)
    note(call.sid, "call_back")
    return goodbye(response, speak, "call_back_queued")
