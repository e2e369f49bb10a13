"""Reach an engineer for an urgent ticket: ring, screen each leg, bridge the one who accepts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from twilio.twiml.voice_response import VoiceResponse

from core.clock import utcnow
from core.db import db
from core.settings import Settings, current_settings
from ivr import params
from ivr.emergency import everyone_busy
from ivr.emergency.state import find_call, restart, say_ticket
from ivr.emergency.triage import (
    SEQUENTIAL,
    RingStep,
    dial_verdict,
    engineers_to_ring,
    next_engineer,
    next_ring_step,
    spoken_digits,
    without_busy,
)
from ivr.emergency.voicemail import offer_voicemail
from ivr.flow import action_url, commit_now, engineer_name, guarded, hang_up, note
from ivr.messaging.aftercall import after_call
from ivr.metrics import counters
from ivr.outage import without_database
from ivr.prompts import Speaker
from tickets import paging, rota
from tickets.busy import busy_numbers
from tickets.models import Ticket, TicketCall
from tickets.urgent import opening, outcomes, timeline


def _recording(settings: Settings, call: TicketCall) -> dict:
    """Return the `<Dial>` attributes that record a bridged call, when recording is on."""
    if not settings.emergency.record_calls:
        return {}
    # From answer: the caller is never recorded while they only hear ringing.
    return {
        "record": "record-from-answer-dual",
        "recording_status_callback": action_url("emergency.recording", call=call.sid),
        "recording_status_callback_method": "POST",
    }


def put_through(
    settings: Settings,
    speak: Speaker,
    response: VoiceResponse,
    call: TicketCall,
    *,
    ticket_said: bool = False,
) -> VoiceResponse:
    """Say the ticket number (unless said), the recording notice, and ring the engineers.

    When every engineer is on a call, nobody is rung: the caller hears so and is offered a
    call-back or a voicemail.
    """
    if not ticket_said:
        say_ticket(speak, response, call)
    if ring(settings, response, call, speak=speak):
        return response
    return everyone_busy.offer(settings, speak, response, call)


def busy_now(settings: Settings, *, except_sid: str | None = None) -> frozenset[str]:
    """Return the phones of engineers on one of the line's calls now (none when unknown)."""
    stale_after = timedelta(minutes=settings.emergency.busy_stale_minutes)
    found = guarded(busy_numbers, now=utcnow(), stale_after=stale_after, except_sid=except_sid)
    return found or frozenset()


def ring(settings: Settings, response: VoiceResponse, call: TicketCall, *, speak: Speaker) -> bool:
    """Add the recording notice and the first `<Dial>`, leaving out engineers on a call.

    Level 1 of the rota rings first, or the configured engineers when the rota names nobody.
    Return False, adding nothing, when every one of them is on a call: nobody rings a busy
    phone (the caller is offered a call-back instead).
    """
    busy_phones = busy_now(settings)
    levels = oncall_levels()
    language = speak.language
    if not levels:
        return ring_configured(
            settings, response, call, language=language, index=0, busy=busy_phones, notice=speak
        )
    free = without_busy(levels, busy_phones)
    step = next_ring_step(free, rounds=settings.oncall.rounds, after=None)
    if step is None:
        return False
    ring_level(settings, response, call, language=language, step=step, notice=speak)
    return True


def oncall_levels() -> list[tuple[int, tuple[tuple[int, str], ...]]]:
    """Return who is on call now, as (level, (staff id, phone)); empty when nobody is."""
    levels = guarded(rota.on_call_at, at=utcnow()) or []
    return [
        (level.level, tuple((e.staff_id, e.phone) for e in level.engineers[:10]))
        for level in levels
    ]


def _say_notice(settings: Settings, response: VoiceResponse, notice: Speaker | None) -> None:
    """Say the recording notice before the first `<Dial>` of a recorded call."""
    if notice is not None and settings.emergency.record_calls:
        notice.say(response, "recording_notice")


def ring_level(
    settings: Settings,
    response: VoiceResponse,
    call: TicketCall,
    *,
    language: str,
    step: RingStep,
    notice: Speaker | None = None,
) -> None:
    """Add a `<Dial>` of one rota level's engineers at once, each leg screened."""
    _say_notice(settings, response, notice)
    dial = response.dial(
        action=action_url(
            "emergency.dialled",
            lang=language,
            round=step.round,
            level=step.level,
            prev=",".join(map(str, step.staff_ids)),
        ),
        method="POST",
        timeout=settings.oncall.ring_seconds(step.level),
        **_recording(settings, call),
    )
    rung = []
    for staff in rota.engineers_by_id(db.session, step.staff_ids):
        screen_url = action_url(
            "emergency.screen_engineer",
            ticket=call.ticket.number,
            staff=staff.staff_id,
            level=step.level,
            round=step.round,
        )
        dial.number(staff.phone, url=screen_url, method="POST")
        rung.append(staff.name)
    counters.count_engineers_rung(step.level, len(rung))
    guarded(
        timeline.record_engineers_rung,
        call=call,
        engineers=rung,
        level=step.level,
        round=step.round,
        now=utcnow(),
    )


def ring_configured(
    settings: Settings,
    response: VoiceResponse,
    call: TicketCall,
    *,
    language: str,
    index: int,
    busy: frozenset[str] = frozenset(),
    notice: Speaker | None = None,
) -> bool:
    """Add a `<Dial>` of the configured engineers (no rota now), each leg screened.

    Engineers whose phone is `busy` are left out; return False, adding nothing, when that
    leaves nobody to ring.
    """
    line = settings.emergency
    on_a_call = frozenset(p for p, e in enumerate(line.engineers) if e.number in busy)
    positions = engineers_to_ring(line.ring_strategy, len(line.engineers), index, on_a_call)
    if not positions:
        return False
    _say_notice(settings, response, notice)
    sequential = line.ring_strategy == SEQUENTIAL
    dial = response.dial(
        action=action_url(
            "emergency.dialled", lang=language, eng=positions[0] if sequential else None
        ),
        method="POST",
        timeout=line.dial_timeout,
        **_recording(settings, call),
    )
    rung = []
    for position in positions:
        engineer = line.engineers[position]
        screen_url = action_url(
            "emergency.screen_engineer", ticket=call.ticket.number, eng=position
        )
        dial.number(engineer.number, url=screen_url, method="POST")
        rung.append(engineer.name)
    counters.count_engineers_rung(None, len(rung))
    guarded(timeline.record_engineers_rung, call=call, engineers=rung, now=utcnow())
    return True


@dataclass(frozen=True)
class DialState:
    """Where the escalation stands, from our own `dialled` URL."""

    index: int | None = None  # the configured engineer rung last (sequential)
    round: int = 0  # with `level`: the rota step rung last
    level: int = 0
    previous: frozenset[int] = frozenset()

    @property
    def on_rota(self) -> bool:
        """Return whether the last dial rang a rota level."""
        return self.round > 0 and self.level > 0


def settle_engineer_dial(
    settings: Settings, form: Mapping[str, str], *, language: str, state: DialState
) -> VoiceResponse:
    """Finish after ringing: answered, caller gone, the next level or engineer, or a voicemail."""
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
        guarded(outcomes.record_dial_outcome, call=call, outcome=outcome)
        return hang_up()
    response = VoiceResponse()
    again = _ring_again(settings, response, call, language=language, state=state)
    if again == RANG:
        return response
    if again == ALL_BUSY:
        return everyone_busy.offer(settings, speak, response, call)
    guarded(outcomes.record_engineers_unavailable, call=call, now=utcnow())
    note(call.sid, "engineers_unavailable")
    speak.say(response, "engineers_unavailable")
    return offer_voicemail(settings, speak, response, call)


# What `_ring_again` did: rang the next step; found only engineers on a call; found nobody.
RANG, ALL_BUSY, NOBODY = "rang", "busy", "nobody"


def _ring_again(
    settings: Settings,
    response: VoiceResponse,
    call: TicketCall,
    *,
    language: str,
    state: DialState,
) -> str:
    """Add the next `<Dial>` of the escalation, leaving out engineers on a call; say how it went.

    Busy engineers are asked about again at each step: a level whose people are all on a call
    is passed by now and rung in the next round if one of them is free by then.
    """
    busy_phones = busy_now(settings)
    if state.on_rota:
        levels = oncall_levels()
        after = (state.round, state.level)
        rounds, previous = settings.oncall.rounds, state.previous
        step = next_ring_step(
            without_busy(levels, busy_phones), rounds=rounds, after=after, previous=previous
        )
        if step is not None:
            ring_level(settings, response, call, language=language, step=step)
            return RANG
        if levels:
            anyone = next_ring_step(
                without_busy(levels, frozenset()), rounds=rounds, after=after, previous=previous
            )
            phones = {phone for _, engineers in levels for _, phone in engineers}
            return ALL_BUSY if anyone is not None else _busy_or_nobody(phones, busy_phones)
        # The rota emptied during the call (a shift ended): the configured engineers are next.
        index = 0
    else:
        line = settings.emergency
        index = next_engineer(line.ring_strategy, len(line.engineers), state.index)
        if index is None:
            return _busy_or_nobody({e.number for e in line.engineers}, busy_phones)
    rang = ring_configured(
        settings, response, call, language=language, index=index, busy=busy_phones
    )
    return RANG if rang else ALL_BUSY


def _busy_or_nobody(phones: set[str], busy_phones: frozenset[str]) -> str:
    """At the escalation's end: everyone on a call now (they took others while this one rang)
    is not "nobody answered", and the caller is offered a call-back rather than a voicemail."""
    return ALL_BUSY if phones and phones <= busy_phones else NOBODY


def _engineer(
    settings: Settings, index: int | None, staff_id: int | None, number: str | None
) -> tuple[str, str | None]:
    """Return the name and phone of the engineer on this leg: rota, configuration, or number."""
    if staff_id is not None:
        found = rota.engineers_by_id(db.session, (staff_id,))
        if found:
            return found[0].name, found[0].phone
    if index is not None:
        engineer = settings.emergency.engineers[index]
        return engineer.name, engineer.number
    return engineer_name(settings, db.session, number), params.caller_id(number)


def _ticket_and_call(
    form: Mapping[str, str], ticket_number: str | None
) -> tuple[Ticket | None, TicketCall | None]:
    """Return the ticket of an engineer's leg, and the caller's call on it (who may have joined)."""
    parent = params.sid(form.get("ParentCallSid"))
    return opening.find_ticket_and_call(db.session, number=ticket_number, sid=parent)


@dataclass(frozen=True)
class Leg:
    """Which engineer's leg a screening webhook is about, as our own URL says."""

    ticket_number: str | None
    index: int | None = None  # a configured engineer
    staff_id: int | None = None  # an engineer of the rota
    level: int = 0
    round: int = 0


def screen(settings: Settings, form: Mapping[str, str], leg: Leg) -> VoiceResponse:
    """Tell the engineer who calls and why; only a key press of 1 bridges the caller."""
    speak = Speaker.for_language(settings, settings.default_language)
    ticket, call = _ticket_and_call(form, leg.ticket_number)
    name, phone = _engineer(settings, leg.index, leg.staff_id, form.get("To"))
    if phone and phone in busy_now(settings, except_sid=call.sid if call is not None else None):
        # Accepted another call since this one began ringing: their phone rings for no other.
        note(call.sid if call is not None else None, "engineer_busy")
        return hang_up()
    given = (call.reason if call is not None else None) or (ticket and ticket.reason)
    reason = speak.text(f"reason_{given}" if given else "reason_unknown")
    if ticket is not None and not ticket.verified and not ticket.from_journal:
        # A caller who went on without a confirmed PIN: the engineer decides.
        caller = (call.caller if call is not None else None) or ticket.caller
        return _ask_to_accept(
            settings,
            speak,
            ticket,
            leg,
            "screen_unverified_pin",
            caller=spoken_digits(caller.lstrip("+")) if caller else speak.text("caller_withheld"),
            reason=reason,
        )
    contact = (call.contact if call is not None else None) or (ticket and ticket.contact)
    if ticket is None or contact is None or ticket.organization is None:
        caller = params.caller_id(form.get("From")) or "anonymous"
        return without_database.screen_unverified(settings, caller)
    return _ask_to_accept(
        settings,
        speak,
        ticket,
        leg,
        "screen_prompt",
        organization=ticket.organization.name,
        name=contact.name,
        reason=reason,
    )


def _ask_to_accept(
    settings: Settings, speak: Speaker, ticket: Ticket, leg: Leg, prompt: str, **values: str
) -> VoiceResponse:
    """Say the screening `prompt` to the engineer and wait for the 1 that accepts."""
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=settings.emergency.screen_timeout,
        action=action_url(
            "emergency.accept_engineer",
            ticket=ticket.number,
            eng=leg.index,
            staff=leg.staff_id,
            level=leg.level or None,
            round=leg.round or None,
        ),
        method="POST",
        # Silence is reported too, so the timeline shows an engineer who did not accept.
        action_on_empty_result=True,
    )
    speak.say(gather, prompt, **values)
    # Should the action not be asked (a voicemail, a pocket): refuse this leg, others ring on.
    response.hangup()
    return response


def accept(settings: Settings, form: Mapping[str, str], leg: Leg) -> VoiceResponse:
    """Bridge the engineer who pressed 1 and note who answered; hang up on anything else."""
    speak = Speaker.for_language(settings, settings.default_language)
    digits = params.digits(form.get("Digits"))
    accepted = digits == "1"
    counters.count_engineer_answer(leg.level, digits)
    engineer, phone = _engineer(settings, leg.index, leg.staff_id, form.get("To"))
    if not digits:
        engineer = f"{engineer} (no key pressed)"
    ticket, call = _ticket_and_call(form, leg.ticket_number)
    if ticket is not None:
        guarded(
            timeline.record_engineer_response,
            ticket=ticket,
            call=call,
            engineer=engineer,
            accepted=accepted,
            place=timeline.rota_place(leg.level, leg.round),
            engineer_phone=phone,
            now=utcnow(),
        )
        # Who answered is never lost, whatever happens to the rest of the bridge.
        commit_now(context=leg.ticket_number)
    if not accepted:
        return hang_up()
    response = VoiceResponse()
    speak.say(response, "screen_accepted")
    return response


def settle_call(form: Mapping[str, str]) -> TicketCall | None:
    """Settle an emergency call's ticket outcome from its final status callback.

    Return the call's ticket call, if it has one (and the database answered).
    """
    sid = params.sid(form.get("CallSid"))
    if sid is None or not params.is_final(form.get("CallStatus")):
        return None
    settings = current_settings()
    call = guarded(
        outcomes.settle_ticket_call,
        sid=sid,
        duration=params.whole_number(form.get("CallDuration")),
        now=utcnow(),
        then=after_call(settings, paging.policy()),
    )
    # The call's end, with the paging and texts it causes, stands on its own.
    commit_now(context=sid)
    return call
