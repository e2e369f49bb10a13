"""Tell a caller whose outage is already a known incident what we know, and let them choose.

Right after triage key 1, while an incident is open that this report did not itself open,
the caller hears their ticket number (as ever, before anything else can happen), then that
the outage is known, since when and that engineers are working on it, support's newest
update in their own words, that updates follow by SMS (only when this caller may be texted:
the one rule of `tickets.caller_texts`), and the choice: 1 to speak to an engineer anyway,
2 to be called back, or hang up. Everything after the ticket number can be cut short with a
key. Silence ends the call politely; the ticket stays open in the incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from twilio.twiml.voice_response import Gather, VoiceResponse

from core.settings import Settings
from ivr import params
from ivr.emergency import everyone_busy
from ivr.emergency.engineers import put_through
from ivr.emergency.state import find_call, restart, say_ticket
from ivr.flow import action_url, goodbye, guarded, note
from ivr.hours import describe_since
from ivr.prompts import Speaker
from tickets import caller_texts, paging
from tickets.incidents import Incident, spoken_text
from tickets.models import TicketCall
from tickets.urgent import timeline

ENGINEER_KEY = "1"


def is_known(incident: Incident | None, now: datetime) -> bool:
    """Return whether an open incident was known before this report (it did not open it)."""
    return incident is not None and incident.is_open and incident.opened_at < now


def _textable(session, *, call: TicketCall, now: datetime) -> bool:
    """Return whether this caller may be texted the incident's updates (caller_texts' rule)."""
    rules = paging.policy()
    if not rules.caller_sms:
        return False
    why = caller_texts.why_not_textable(
        session,
        number=call.caller,
        recognised=call.recognised_by is not None,
        rules=rules.callers,
        now=now,
    )
    return why is None


def _choices(settings: Settings, speak: Speaker, response: VoiceResponse, *, misses: int) -> Gather:
    """Add the `<Gather>` of the choice; the caller's silence comes back to us too."""
    return response.gather(
        input="dtmf",
        num_digits=1,
        timeout=settings.emergency.triage_timeout,
        action=action_url("emergency.known_choice", lang=speak.language, misses=misses),
        method="POST",
        action_on_empty_result=True,
    )


def _say_choices(settings: Settings, speak: Speaker, gather: Gather, call: TicketCall) -> None:
    """Offer 1 (an engineer), 2 (a call-back, when this caller may be called back), hang up."""
    can_call_back = everyone_busy.call_back_number(settings, call) is not None
    speak.say(gather, "incident_choice" if can_call_back else "incident_choice_no_call_back")


def tell(
    settings: Settings,
    speak: Speaker,
    response: VoiceResponse,
    call: TicketCall,
    incident: Incident,
    *,
    now: datetime,
) -> VoiceResponse:
    """Say the ticket number, what is known of the outage, the SMS promise, and the choice."""
    guarded(timeline.record_incident_told, call=call, incident=incident.number, now=now)
    say_ticket(speak, response, call)
    gather = _choices(settings, speak, response, misses=0)
    since = describe_since(incident.opened_at, now, speak, zone=settings.zone)
    speak.say(gather, "incident_known", since=since)
    news = spoken_text(incident)
    if news:
        # Support's own words, read in the voice of the caller's language.
        speak.say(gather, "incident_news", text=news)
    if guarded(_textable, call=call, now=now):
        speak.say(gather, "incident_sms")
    _say_choices(settings, speak, gather, call)
    return response


def take_choice(
    settings: Settings, form: Mapping[str, str], *, language: str, misses: int
) -> VoiceResponse:
    """Put through on 1, queue a call-back on 2, say goodbye on silence; ask again on odd keys."""
    speak = Speaker.for_language(settings, language)
    call = find_call(form.get("CallSid"))
    if call is None:
        return restart(language)
    digits = params.digits(form.get("Digits"))
    response = VoiceResponse()
    if digits == ENGINEER_KEY:
        note(call.sid, "incident:engineer")
        return put_through(settings, speak, response, call, ticket_said=True)
    can_call_back = everyone_busy.call_back_number(settings, call) is not None
    if digits == everyone_busy.CALL_BACK_KEY and can_call_back:
        return everyone_busy.ask_call_back(settings, speak, response, call)
    misses += 1
    if not digits or misses >= settings.emergency.triage_max_misses:
        note(call.sid, "incident:goodbye")
        return goodbye(response, speak, "incident_goodbye")
    speak.say(response, "triage_invalid")
    _say_choices(settings, speak, _choices(settings, speak, response, misses=misses), call)
    return response
