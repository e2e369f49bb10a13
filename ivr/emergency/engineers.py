"""Reach an engineer for an urgent ticket: ring, screen each leg, bridge the one who accepts."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from ivr import params
from ivr.emergency.state import find_call, restart
from ivr.emergency.triage import SEQUENTIAL, dial_verdict, engineers_to_ring, next_engineer
from ivr.emergency.voicemail import offer_voicemail
from ivr.flow import action_url, find_engineer, guarded, hang_up, note
from ivr.outage import without_database
from ivr.prompts import Speaker
from ivr.settings import Settings
from tickets import urgent
from tickets.db import db, utcnow
from tickets.models import Ticket, TicketCall


def ring(
    settings: Settings, response: VoiceResponse, call: TicketCall, *, language: str, index: int
) -> None:
    """Add a `<Dial>` of the engineers on duty, each leg screened before it is bridged."""
    line = settings.emergency
    sequential = line.ring_strategy == SEQUENTIAL
    extra = {}
    if line.record_calls:
        extra = {
            "record": "record-from-answer-dual",
            "recording_status_callback": action_url("emergency.recording", call=call.sid),
            "recording_status_callback_method": "POST",
        }
    dial = response.dial(
        action=action_url("emergency.dialled", lang=language, eng=index if sequential else None),
        method="POST",
        timeout=line.dial_timeout,
        **extra,
    )
    rung = []
    for position in engineers_to_ring(line.ring_strategy, len(line.engineers), index):
        engineer = line.engineers[position]
        screen_url = action_url(
            "emergency.screen_engineer", ticket=call.ticket.number, eng=position
        )
        dial.number(engineer.number, url=screen_url, method="POST")
        rung.append(engineer.name)
    guarded(urgent.record_engineers_rung, call=call, engineers=rung, now=utcnow())


def settle_engineer_dial(
    settings: Settings, form: Mapping[str, str], *, language: str, index: int | None
) -> VoiceResponse:
    """Finish after ringing: answered, caller gone, next engineer, or a voicemail."""
    speak = Speaker.for_language(settings, language)
    call = find_call(form.get("CallSid"))
    if call is None:
        return hang_up() if params.is_final(form.get("CallStatus")) else restart(language)
    verdict = dial_verdict(
        dial_status=form.get("DialCallStatus"),
        call_status=form.get("CallStatus"),
        bridged=form.get("DialBridged"),
        accepted=call.answered_at is not None,
    )
    if verdict in ("answered", "abandoned"):
        outcome = "answered" if verdict == "answered" else "abandoned_while_ringing"
        guarded(urgent.record_dial_outcome, call=call, outcome=outcome)
        return hang_up()
    response = VoiceResponse()
    line = settings.emergency
    following = next_engineer(line.ring_strategy, len(line.engineers), index)
    if following is not None:
        ring(settings, response, call, language=language, index=following)
        return response
    guarded(urgent.record_engineers_unavailable, call=call, now=utcnow())
    note(call.sid, "engineers_unavailable")
    speak.say(response, "engineers_unavailable")
    return offer_voicemail(settings, speak, response)


def _engineer_name(settings: Settings, index: int | None, number: str | None) -> str:
    """Return the configured name of the engineer on this leg."""
    if index is not None:
        return settings.emergency.engineers[index].name
    engineer = find_engineer(settings, number)
    return engineer.name if engineer is not None else "unknown engineer"


def _ticket_and_call(
    form: Mapping[str, str], ticket_number: str | None
) -> tuple[Ticket | None, TicketCall | None]:
    """Return the ticket of an engineer's leg, and the caller's call on it (who may have joined)."""
    ticket = urgent.find_ticket(db.session, ticket_number)
    if ticket is None:
        return None, None
    parent = params.sid(form.get("ParentCallSid"))
    return ticket, urgent.find_call_on_ticket(db.session, ticket=ticket, sid=parent)


def screen(
    settings: Settings, form: Mapping[str, str], *, ticket_number: str | None, index: int | None
) -> VoiceResponse:
    """Tell the engineer who calls and why; only a key press of 1 bridges the caller."""
    speak = Speaker.for_language(settings, settings.default_language)
    ticket, call = _ticket_and_call(form, ticket_number)
    contact = (call.contact if call is not None else None) or (ticket and ticket.contact)
    if ticket is None or contact is None or ticket.organization is None:
        caller = params.caller_id(form.get("From")) or "anonymous"
        return without_database.screen_unverified(settings, caller)
    given = (call.reason if call is not None else None) or ticket.reason
    reason = f"reason_{given}" if given else "reason_unknown"
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=settings.emergency.screen_timeout,
        action=action_url("emergency.accept_engineer", ticket=ticket.number, eng=index),
        method="POST",
        # Silence is reported too, so the timeline shows an engineer who did not accept.
        action_on_empty_result=True,
    )
    speak.say(
        gather,
        "screen_prompt",
        organization=ticket.organization.name,
        name=contact.name,
        reason=speak.text(reason),
    )
    # Should the action not be asked (a voicemail, a pocket): refuse this leg, others ring on.
    response.hangup()
    return response


def accept(
    settings: Settings, form: Mapping[str, str], *, ticket_number: str | None, index: int | None
) -> VoiceResponse:
    """Bridge the engineer who pressed 1 and note who answered; hang up on anything else."""
    speak = Speaker.for_language(settings, settings.default_language)
    digits = params.digits(form.get("Digits"))
    accepted = digits == "1"
    engineer = _engineer_name(settings, index, form.get("To"))
    if not digits:
        engineer = f"{engineer} (no key pressed)"
    ticket, call = _ticket_and_call(form, ticket_number)
    if ticket is not None:
        guarded(
            urgent.record_engineer_response,
            ticket=ticket,
            call=call,
            engineer=engineer,
            accepted=accepted,
            now=utcnow(),
        )
    if not accepted:
        return hang_up()
    response = VoiceResponse()
    speak.say(response, "screen_accepted")
    return response


def settle_call(form: Mapping[str, str]) -> None:
    """Settle an emergency call's ticket outcome from its final status callback."""
    sid = params.sid(form.get("CallSid"))
    if sid is None or not params.is_final(form.get("CallStatus")):
        return
    guarded(
        urgent.settle_ticket_call,
        sid=sid,
        duration=params.whole_number(form.get("CallDuration")),
        now=utcnow(),
    )
