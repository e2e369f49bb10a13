"""The call of a call-back: ring the engineer first, screen them, then dial the waiting caller.

The sender placed the call through Twilio's Calls API to the engineer's phone, with our
TwiML at `/voice/call-back/engineer?request=N`. The engineer hears which ticket and whom, and
accepts with 1; only then is the caller dialled, with the emergency line's number as caller
ID (never the engineer's own) and the call recorded like any other. The caller first hears
who calls them back and about which ticket. How it went is the ticket call's outcome, and a
missed attempt puts the request back in the queue.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from core.clock import utcnow
from core.settings import Settings
from ivr import params
from ivr.emergency.state import find_call
from ivr.emergency.triage import spoken_digits
from ivr.flow import action_url, goodbye, guarded, hang_up
from ivr.prompts import Speaker
from tickets.callback_queue import calls as call_backs
from tickets.callback_queue.models import (
    ANSWERED,
    CALLING,
    CUSTOMER_MISSED,
    ENGINEER_DECLINED,
    ENGINEER_MISSED,
    QueuedCallBack,
)
from tickets.urgent import outcomes, timeline

ACCEPT_KEY = "1"


def _current(form: Mapping[str, str], request_id: int | None) -> QueuedCallBack | None:
    """Return the request whose current attempt this leg (its CallSid) is, if it is."""
    request = guarded(call_backs.find, request_id=request_id)
    sid = params.sid(form.get("CallSid"))
    if request is None or sid is None or request.status != CALLING or request.call_sid != sid:
        return None
    return request


def _recording(settings: Settings, sid: str) -> dict:
    """Return the `<Dial>` attributes that record the conversation, when recording is on."""
    if not settings.emergency.record_calls:
        return {}
    return {
        "record": "record-from-answer-dual",
        "recording_status_callback": action_url("emergency.recording", call=sid),
        "recording_status_callback_method": "POST",
    }


def _caller_name(speak: Speaker, request: QueuedCallBack) -> str:
    contact = request.ticket.contact
    return contact.name if contact is not None else speak.text("the_caller")


def screen_engineer(
    settings: Settings, form: Mapping[str, str], *, request_id: int | None
) -> VoiceResponse:
    """Tell the engineer which ticket and whom they call back; 1 dials the caller.

    The first leg of an attempt claims it; another call of the same attempt is refused.
    """
    speak = Speaker.for_language(settings, settings.default_language)
    sid = params.sid(form.get("CallSid"))
    request = guarded(call_backs.find, request_id=request_id)
    if request is None or sid is None:
        return goodbye(VoiceResponse(), speak, "call_back_gone")
    if not guarded(call_backs.claim_leg, request=request, call_sid=sid):
        return goodbye(VoiceResponse(), speak, "call_back_gone")
    engineer = guarded(call_backs.engineer_of, request=request)
    name = engineer.name if engineer is not None else "?"
    guarded(call_backs.open_call, request=request, call_sid=sid, engineer=name, now=utcnow())
    ticket = request.ticket
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=settings.emergency.screen_timeout,
        action=action_url("call_back.accept", request=request.id),
        method="POST",
        # Silence is reported too: the attempt goes back in the queue at once.
        action_on_empty_result=True,
    )
    speak.say(
        gather,
        "call_back_screen",
        digits=spoken_digits(ticket.number),
        organization=ticket.organization.name if ticket.organization is not None else "",
        name=_caller_name(speak, request),
    )
    response.hangup()
    return response


def accept(settings: Settings, form: Mapping[str, str], *, request_id: int | None) -> VoiceResponse:
    """Dial the caller once the engineer pressed 1, showing the line's number."""
    speak = Speaker.for_language(settings, settings.default_language)
    request = _current(form, request_id)
    if request is None:
        return goodbye(VoiceResponse(), speak, "call_back_gone")
    sid = request.call_sid
    call = find_call(sid)
    now = utcnow()
    engineer = guarded(call_backs.engineer_of, request=request)
    if params.digits(form.get("Digits")) != ACCEPT_KEY or engineer is None or call is None:
        if call is not None:
            guarded(outcomes.record_dial_outcome, call=call, outcome="refused")
        guarded(call_backs.attempt_ended, request=request, outcome=ENGINEER_DECLINED, now=now)
        return hang_up()
    # From here the engineer is busy on this call: the line rings them for no other.
    guarded(
        timeline.record_engineer_response,
        ticket=request.ticket,
        call=call,
        engineer=engineer.name,
        accepted=True,
        engineer_phone=engineer.phone,
        now=now,
    )
    response = VoiceResponse()
    speak.say(response, "call_back_connecting", name=_caller_name(speak, request))
    dial = response.dial(
        caller_id=settings.emergency.numbers[0],
        action=action_url("call_back.dialled", request=request.id),
        method="POST",
        timeout=settings.emergency.dial_timeout,
        **_recording(settings, sid),
    )
    dial.number(
        request.number,
        url=action_url("call_back.caller", request=request.id),
        method="POST",
    )
    return response


def greet_caller(
    settings: Settings, form: Mapping[str, str], *, request_id: int | None
) -> VoiceResponse:
    """Tell the caller who picks up who calls them back and why, then connect them."""
    request = guarded(call_backs.find, request_id=request_id)
    language = request.language if request is not None else settings.default_language
    speak = Speaker.for_language(settings, language)
    response = VoiceResponse()
    digits = spoken_digits(request.ticket.number) if request is not None else ""
    speak.say(response, "call_back_customer", digits=digits)
    if settings.emergency.record_calls:
        speak.say(response, "recording_notice")
    return response


def dialled(
    settings: Settings, form: Mapping[str, str], *, request_id: int | None
) -> VoiceResponse:
    """Settle the attempt when the caller's phone stopped ringing or the conversation ended."""
    speak = Speaker.for_language(settings, settings.default_language)
    request = _current(form, request_id)
    if request is None:
        return hang_up()
    call = find_call(request.call_sid)
    status = params.call_status(form.get("DialCallStatus"))
    bridged = (form.get("DialBridged") or "").strip().lower() == "true"
    answered = bridged or status == "completed"
    if call is not None:
        outcome = "answered" if answered else "no_answer"
        guarded(outcomes.record_dial_outcome, call=call, outcome=outcome)
    now = utcnow()
    ended = ANSWERED if answered else CUSTOMER_MISSED
    guarded(call_backs.attempt_ended, request=request, outcome=ended, now=now)
    if answered or params.is_final(form.get("CallStatus")):
        return hang_up()
    response = VoiceResponse()
    speak.say(response, "call_back_customer_missed", name=_caller_name(speak, request))
    response.hangup()
    return response


def settle(form: Mapping[str, str], *, request_id: int | None) -> None:
    """Settle the engineer's call from its final status: its end, and a missed attempt."""
    sid = params.sid(form.get("CallSid"))
    if sid is None or not params.is_final(form.get("CallStatus")):
        return
    now = utcnow()
    request = guarded(call_backs.find, request_id=request_id)
    if request is not None and request.status == CALLING and request.call_sid in (sid, None):
        # The engineer's phone was not answered, or the leg ended before the caller was dialled.
        guarded(call_backs.claim_leg, request=request, call_sid=sid)
        guarded(call_backs.attempt_ended, request=request, outcome=ENGINEER_MISSED, now=now)
    call = find_call(sid)
    if call is None:
        return
    if call.outcome == "in_progress":
        guarded(outcomes.record_dial_outcome, call=call, outcome="no_answer")
    guarded(
        outcomes.settle_ticket_call,
        sid=sid,
        duration=params.whole_number(form.get("CallDuration")),
        now=now,
        from_timeline=False,
    )


def unavailable(settings: Settings) -> VoiceResponse:
    """Tell the engineer the call-back cannot be made now (Twilio's fallback: no database)."""
    speak = Speaker.for_language(settings, settings.default_language)
    return goodbye(VoiceResponse(), speak, "call_back_unavailable")
