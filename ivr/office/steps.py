"""Walk an office caller through the line: greeting, menu, teams, colleagues, reception, voicemail.

Call state (language, misses, tries, department) rides in the query strings of the URLs this
module writes into its own TwiML; Twilio signs them, so nothing is kept in process memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from core.clock import utcnow
from core.settings import Department, Settings
from ivr import calls, params
from ivr.flow import Hours, action_url, goodbye, guarded, hang_up, note
from ivr.hours import describe_hours
from ivr.lines import OFFICE
from ivr.office import menu
from ivr.prompts import Speaker
from tickets.callbacks import record_callback_request

ENGLISH = "en"


def speaker(settings: Settings, args: Mapping[str, str]) -> Speaker:
    """Return the speaker of the language our own URL carries."""
    return Speaker.for_language(settings, params.language(settings, args.get("lang")))


def _team_name(settings: Settings, department: Department, speak: Speaker) -> str:
    """Return how a department is called in the caller's language."""
    return department.names.get(speak.language) or department.names[settings.default_language]


def _note(form: Mapping[str, str], step: str, language: str | None = None) -> None:
    """Append a step to this call's trail in the call log."""
    note(params.sid(form.get("CallSid")), step, language)


# ------------------------------------------------------------------ TwiML builders


def menu_twiml(
    settings: Settings, speak: Speaker, *, misses: int, opening: tuple[str, ...] = ()
) -> VoiceResponse:
    """Offer the menu with barge-in; silence comes back to us as a choice without keys."""
    response = VoiceResponse()
    action = action_url("office.choice", lang=speak.language, misses=misses)
    gather = response.gather(
        action=action,
        method="POST",
        num_digits=1,
        finish_on_key="",
        timeout=settings.office.menu_timeout,
    )
    for key in opening:
        speak.say(gather, key)
    speak.say(gather, "office_menu", **settings.office.menu_keys())
    response.redirect(action, method="POST")
    return response


def offer_voicemail(
    settings: Settings, speak: Speaker, response: VoiceResponse, department: str, *, in_hours: bool
) -> VoiceResponse:
    """Invite a voicemail for `department`; the recording's action stores it."""
    speak.say(response, "voicemail_invitation")
    response.record(
        action=action_url(
            "office.voicemail",
            dept=department,
            lang=speak.language,
            hours="in" if in_hours else "out",
        ),
        method="POST",
        max_length=settings.office.voicemail_max_seconds,
        play_beep=True,
        finish_on_key="#",
    )
    # Twilio skips the action and runs these when nothing at all was recorded.
    return goodbye(response, speak, "voicemail_empty")


def extension_twiml(
    settings: Settings, speak: Speaker, *, tries: int, opening: tuple[str, ...] = ()
) -> VoiceResponse:
    """Ask for a colleague's extension; waiting it out leads to reception."""
    response = VoiceResponse()
    gather = response.gather(
        action=action_url("office.extension", lang=speak.language, tries=tries),
        method="POST",
        finish_on_key="#",
        timeout=settings.office.extension_timeout,
    )
    for key in opening:
        speak.say(gather, key)
    speak.say(gather, "colleague_prompt")
    response.redirect(action_url("office.reception", lang=speak.language), method="POST")
    return response


# ------------------------------------------------------------------ call flow steps


def answer(settings: Settings, form: Mapping[str, str]) -> VoiceResponse:
    """Log the call, greet the caller in the default language and offer the menu."""
    language = settings.default_language
    sid = params.sid(form.get("CallSid"))
    if sid:
        guarded(
            calls.record_call_start,
            sid=sid,
            line=OFFICE,
            from_number=params.raw_caller(form.get("From")) or None,
            to_number=params.text(form.get("To"), 64) or None,
            language=language,
        )
    speak = Speaker.for_language(settings, language)
    return menu_twiml(settings, speak, misses=0, opening=("office_welcome",))


def take_choice(
    settings: Settings, args: Mapping[str, str], form: Mapping[str, str]
) -> VoiceResponse:
    """Act on the key pressed at the menu, or on the silence after it."""
    speak = speaker(settings, args)
    office = settings.office
    misses = params.count(args.get("misses"), limit=office.max_misses)
    choice = menu.route_office_choice(office, form.get("Digits"))
    if choice.kind in ("none", "invalid"):
        _note(form, menu.menu_step(choice.kind))
        explanation = "office_no_input" if choice.kind == "none" else "office_invalid"
        misses += 1
        if misses >= office.max_misses:
            return put_through_to_reception(settings, speak, form, before=(explanation,))
        return menu_twiml(settings, speak, misses=misses, opening=(explanation,))
    key = params.digits(form.get("Digits"))
    if choice.kind == "english":
        english = Speaker.for_language(settings, ENGLISH)
        _note(form, f"lang:{english.language}", language=english.language)
        return menu_twiml(settings, english, misses=misses, opening=("office_welcome",))
    _note(form, menu.menu_step(key))
    if choice.kind == "repeat":
        return menu_twiml(settings, speak, misses=misses)
    if choice.kind == "emergency":
        response = VoiceResponse()
        start = action_url("emergency.start", via="office", lang=speak.language)
        response.redirect(start, method="POST")
        return response
    if choice.kind == "colleague":
        hours = Hours.current(settings)
        if not hours.is_open(menu.office_schedule(settings)):
            return put_through_to_reception(settings, speak, form, hours=hours)
        return extension_twiml(settings, speak, tries=0)
    return reach_department(settings, speak, form, choice.department or "")


def reach_department(
    settings: Settings, speak: Speaker, form: Mapping[str, str], name: str
) -> VoiceResponse:
    """Ring a team while it is open; otherwise say when it opens and offer a voicemail."""
    department = settings.office.departments[name]
    schedule = menu.team_schedule(settings, department)
    team = _team_name(settings, department, speak)
    hours = Hours.current(settings)
    response = VoiceResponse()
    if not hours.is_open(schedule):
        _note(form, f"closed:{name}")
        speak.say(
            response,
            "department_closed",
            department=team,
            next_open=hours.next_open(schedule, speak),
        )
        return offer_voicemail(settings, speak, response, name, in_hours=False)
    speak.say(response, "department_connecting", department=team)
    dial = response.dial(
        action=action_url("office.dialed", dept=name, lang=speak.language),
        method="POST",
        timeout=department.dial_timeout,
    )
    for number in department.numbers:
        dial.number(number)
    return response


def settle_team_dial(
    settings: Settings, args: Mapping[str, str], form: Mapping[str, str]
) -> VoiceResponse:
    """After ringing a team: done if answered, else say when it is available and offer voicemail."""
    speak = speaker(settings, args)
    name = params.text(args.get("dept"), params.MAX_INPUT)
    department = menu.find_department(settings.office, name)
    _note(form, menu.dial_step(name if department else "team", form.get("DialCallStatus")))
    if menu.dial_outcome(form.get("DialCallStatus"), form.get("CallStatus")) != "missed":
        return hang_up()
    if department is None:
        return put_through_to_reception(settings, speak, form)
    schedule = menu.team_schedule(settings, department)
    response = VoiceResponse()
    speak.say(
        response,
        "department_no_answer",
        department=_team_name(settings, department, speak),
        available=describe_hours(schedule, speak),
    )
    return offer_voicemail(settings, speak, response, name, in_hours=True)


def put_through_to_reception(
    settings: Settings,
    speak: Speaker,
    form: Mapping[str, str],
    *,
    before: tuple[str, ...] = (),
    response: VoiceResponse | None = None,
    announce: bool = True,
    hours: Hours | None = None,
) -> VoiceResponse:
    """Ring reception while the office is open; otherwise say when it opens and offer voicemail."""
    response = response or VoiceResponse()
    for key in before:
        speak.say(response, key)
    hours = hours or Hours.current(settings)
    schedule = menu.office_schedule(settings)
    if not hours.is_open(schedule):
        _note(form, "reception:closed")
        speak.say(response, "office_closed", next_open=hours.next_open(schedule, speak))
        return offer_voicemail(settings, speak, response, menu.RECEPTION, in_hours=False)
    _note(form, "reception")
    if announce:
        speak.say(response, "office_to_reception")
    dial = response.dial(
        action=action_url("office.reception_dialed", lang=speak.language),
        method="POST",
        timeout=settings.office.reception_dial_timeout,
    )
    for number in settings.office.reception:
        dial.number(number)
    return response


def settle_reception_dial(
    settings: Settings, args: Mapping[str, str], form: Mapping[str, str]
) -> VoiceResponse:
    """After ringing reception: done if answered, else offer a voicemail."""
    speak = speaker(settings, args)
    _note(form, menu.dial_step(menu.RECEPTION, form.get("DialCallStatus")))
    if menu.dial_outcome(form.get("DialCallStatus"), form.get("CallStatus")) != "missed":
        return hang_up()
    response = VoiceResponse()
    speak.say(response, "reception_no_answer")
    return offer_voicemail(settings, speak, response, menu.RECEPTION, in_hours=True)


def take_extension(
    settings: Settings, args: Mapping[str, str], form: Mapping[str, str]
) -> VoiceResponse:
    """Ring the colleague whose configured extension was typed; never dial the keys themselves."""
    speak = speaker(settings, args)
    office = settings.office
    tries = params.count(args.get("tries"), limit=office.extension_max_tries)
    digits = form.get("Digits")
    if not (digits or "").strip():
        _note(form, "ext:none")
        return put_through_to_reception(settings, speak, form)
    colleague = menu.find_colleague(office, digits)
    if colleague is None:
        _note(form, "ext:unknown")
        tries += 1
        if tries >= office.extension_max_tries:
            return put_through_to_reception(settings, speak, form, before=("colleague_unknown",))
        return extension_twiml(settings, speak, tries=tries, opening=("colleague_unknown",))
    _note(form, f"ext:{colleague.extension}")
    response = VoiceResponse()
    speak.say(response, "colleague_connecting", name=colleague.name)
    dial = response.dial(
        action=action_url("office.colleague_dialed", ext=colleague.extension, lang=speak.language),
        method="POST",
        timeout=office.colleague_dial_timeout,
    )
    dial.number(colleague.number)
    return response


def settle_colleague_dial(
    settings: Settings, args: Mapping[str, str], form: Mapping[str, str]
) -> VoiceResponse:
    """After ringing a colleague: done if answered, else on to reception."""
    speak = speaker(settings, args)
    colleague = menu.find_colleague(settings.office, args.get("ext"))
    target = f"ext{colleague.extension}" if colleague else "ext"
    _note(form, menu.dial_step(target, form.get("DialCallStatus")))
    if menu.dial_outcome(form.get("DialCallStatus"), form.get("CallStatus")) != "missed":
        return hang_up()
    if colleague is None:
        return put_through_to_reception(settings, speak, form)
    response = VoiceResponse()
    speak.say(response, "colleague_no_answer", name=colleague.name)
    return put_through_to_reception(settings, speak, form, response=response, announce=False)


def take_voicemail(
    settings: Settings, args: Mapping[str, str], form: Mapping[str, str]
) -> VoiceResponse:
    """Keep a left message for call-back and thank the caller; an empty one is not kept."""
    speak = speaker(settings, args)
    name = params.text(args.get("dept"), params.MAX_INPUT)
    department = name if menu.find_department(settings.office, name) else menu.RECEPTION
    url = params.recording_url(form.get("RecordingUrl"))
    seconds = params.whole_number(form.get("RecordingDuration"))
    response = VoiceResponse()
    if menu.is_empty_recording(url, seconds):
        _note(form, f"voicemail:{department}:empty")
        return goodbye(response, speak, "voicemail_empty")
    details = {
        # Twilio always sends CallSid; without one the message is still kept, just not deduplicated.
        "call_sid": params.sid(form.get("CallSid")) or f"unknown-{uuid.uuid4().hex}",
        "caller": params.caller_id(form.get("From")),
        "department": department,
        "recording_url": url,
        "recording_sid": params.sid(form.get("RecordingSid")),
        "recording_duration": seconds,
        "in_hours": args.get("hours") == "in",
    }
    # On failure the log line names the recording, which stays in Twilio, for support to find.
    guarded(record_callback_request, context=details, at=utcnow(), **details)
    _note(form, f"voicemail:{department}")
    return goodbye(response, speak, "voicemail_thanks")
