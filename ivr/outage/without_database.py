"""Answer callers from the configuration alone: no database, no call state.

Emergency callers ring every engineer at once, screened as unverified; office callers ring
reception; nobody answering leads to a voicemail that the outage journal keeps. These are
plain functions of the settings and one webhook; the URLs they hand Twilio lead back to the
database-free webhooks of `ivr.outage.routes`.
"""

from __future__ import annotations

from flask import Response, url_for
from twilio.twiml.voice_response import VoiceResponse

from core.settings import Settings
from ivr import params
from ivr.calls import OUTAGE
from ivr.flow import goodbye, hang_up
from ivr.lines import EMERGENCY, OFFICE
from ivr.metrics import counters
from ivr.outage.journal import Journal, write_events
from ivr.outage.webhook import (
    CALL_BACK_BLUEPRINT,
    OUTAGE_VOICEMAIL_ENDPOINT,
    STATUS_ENDPOINT,
    UNVERIFIED_ACCEPT_ENDPOINT,
    Webhook,
    call_status,
    is_engineer_leg,
    is_status_callback,
    journal_events,
    outage_line,
)
from ivr.prompts import Speaker, twiml


def reception_response(settings: Settings, speak: Speaker) -> VoiceResponse:
    """Put an office caller through to reception; if nobody answers, offer a voicemail."""
    response = VoiceResponse()
    speak.say(response, "office_to_reception")
    dial = response.dial(
        timeout=settings.office.reception_dial_timeout,
        action=url_for("outage.dialled", line=OFFICE, lang=speak.language),
        method="POST",
    )
    for number in settings.office.reception:
        dial.number(number)
    return response


def engineers_response(settings: Settings, speak: Speaker, raw_caller: str | None) -> VoiceResponse:
    """Ring every engineer at once, screened as an unverified urgent call."""
    response = VoiceResponse()
    speak.say(response, "technical_problem")
    number = params.caller_id(raw_caller) or "anonymous"
    recording = {}
    if settings.emergency.record_calls:
        speak.say(response, "recording_notice")
        recording = {
            "record": "record-from-answer-dual",
            "recording_status_callback": url_for("outage.recording", line=EMERGENCY),
            "recording_status_callback_method": "POST",
        }
    dial = response.dial(
        timeout=settings.emergency.dial_timeout,
        action=url_for("outage.dialled", line=EMERGENCY, lang=speak.language),
        method="POST",
        **recording,
    )
    screen = url_for("outage.fallback_screen", caller=number)
    for engineer in settings.emergency.engineers:
        dial.number(engineer.number, url=screen, method="POST")
    counters.count_engineers_rung(None, len(settings.emergency.engineers))
    return response


def safe_response(
    settings: Settings, line: str, raw_caller: str | None, *, language: str | None = None
) -> VoiceResponse:
    """Return TwiML that serves a caller of `line` without touching the database."""
    speak = Speaker.for_language(settings, language or settings.default_language)
    if line == EMERGENCY:
        return engineers_response(settings, speak, raw_caller)
    return reception_response(settings, speak)


def screen_unverified(settings: Settings, caller: str) -> VoiceResponse:
    """Ask the engineer to accept an unverified urgent call with 1."""
    speak = Speaker.for_language(settings, settings.default_language)
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1,
        action=url_for("outage.fallback_accept"),
        method="POST",
        timeout=settings.emergency.screen_timeout,
    )
    digits = " ".join(caller.lstrip("+")) if caller and caller != "anonymous" else None
    speak.say(gather, "screen_unverified", caller=digits or speak.text("caller_withheld"))
    response.hangup()
    return response


def accept_unverified(digits: str | None) -> VoiceResponse:
    """Bridge the engineer who pressed 1; hang up on anything else so others keep ringing."""
    response = VoiceResponse()
    if (digits or "").strip() != "1":
        response.hangup()
    return response


def voicemail_response(
    settings: Settings, speak: Speaker, line: str, department: str | None = None
) -> VoiceResponse:
    """Invite the caller to leave a message, journalled by the outage voicemail webhook."""
    response = VoiceResponse()
    query = {"line": line, "lang": speak.language}
    if line == OFFICE and department in settings.office.departments:
        query["dept"] = department
    if line == EMERGENCY:
        speak.say(response, "engineers_unavailable")
        limit = settings.emergency.voicemail_max_seconds
    else:
        speak.say(response, "reception_no_answer")
        speak.say(response, "voicemail_invitation")
        limit = settings.office.voicemail_max_seconds
    response.record(
        action=url_for("outage.voicemail", **query),
        method="POST",
        max_length=limit,
        finish_on_key="#",
        play_beep=True,
    )
    speak.say(response, "voicemail_empty")
    response.hangup()
    return response


def twiml_without_database(settings: Settings, hook: Webhook) -> VoiceResponse | None:
    """Return TwiML that serves this webhook's caller from configuration; None: no body."""
    form, args = hook.form, hook.args
    speak = Speaker.for_language(settings, params.language(settings, args.get("lang")))
    if hook.blueprint == CALL_BACK_BLUEPRINT:
        # The engineer of a call-back hears it cannot be made now; nobody is dialled.
        if is_status_callback(hook) or params.is_final(call_status(hook)):
            return VoiceResponse()
        return goodbye(VoiceResponse(), speak, "call_back_unavailable")
    line = outage_line(settings, hook)
    if hook.endpoint == STATUS_ENDPOINT:
        return None
    if is_status_callback(hook):
        return VoiceResponse()  # Twilio ignores the answer to a progress report
    if is_engineer_leg(hook):
        return _engineer_leg_response(settings, hook, line)
    if params.is_final(call_status(hook)):
        return hang_up()
    dial_status = params.call_status(form.get("DialCallStatus"))
    if dial_status:
        if dial_status == "completed" or (form.get("DialBridged") or "").lower() == "true":
            return goodbye(VoiceResponse(), speak, "goodbye")
        sequential = settings.emergency.ring_strategy == "sequential"
        escalating = sequential or bool(args.get("level"))
        if line == EMERGENCY and escalating and not hook.is_outage_webhook:
            # The flow rang one engineer or one rota level, and the rest of the escalation needs
            # the database: ring the configured engineers instead, unverified.
            return safe_response(settings, line, form.get("From"), language=speak.language)
        return voicemail_response(settings, speak, line, args.get("dept"))
    if form.get("RecordingUrl") or hook.endpoint == OUTAGE_VOICEMAIL_ENDPOINT:
        if not form.get("RecordingUrl"):
            return goodbye(VoiceResponse(), speak, "voicemail_empty")
        key = "emergency_voicemail_thanks" if line == EMERGENCY else "voicemail_thanks"
        return goodbye(VoiceResponse(), speak, key)
    return safe_response(settings, line, form.get("From"), language=speak.language)


def _engineer_leg_response(settings: Settings, hook: Webhook, line: str) -> VoiceResponse:
    """Screen an engineer's leg as unverified, or bridge it; an office colleague just connects."""
    if line != EMERGENCY:
        return VoiceResponse()
    if "Digits" in hook.form or hook.endpoint == UNVERIFIED_ACCEPT_ENDPOINT:
        counters.count_engineer_answer(None, params.digits(hook.form.get("Digits")))
        return accept_unverified(hook.form.get("Digits"))
    caller = (
        params.caller_id(hook.args.get("caller"))
        or params.caller_id(hook.form.get("From"))
        or "anonymous"
    )
    return screen_unverified(settings, caller)


def answer_without_database(
    settings: Settings, journal: Journal, hook: Webhook
) -> Response | tuple:
    """Serve a webhook from configuration alone and journal what it says about the call."""
    write_events(journal, journal_events(settings, hook))
    if hook.endpoint == STATUS_ENDPOINT and params.is_final(call_status(hook)):
        # Counted now: the journal's replay later writes the call log, but counts nothing.
        counters.count_call(outage_line(settings, hook), OUTAGE)
    response = twiml_without_database(settings, hook)
    if response is None:
        return ("", 204)
    return twiml(response)
