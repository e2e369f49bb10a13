"""Recognise an emergency caller by caller ID or PIN, and open the urgent ticket."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from twilio.twiml.voice_response import VoiceResponse

from core.clock import utcnow
from core.db import db
from core.settings import Settings
from ivr import calls, params
from ivr.emergency import pins, unverified
from ivr.emergency.intake import ask_triage
from ivr.emergency.triage import caller_key
from ivr.emergency.voicemail import LineHours, closed_voicemail
from ivr.flow import action_url, commit_now, goodbye, guarded, note
from ivr.lines import EMERGENCY
from ivr.outage import without_database
from ivr.prompts import Speaker
from tickets.availability import active_announcement
from tickets.directory import find_contact_by_phone, find_contact_by_pin
from tickets.models import Contact
from tickets.urgent import opening

log = logging.getLogger(__name__)


def answer(
    settings: Settings, form: Mapping[str, str], *, language: str | None = None
) -> VoiceResponse:
    """Answer an emergency call: recognise the caller by caller ID, else ask for a PIN."""
    language = params.language(settings, language)
    speak = Speaker.for_language(settings, language)
    sid = params.sid(form.get("CallSid"))
    if sid is None:
        log.warning("emergency call without a usable CallSid; serving it without state")
        return without_database.safe_response(settings, EMERGENCY, form.get("From"))
    raw_from = params.raw_caller(form.get("From"))
    guarded(
        calls.record_call_start,
        sid=sid,
        line=EMERGENCY,
        from_number=raw_from or None,
        to_number=params.text(form.get("To"), 64) or None,
        language=language,
    )
    caller = params.caller_id(raw_from)
    response = VoiceResponse()
    contact = find_contact_by_phone(db.session, caller)
    if contact is not None:
        return _recognised(
            settings, speak, response, sid=sid, caller=caller, contact=contact, how="caller_id"
        )
    speak.say(response, "emergency_welcome")
    key = caller_key(caller)
    why = pins.why_unchecked(db.session, caller_key=key, limits=settings.emergency, now=utcnow())
    if why is not None:
        return _pin_unavailable(settings, speak, response, sid=sid, key=key, why=why)
    _ask_pin(settings, speak, response, tries=0)
    return response


def _pin_unavailable(
    settings: Settings, speak: Speaker, response: VoiceResponse, *, sid: str, key: str, why: str
) -> VoiceResponse:
    """Say that PINs cannot be checked now and offer to go on unverified: never a refusal."""
    if why == pins.PAUSED:
        log.warning("PIN checks are paused line-wide (call %s): offering to go on unverified", sid)
    else:
        log.warning("PIN entry is closed for %s (call %s): offering to go on unverified", key, sid)
    note(sid, f"pin:{why}")
    speak.say(response, "pin_unavailable")
    return unverified.offer(settings, speak, response, why=why)


def _ask_pin(settings: Settings, speak: Speaker, response: VoiceResponse, *, tries: int) -> None:
    """Add the question for the caller's PIN; silence comes back to us as an empty answer."""
    gather = response.gather(
        input="dtmf",
        finish_on_key="#",
        timeout=settings.emergency.pin_timeout,
        action=action_url("emergency.pin", lang=speak.language, tries=tries),
        method="POST",
        action_on_empty_result=True,
    )
    speak.say(gather, "pin_prompt")


def check_pin(
    settings: Settings, form: Mapping[str, str], *, language: str, tries: int
) -> VoiceResponse:
    """Identify a caller by PIN; count and log wrong ones; offer the unverified path after."""
    speak = Speaker.for_language(settings, language)
    response = VoiceResponse()
    sid = params.sid(form.get("CallSid"))
    if sid is None:
        return goodbye(response, speak, "pin_failed")
    session = db.session
    now = utcnow()
    caller = params.caller_id(form.get("From"))
    key = caller_key(caller)
    limits = settings.emergency
    why = pins.why_unchecked(session, caller_key=key, limits=limits, now=now)
    if why is not None:
        return _pin_unavailable(settings, speak, response, sid=sid, key=key, why=why)
    digits = params.digits(form.get("Digits"))
    if not digits:
        tries = max(tries, pins.failures_in_call(session, call_sid=sid)) + 1
        speak.say(response, "office_no_input")
        return _ask_again(settings, speak, response, sid=sid, tries=tries)
    # The attempt is counted as wrong before its PIN is checked, so calls checking PINs at the
    # same moment see each other and cannot together get past the limits. One refused here
    # stays counted; one that cannot be counted is not checked either.
    attempt = guarded(pins.record_pin_failure, caller_key=key, call_sid=sid, now=now)
    if attempt is None or not commit_now(context=sid):
        why = pins.UNCOUNTED
    else:
        why = pins.why_unchecked(session, caller_key=key, limits=limits, now=now, counted=1)
    if why is not None:
        return _pin_unavailable(settings, speak, response, sid=sid, key=key, why=why)
    # One keyed hash and one indexed look-up, whoever calls and whatever they typed.
    contact = find_contact_by_pin(session, digits, secret=settings.secret_key.get_secret_value())
    if contact is not None:
        guarded(pins.forget_pin_failure, failure=attempt)
        return _recognised(
            settings, speak, response, sid=sid, caller=caller, contact=contact, how="pin"
        )
    log.warning("wrong PIN on the emergency line from %s (call %s)", key, sid)
    note(sid, "pin:wrong")
    speak.say(response, "pin_wrong")
    why = pins.why_unchecked(session, caller_key=key, limits=limits, now=now)
    if why is not None:
        log.warning("no more PINs checked for %s after call %s (%s)", key, sid, why)
        note(sid, f"pin:{why}")
        return unverified.offer(settings, speak, response, why=why)
    tries = max(tries + 1, pins.failures_in_call(session, call_sid=sid))
    return _ask_again(settings, speak, response, sid=sid, tries=tries)


def _ask_again(
    settings: Settings, speak: Speaker, response: VoiceResponse, *, sid: str, tries: int
) -> VoiceResponse:
    """Ask for the PIN once more, or offer to go on unverified when the tries are used up."""
    if tries >= settings.emergency.pin_max_tries:
        note(sid, "pin:failed")
        return unverified.offer(settings, speak, response, why=unverified.TRIES)
    _ask_pin(settings, speak, response, tries=tries)
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
    if not contact.is_entitled:
        log.info("emergency call %s from normal user %s: not entitled", sid, contact.id)
        note(sid, f"not_entitled:{how}")
        return goodbye(response, speak, "not_entitled")
    line = LineHours(settings)
    # Not guarded: every later step finds the caller through this ticket call; should it fail,
    # the app's error handler serves the caller from configuration.
    call = opening.open_ticket(
        db.session,
        arrival=opening.recognised(contact, how),
        call_sid=sid,
        line=EMERGENCY,
        caller=caller,
        contact=contact,
        in_hours=line.open,
        repeat_window_minutes=settings.emergency.repeat_window_minutes,
        at=line.now,
        may_exist=not calls.is_new_call(db.session, sid),
    )
    # The ticket exists from this moment, even if the caller hangs up a second later.
    commit_now(context=sid, guard=False)
    note(sid, f"recognised:{how} ticket:{call.ticket.number}")
    # One greeting that names the caller: who they are tells them they were recognised.
    speak.say(
        response,
        "emergency_greeting_known" if how == "caller_id" else "emergency_greeting_pin",
        name=contact.name,
        organization=contact.organization.name,
    )
    if not line.open:
        return closed_voicemail(settings, speak, response, line, call)
    _announce(speak, response, line.now)
    ask_triage(settings, speak, response, misses=0)
    return response


def _announce(speak: Speaker, response: VoiceResponse, now: datetime) -> None:
    """Read out support's current announcement (a known outage), if there is one."""
    announcement = active_announcement(db.session, now=now)
    if announcement is not None:
        text = announcement.text_nl
        if speak.language != "nl" and announcement.text_en:
            text = announcement.text_en
        speak.say(response, "announcement", text=text)
