"""Reach an engineer for an urgent ticket: ring, screen each leg, bridge the one who accepts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from core.clock import utcnow
from core.db import db
from core.settings import Settings, current_settings
from ivr import params
from ivr.emergency.state import find_call, restart
from ivr.emergency.triage import (
    SEQUENTIAL,
    RingStep,
    dial_verdict,
    engineers_to_ring,
    next_engineer,
    next_ring_step,
    spoken_digits,
)
from ivr.emergency.voicemail import offer_voicemail
from ivr.flow import action_url, commit_now, engineer_name, guarded, hang_up, note
from ivr.messaging.aftercall import after_call
from ivr.metrics import counters
from ivr.outage import without_database
from ivr.prompts import Speaker
from tickets import paging, rota
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


def ring(settings: Settings, response: VoiceResponse, call: TicketCall, *, language: str) -> None:
    """Add the first `<Dial>`: level 1 of the rota, or the configured engineers without one."""
    levels = oncall_levels()
    step = next_ring_step(levels, rounds=settings.oncall.rounds, after=None)
    if step is None:
        ring_configured(settings, response, call, language=language, index=0)
    else:
        ring_level(settings, response, call, language=language, step=step)


def oncall_levels() -> list[tuple[int, tuple[int, ...]]]:
    """Return who is on call now, as (level, staff ids); empty when the rota names nobody."""
    levels = guarded(rota.on_call_at, at=utcnow()) or []
    return [(level.level, tuple(e.staff_id for e in level.engineers[:10])) for level in levels]


def ring_level(
    settings: Settings, response: VoiceResponse, call: TicketCall, *, language: str, step: RingStep
) -> None:
    """Add a `<Dial>` of one rota level's engineers at once, each leg screened."""
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
    settings: Settings, response: VoiceResponse, call: TicketCall, *, language: str, index: int
) -> None:
    """Add a `<Dial>` of the configured engineers (no rota now), each leg screened."""
    line = settings.emergency
    sequential = line.ring_strategy == SEQUENTIAL
    dial = response.dial(
        action=action_url("emergency.dialled", lang=language, eng=index if sequential else None),
        method="POST",
        timeout=line.dial_timeout,
        **_recording(settings, call),
    )
    rung = []
    for position in engineers_to_ring(line.ring_strategy, len(line.engineers), index):
        engineer = line.engineers[position]
        screen_url = action_url(
            "emergency.screen_engineer", ticket=call.ticket.number, eng=position
        )
        dial.number(engineer.number, url=screen_url, method="POST")
        rung.append(engineer.name)
    counters.count_engineers_rung(None, len(rung))
    guarded(timeline.record_engineers_rung, call=call, engineers=rung, now=utcnow())


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
    if _ring_again(settings, response, call, language=language, state=state):
        return response
    guarded(outcomes.record_engineers_unavailable, call=call, now=utcnow())
    note(call.sid, "engineers_unavailable")
    speak.say(response, "engineers_unavailable")
    return offer_voicemail(settings, speak, response, call)


def _ring_again(
    settings: Settings,
    response: VoiceResponse,
    call: TicketCall,
    *,
    language: str,
    state: DialState,
) -> bool:
    """Add the next `<Dial>` of the escalation, if there is one; return whether there was."""
    if state.on_rota:
        levels = oncall_levels()
        step = next_ring_step(
            levels,
            rounds=settings.oncall.rounds,
            after=(state.round, state.level),
            previous=state.previous,
        )
        if step is not None:
            ring_level(settings, response, call, language=language, step=step)
            return True
        if levels:
            return False
        # The rota emptied during the call (a shift ended): the configured engineers are next.
        ring_configured(settings, response, call, language=language, index=0)
        return True
    line = settings.emergency
    following = next_engineer(line.ring_strategy, len(line.engineers), state.index)
    if following is None:
        return False
    ring_configured(settings, response, call, language=language, index=following)
    return True


def _engineer_name(
    settings: Settings, index: int | None, staff_id: int | None, number: str | None
) -> str:
    """Return the name of the engineer on this leg: rota, configuration, or by number."""
    if staff_id is not None:
        found = rota.engineers_by_id(db.session, (staff_id,))
        if found:
            return found[0].name
    if index is not None:
        return settings.emergency.engineers[index].name
    return engineer_name(settings, db.session, number)


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
    engineer = _engineer_name(settings, leg.index, leg.staff_id, form.get("To"))
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
