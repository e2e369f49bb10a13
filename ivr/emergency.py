"""The emergency line: recognise entitled callers, open an urgent ticket, reach an engineer.

The flow is stateless: each step finds the caller's ticket through the CallSid, and the few
counters it needs (PIN tries, triage misses, which engineer rings) ride in the query strings
of the URLs written into our own TwiML.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlencode

from flask import Blueprint, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from ivr import pins
from ivr.calls import note_step, record_call_start
from ivr.hours import describe_hours, describe_moment, is_open, next_opening
from ivr.lines import EMERGENCY, caller_id
from ivr.outage import without_database
from ivr.prompts import Speaker, twiml
from ivr.settings import Settings
from ivr.signatures import twilio_only
from ivr.triage import (
    SEQUENTIAL,
    caller_key,
    clean_caller,
    clean_digits,
    clean_recording_url,
    clean_sid,
    clean_speech,
    clean_text,
    dial_verdict,
    engineers_to_ring,
    is_locked_out,
    next_engineer,
    parse_confidence,
    parse_count,
    parse_index,
    parse_seconds,
    spoken_digits,
    triage_choice,
)
from tickets import urgent
from tickets.availability import active_announcement, get_hours_override
from tickets.db import db, utcnow
from tickets.directory import find_contact_by_phone, find_contact_by_pin
from tickets.models import Contact, Ticket, TicketCall

log = logging.getLogger(__name__)

bp = Blueprint("emergency", __name__, url_prefix="/voice/emergency")

START_PATH = "/voice/emergency/start"
PIN_PATH = "/voice/emergency/pin"
TRIAGE_PATH = "/voice/emergency/triage"
DESCRIPTION_PATH = "/voice/emergency/description"
DIALLED_PATH = "/voice/emergency/dialled"
SCREEN_PATH = "/voice/emergency/screen"
ACCEPT_PATH = "/voice/emergency/accept"
VOICEMAIL_PATH = "/voice/emergency/voicemail"
RECORDING_PATH = "/voice/emergency/recording"

FINAL_CALL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")


def current_time() -> datetime:
    """Return the current moment from the one clock."""
    return utcnow()


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


def _url(path: str, **params: object) -> str:
    """Return one of our webhook paths with a query string of the non-None `params`."""
    query = urlencode({key: value for key, value in params.items() if value is not None})
    return f"{path}?{query}" if query else path


def _language(settings: Settings, requested: str | None) -> str:
    """Return the caller's language from our query string, defaulting to the default language."""
    return requested if requested in settings.prompts else settings.default_language


def _speaker(settings: Settings, language: str) -> Speaker:
    return Speaker.for_language(settings, language)


def _goodbye(response: VoiceResponse, speak: Speaker, key: str) -> VoiceResponse:
    """Say a closing prompt and hang up."""
    speak.say(response, key)
    response.hangup()
    return response


def _restart(language: str) -> VoiceResponse:
    """Send a call whose ticket cannot be found back to the start, to be recognised again."""
    response = VoiceResponse()
    response.redirect(_url(START_PATH, lang=language), method="POST")
    return response


def _in_hours(settings: Settings, now: datetime) -> bool:
    """Return whether the emergency line is staffed at `now` (schedule plus override)."""
    schedule = settings.schedule_for(settings.emergency.schedule)
    return is_open(
        schedule,
        now,
        zone=settings.zone,
        country=settings.holiday_country,
        override=get_hours_override(db.session),
    )


# ------------------------------------------------------------------ recognising the caller


def answer(settings: Settings, form, *, language: str | None = None) -> VoiceResponse:
    """Answer an emergency call: recognise the caller by caller ID, else ask for a PIN."""
    language = _language(settings, language)
    speak = _speaker(settings, language)
    sid = clean_sid(form.get("CallSid"))
    if sid is None:
        log.warning("emergency call without a usable CallSid; serving it without state")
        return without_database.safe_response(settings, EMERGENCY, form.get("From"))
    session = db.session
    raw_from = clean_caller(form.get("From"))
    record_call_start(
        session,
        sid=sid,
        line=EMERGENCY,
        from_number=raw_from,
        to_number=clean_text(form.get("To"), 64),
        language=language,
    )
    caller = caller_id(raw_from)
    response = VoiceResponse()
    speak.say(response, "emergency_welcome")
    contact = find_contact_by_phone(session, caller)
    if contact is not None:
        return _recognised(
            settings, speak, response, sid=sid, caller=caller, contact=contact, how="caller_id"
        )
    now = current_time()
    key = caller_key(caller)
    if _pin_entry_closed(settings, key, now):
        log.warning("PIN entry is closed for %s (call %s): too many wrong PINs", key, sid)
        note_step(session, sid=sid, step="pin:locked")
        return _goodbye(response, speak, "pin_locked")
    _ask_pin(settings, speak, response, language=language, tries=0)
    return response


def _pin_entry_closed(settings: Settings, key: str, now: datetime) -> bool:
    failures = pins.recent_failures(
        db.session, caller_key=key, minutes=settings.emergency.pin_lockout_minutes, now=now
    )
    return is_locked_out(failures, settings.emergency.pin_lockout_failures)


def _ask_pin(
    settings: Settings, speak: Speaker, response: VoiceResponse, *, language: str, tries: int
) -> None:
    gather = response.gather(
        input="dtmf",
        finish_on_key="#",
        timeout=settings.emergency.pin_timeout,
        action=_url(PIN_PATH, lang=language, tries=tries),
        method="POST",
        action_on_empty_result=True,
    )
    speak.say(gather, "pin_prompt")


def check_pin(settings: Settings, form, *, language: str, tries: int) -> VoiceResponse:
    """Identify a caller by PIN; count and log wrong ones; close entry after too many."""
    speak = _speaker(settings, language)
    response = VoiceResponse()
    sid = clean_sid(form.get("CallSid"))
    if sid is None:
        return _goodbye(response, speak, "pin_failed")
    session = db.session
    now = current_time()
    caller = caller_id(clean_caller(form.get("From")))
    key = caller_key(caller)
    if _pin_entry_closed(settings, key, now):
        log.warning("PIN entry is closed for %s (call %s): too many wrong PINs", key, sid)
        note_step(session, sid=sid, step="pin:locked")
        return _goodbye(response, speak, "pin_locked")
    digits = clean_digits(form.get("Digits"))
    secret = settings.secret_key.get_secret_value()
    contact = find_contact_by_pin(session, digits, secret=secret) if digits else None
    if contact is not None:
        return _recognised(
            settings, speak, response, sid=sid, caller=caller, contact=contact, how="pin"
        )
    tries = max(tries, pins.failures_in_call(session, call_sid=sid)) + 1
    if digits:
        pins.record_pin_failure(session, caller_key=key, call_sid=sid, now=now)
        note_step(session, sid=sid, step="pin:wrong")
        if _pin_entry_closed(settings, key, now):
            log.warning("PIN entry closed for %s after call %s: too many wrong PINs", key, sid)
            return _goodbye(response, speak, "pin_locked")
    if tries >= settings.emergency.pin_max_tries:
        note_step(session, sid=sid, step="pin:failed")
        return _goodbye(response, speak, "pin_failed")
    speak.say(response, "pin_wrong" if digits else "office_no_input")
    _ask_pin(settings, speak, response, language=language, tries=tries)
    return response


def _recognised(
    settings: Settings,
    speak: Speaker,
    response: VoiceResponse,
    *,
    sid: str,
    caller: str | None,
    contact: Contact,
    how: str,
) -> VoiceResponse:
    """Turn away a normal user; open the urgent ticket for a key or super user and go on."""
    session = db.session
    if not contact.is_entitled:
        log.info("emergency call %s from normal user %s: not entitled", sid, contact.id)
        note_step(session, sid=sid, step=f"not_entitled:{how}")
        return _goodbye(response, speak, "not_entitled")
    now = current_time()
    in_hours = _in_hours(settings, now)
    call = urgent.open_urgent_ticket(
        session,
        call_sid=sid,
        line=EMERGENCY,
        caller=caller,
        contact=contact,
        in_hours=in_hours,
        recognised_by=how,
        repeat_window_minutes=settings.emergency.repeat_window_minutes,
        now=now,
    )
    note_step(session, sid=sid, step=f"recognised:{how} ticket:{call.ticket.number}")
    speak.say(
        response,
        "emergency_greeting_known",
        name=contact.name,
        organization=contact.organization.name,
    )
    if not in_hours:
        _closed(settings, speak, response, now)
        return response
    announcement = active_announcement(session, now=now)
    if announcement is not None:
        text = announcement.text_nl
        if speak.language != "nl" and announcement.text_en:
            text = announcement.text_en
        speak.say(response, "announcement", text=text)
    _ask_triage(settings, speak, response, misses=0)
    return response


def _closed(settings: Settings, speak: Speaker, response: VoiceResponse, now: datetime) -> None:
    """Tell when the line is staffed and take a voicemail for the first engineer."""
    schedule = settings.schedule_for(settings.emergency.schedule)
    opening = next_opening(schedule, now, zone=settings.zone, country=settings.holiday_country)
    speak.say(
        response,
        "emergency_closed",
        hours=describe_hours(schedule, speak),
        next_open=describe_moment(opening, now, speak),
    )
    _take_voicemail(settings, speak, response)


def _take_voicemail(settings: Settings, speak: Speaker, response: VoiceResponse) -> None:
    response.record(
        action=_url(VOICEMAIL_PATH, lang=speak.language),
        method="POST",
        max_length=settings.emergency.voicemail_max_seconds,
        finish_on_key="#",
        play_beep=True,
    )
    # Reached only when nothing was recorded: Twilio then skips the action.
    _goodbye(response, speak, "voicemail_empty")


# ------------------------------------------------------------------ triage and description


def _ask_triage(
    settings: Settings, speak: Speaker, response: VoiceResponse, *, misses: int
) -> None:
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=settings.emergency.triage_timeout,
        action=_url(TRIAGE_PATH, lang=speak.language, misses=misses),
        method="POST",
        action_on_empty_result=True,
    )
    speak.say(gather, "triage_menu")


def take_triage(settings: Settings, form, *, language: str, misses: int) -> VoiceResponse:
    """Take the triage key; ask again on odd input, then go on without a reason."""
    speak = _speaker(settings, language)
    session = db.session
    call = urgent.find_ticket_call(session, clean_sid(form.get("CallSid")))
    if call is None:
        return _restart(language)
    digits = clean_digits(form.get("Digits"))
    step = triage_choice(digits, misses, settings.emergency.triage_max_misses)
    response = VoiceResponse()
    if not step.done:
        speak.say(response, "triage_invalid" if digits else "office_no_input")
        _ask_triage(settings, speak, response, misses=step.misses)
        return response
    urgent.record_reason(session, call=call, reason=step.reason, now=current_time())
    note_step(session, sid=call.sid, step=f"triage:{step.reason or 'unknown'}")
    gather = response.gather(
        input="speech dtmf",
        language=settings.emergency.description_language,
        speech_timeout="auto",
        timeout=settings.emergency.description_timeout,
        finish_on_key="#",
        action=_url(DESCRIPTION_PATH, lang=language),
        method="POST",
        action_on_empty_result=True,
    )
    speak.say(gather, "description_prompt")
    return response


def take_description(settings: Settings, form, *, language: str) -> VoiceResponse:
    """Store the spoken description (if any), say the ticket number and ring the engineers."""
    speak = _speaker(settings, language)
    session = db.session
    call = urgent.find_ticket_call(session, clean_sid(form.get("CallSid")))
    if call is None:
        return _restart(language)
    urgent.record_description(
        session,
        call=call,
        text=clean_speech(form.get("SpeechResult")),
        confidence=parse_confidence(form.get("Confidence")),
        now=current_time(),
    )
    response = VoiceResponse()
    key = "ticket_existing" if urgent.is_joined_call(session, call) else "ticket_number"
    speak.say(response, key, digits=spoken_digits(call.ticket.number))
    speak.say(response, "connecting_engineer")
    _ring(settings, response, call, language=language, index=0)
    return response


# ------------------------------------------------------------------ ringing the engineers


def _ring(
    settings: Settings, response: VoiceResponse, call: TicketCall, *, language: str, index: int
) -> None:
    """Add a `<Dial>` of the engineers on duty, each leg screened before it is bridged."""
    line = settings.emergency
    sequential = line.ring_strategy == SEQUENTIAL
    extra = {}
    if line.record_calls:
        extra = {
            "record": "record-from-answer-dual",
            "recording_status_callback": _url(RECORDING_PATH, call=call.sid),
            "recording_status_callback_method": "POST",
        }
    dial = response.dial(
        action=_url(DIALLED_PATH, lang=language, eng=index if sequential else None),
        method="POST",
        timeout=line.dial_timeout,
        **extra,
    )
    rung = []
    for position in engineers_to_ring(line.ring_strategy, len(line.engineers), index):
        engineer = line.engineers[position]
        dial.number(
            engineer.number,
            url=_url(SCREEN_PATH, ticket=call.ticket.number, eng=position),
            method="POST",
        )
        rung.append(engineer.name)
    urgent.record_engineers_rung(db.session, call=call, engineers=rung, now=current_time())


def after_dial(settings: Settings, form, *, language: str, index: int | None) -> VoiceResponse:
    """Finish after ringing: answered, caller gone, next engineer, or a voicemail."""
    speak = _speaker(settings, language)
    session = db.session
    response = VoiceResponse()
    call = urgent.find_ticket_call(session, clean_sid(form.get("CallSid")))
    call_status = (form.get("CallStatus") or "").strip().lower()
    if call is None:
        if call_status in FINAL_CALL_STATUSES:
            response.hangup()
            return response
        return _restart(language)
    verdict = dial_verdict(
        dial_status=form.get("DialCallStatus"),
        call_status=call_status,
        bridged=form.get("DialBridged"),
        accepted=call.answered_at is not None,
    )
    if verdict == "answered":
        urgent.record_dial_outcome(session, call=call, outcome="answered")
        response.hangup()
        return response
    if verdict == "abandoned":
        urgent.record_dial_outcome(session, call=call, outcome="abandoned_while_ringing")
        response.hangup()
        return response
    line = settings.emergency
    following = next_engineer(line.ring_strategy, len(line.engineers), index)
    if following is not None:
        _ring(settings, response, call, language=language, index=following)
        return response
    urgent.record_engineers_unavailable(session, call=call, now=current_time())
    note_step(session, sid=call.sid, step="engineers_unavailable")
    speak.say(response, "engineers_unavailable")
    _take_voicemail(settings, speak, response)
    return response


def _engineer_name(settings: Settings, index: int | None, number: str | None) -> str:
    """Return the configured name of the engineer on this leg."""
    engineers = settings.emergency.engineers
    if index is not None:
        return engineers[index].name
    called = caller_id(clean_caller(number))
    for engineer in engineers:
        if engineer.number == called:
            return engineer.name
    return "unknown engineer"


def screen(
    settings: Settings, form, *, ticket_number: str | None, index: int | None
) -> VoiceResponse:
    """Tell the engineer who calls and why; only a key press of 1 bridges the caller."""
    speak = _speaker(settings, settings.default_language)
    session = db.session
    ticket = urgent.find_ticket(session, ticket_number)
    call = None
    if ticket is not None:
        # The caller on this line, who may have joined a ticket someone else opened.
        call = urgent.find_call_on_ticket(
            session, ticket=ticket, sid=clean_sid(form.get("ParentCallSid"))
        )
    contact = (call.contact if call is not None else None) or (ticket and ticket.contact)
    if ticket is None or contact is None or ticket.organization is None:
        caller = caller_id(clean_caller(form.get("From"))) or "anonymous"
        return without_database.screen_unverified(settings, caller)
    given = (call.reason if call is not None else None) or ticket.reason
    reason = f"reason_{given}" if given else "reason_unknown"
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=settings.emergency.screen_timeout,
        action=_url(ACCEPT_PATH, ticket=ticket.number, eng=index),
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
    settings: Settings, form, *, ticket_number: str | None, index: int | None
) -> VoiceResponse:
    """Bridge the engineer who pressed 1 and note who answered; hang up on anything else."""
    speak = _speaker(settings, settings.default_language)
    session = db.session
    digits = clean_digits(form.get("Digits"))
    accepted = digits == "1"
    engineer = _engineer_name(settings, index, form.get("To"))
    if not digits:
        engineer = f"{engineer} (no key pressed)"
    ticket: Ticket | None = urgent.find_ticket(session, ticket_number)
    if ticket is not None:
        call = urgent.find_call_on_ticket(
            session, ticket=ticket, sid=clean_sid(form.get("ParentCallSid"))
        )
        urgent.record_engineer_response(
            session,
            ticket=ticket,
            call=call,
            engineer=engineer,
            accepted=accepted,
            now=current_time(),
        )
    response = VoiceResponse()
    if accepted:
        speak.say(response, "screen_accepted")
    else:
        response.hangup()
    return response


# ------------------------------------------------------------------ voicemail and recordings


def take_voicemail(settings: Settings, form, *, language: str) -> VoiceResponse:
    """Store the caller's voicemail on the ticket, thank them and hang up."""
    speak = _speaker(settings, language)
    session = db.session
    response = VoiceResponse()
    call = urgent.find_ticket_call(session, clean_sid(form.get("CallSid")))
    url = clean_recording_url(form.get("RecordingUrl"))
    if call is None or url is None:
        return _goodbye(response, speak, "voicemail_empty")
    urgent.record_voicemail(
        session,
        call=call,
        recording_url=url,
        recording_sid=clean_sid(form.get("RecordingSid")),
        duration=parse_seconds(form.get("RecordingDuration")),
        now=current_time(),
    )
    note_step(session, sid=call.sid, step="voicemail")
    speak.say(response, "ticket_number", digits=spoken_digits(call.ticket.number))
    return _goodbye(response, speak, "emergency_voicemail_thanks")


def store_recording(form, *, call_sid: str | None) -> None:
    """Store the recording of a bridged emergency call on its ticket call."""
    status = (form.get("RecordingStatus") or "completed").strip().lower()
    url = clean_recording_url(form.get("RecordingUrl"))
    if status != "completed" or url is None:
        return
    session = db.session
    call = urgent.find_ticket_call(session, clean_sid(form.get("CallSid")))
    call = call or urgent.find_ticket_call(session, clean_sid(call_sid))
    if call is None:
        return
    urgent.record_call_recording(
        session,
        call=call,
        recording_url=url,
        recording_sid=clean_sid(form.get("RecordingSid")),
        duration=parse_seconds(form.get("RecordingDuration")),
        now=current_time(),
    )


def settle_call(settings: Settings, form) -> None:
    """Settle an emergency call's ticket outcome from its final status callback."""
    status = (form.get("CallStatus") or "").strip().lower()
    sid = clean_sid(form.get("CallSid"))
    if sid is None or status not in FINAL_CALL_STATUSES:
        return
    urgent.settle_ticket_call(
        db.session, sid=sid, duration=parse_seconds(form.get("CallDuration")), now=current_time()
    )


# ------------------------------------------------------------------ webhooks


def _caller_language() -> str:
    return _language(_settings(), request.args.get("lang"))


@bp.post("/start")
@twilio_only
def start():
    """Take over a call from the office menu exactly like a call to the emergency number."""
    return twiml(answer(_settings(), request.form, language=request.args.get("lang")))


@bp.post("/pin")
@twilio_only
def pin():
    """Check the PIN a caller typed."""
    settings = _settings()
    tries = parse_count(request.args.get("tries"), limit=settings.emergency.pin_max_tries)
    return twiml(check_pin(settings, request.form, language=_caller_language(), tries=tries))


@bp.post("/triage")
@twilio_only
def triage():
    """Take the triage key: 1 major outage, 2 urgent bug."""
    settings = _settings()
    misses = parse_count(request.args.get("misses"), limit=settings.emergency.triage_max_misses)
    return twiml(take_triage(settings, request.form, language=_caller_language(), misses=misses))


@bp.post("/description")
@twilio_only
def description():
    """Take the optional spoken description and connect to the engineers."""
    return twiml(take_description(_settings(), request.form, language=_caller_language()))


@bp.post("/dialled")
@twilio_only
def dialled():
    """Handle the end of ringing engineers."""
    settings = _settings()
    index = parse_index(request.args.get("eng"), len(settings.emergency.engineers))
    return twiml(after_dial(settings, request.form, language=_caller_language(), index=index))


@bp.post("/screen")
@twilio_only
def screen_engineer():
    """Screen an engineer's leg before bridging."""
    settings = _settings()
    index = parse_index(request.args.get("eng"), len(settings.emergency.engineers))
    return twiml(
        screen(settings, request.form, ticket_number=request.args.get("ticket"), index=index)
    )


@bp.post("/accept")
@twilio_only
def accept_engineer():
    """Take the engineer's answer to the screening question."""
    settings = _settings()
    index = parse_index(request.args.get("eng"), len(settings.emergency.engineers))
    return twiml(
        accept(settings, request.form, ticket_number=request.args.get("ticket"), index=index)
    )


@bp.post("/voicemail")
@twilio_only
def voicemail():
    """Store a voicemail left on the emergency line."""
    return twiml(take_voicemail(_settings(), request.form, language=_caller_language()))


@bp.post("/recording")
@twilio_only
def recording():
    """Store the recording of a bridged call (Twilio's recordingStatusCallback)."""
    store_recording(request.form, call_sid=request.args.get("call"))
    return twiml(VoiceResponse())
