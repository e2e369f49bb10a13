"""Put a caller whose PIN could not be confirmed through as unverified: the engineer decides.

Limits on wrong PINs must never keep a real key user off the emergency line, or an attacker
could use them to do exactly that. So a caller who runs out of PIN tries, or whose PIN cannot be
checked now (too many wrong PINs from their number, or from withheld numbers), is offered to go
on unverified: a triage key opens an urgent ticket marked unverified (no contact, no
organisation) and rings the engineers, whose screening says the PIN was not confirmed, or with
`emergency.unverified = "voicemail"` takes a voicemail on it. Silence or odd keys end the call
politely. Nothing the caller typed is dialled or kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from core.db import db
from core.settings import Settings
from ivr import params
from ivr.emergency import pins
from ivr.emergency.intake import ask_triage, put_through, take_triage
from ivr.emergency.state import find_call
from ivr.emergency.triage import triage_choice
from ivr.emergency.voicemail import LineHours, closed_voicemail, offer_voicemail
from ivr.flow import action_url, commit_now, goodbye, note
from ivr.lines import EMERGENCY
from ivr.outage import without_database
from ivr.prompts import Speaker
from tickets.urgent import opening

log = logging.getLogger(__name__)

# Why a caller goes on unverified, riding in our own URL: the tries of one call are used up,
# or the PIN cannot be checked now (pins.LOCKED, pins.PAUSED, pins.UNCOUNTED).
TRIES = "tries"
WHY = (TRIES, pins.LOCKED, pins.PAUSED, pins.UNCOUNTED)
# emergency.unverified: such a caller leaves a voicemail instead of ringing the engineers.
VOICEMAIL = "voicemail"


def because(why: str, caller: str | None) -> str:
    """Return why the caller is not verified, as the ticket's timeline says it."""
    if why == pins.LOCKED:
        source = "this number" if caller else "withheld numbers"
        return f"PIN not checked: too many recent wrong PINs from {source}"
    if why == pins.PAUSED:
        return "PIN not checked: PIN checks were paused line-wide after too many wrong PINs"
    if why == pins.UNCOUNTED:
        return "PIN not checked: the attempt could not be counted"
    return "PIN not confirmed: no right PIN within the tries of one call"


def offer(
    settings: Settings, speak: Speaker, response: VoiceResponse, *, why: str, misses: int = 0
) -> VoiceResponse:
    """Offer to go on as an unverified caller: a triage key goes on, silence says goodbye."""
    if misses == 0:
        speak.say(response, "unverified_offer")
    action = action_url("emergency.unverified", lang=speak.language, why=why, misses=misses)
    ask_triage(settings, speak, response, misses=misses, action=action)
    return response


def take_choice(
    settings: Settings, form: Mapping[str, str], *, language: str, why: str, misses: int
) -> VoiceResponse:
    """Open the unverified ticket on a triage key and ring, or leave a voicemail out of hours."""
    speak = Speaker.for_language(settings, language)
    sid = params.sid(form.get("CallSid"))
    if sid is None:
        return without_database.safe_response(
            settings, EMERGENCY, form.get("From"), language=language
        )
    if find_call(sid) is not None:
        # A retried webhook: the ticket is open, so this is plain triage now.
        return take_triage(settings, form, language=language, misses=misses)
    response = VoiceResponse()
    digits = params.digits(form.get("Digits"))
    step = triage_choice(digits, misses, settings.emergency.triage_max_misses)
    if step.reason is None:
        if step.done:
            note(sid, "unverified:declined")
            return goodbye(response, speak, "pin_failed")
        speak.say(response, "triage_invalid" if digits else "office_no_input")
        return offer(settings, speak, response, why=why, misses=step.misses)
    caller = params.caller_id(form.get("From"))
    line = LineHours(settings)
    # Not guarded, as for a recognised caller: should it fail, the app's error handler serves
    # the caller from configuration.
    call = opening.open_ticket(
        db.session,
        arrival=opening.unverified(reason=step.reason, because=because(why, caller)),
        call_sid=sid,
        line=EMERGENCY,
        caller=caller,
        contact=None,
        in_hours=line.open,
        repeat_window_minutes=settings.emergency.repeat_window_minutes,
        at=line.now,
    )
    # The ticket exists from this moment, even if the caller hangs up a second later.
    commit_now(context=sid, guard=False)
    log.info("unverified emergency call %s (%s): ticket %s", sid, why, call.ticket.number)
    note(sid, f"unverified:{why} ticket:{call.ticket.number} triage:{step.reason}")
    if not line.open:
        return closed_voicemail(settings, speak, response, line, call)
    if settings.emergency.unverified == VOICEMAIL:
        # No phone rings for a caller nobody could verify: the digest tells the engineers.
        speak.say(response, "unverified_voicemail")
        return offer_voicemail(settings, speak, response, call)
    return put_through(settings, speak, response, call)
