"""Find an emergency call's state, its ticket call, from a webhook; restart the call without it.

The flow is stateless: each step finds the caller's ticket through the CallSid, and the few
counters it needs (PIN tries, triage misses, which engineer rings) ride in the query strings
of the URLs written into our own TwiML.
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from core.db import db
from ivr import params
from ivr.emergency.triage import spoken_digits
from ivr.flow import action_url
from ivr.prompts import Speaker
from tickets.models import TicketCall
from tickets.urgent import opening


def find_call(raw_sid: str | None) -> TicketCall | None:
    """Return the ticket call of a CallSid Twilio sent, if the caller was recognised."""
    return opening.find_ticket_call(db.session, params.sid(raw_sid))


def restart(language: str) -> VoiceResponse:
    """Send a call whose ticket cannot be found back to the start, to be recognised again."""
    response = VoiceResponse()
    response.redirect(action_url("emergency.start", lang=language), method="POST")
    return response


def say_ticket(speak: Speaker, response: VoiceResponse, call: TicketCall) -> None:
    """Say the call's ticket number in one short sentence: a new ticket, or the open one joined."""
    key = "ticket_existing" if opening.is_joined_call(db.session, call) else "ticket_number"
    speak.say(response, key, digits=spoken_digits(call.ticket.number))
