"""The office line: greeting, four-option menu, teams, colleagues, reception and voicemail.

Call state (language, misses, tries, department) rides in the query strings of the URLs this
module writes into its own TwiML; Twilio signs them, so nothing is kept in process memory.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlencode

from flask import Blueprint, current_app, request
from sqlalchemy.exc import (
    SQLAlchemyError,
)
from twilio.twiml.voice_response import VoiceResponse

from ivr import calls, menus
from ivr.hours import describe_hours, describe_moment, is_open, next_opening
from ivr.lines import OFFICE, caller_id
from ivr.prompts import Speaker, twiml
from ivr.settings import Department, Schedule, Settings
from ivr.signatures import twilio_only
from tickets.availability import OVERRIDE_MODES, get_hours_override
from tickets.callbacks import record_callback_request
from tickets.db import db, is_database_unreachable, utcnow

log = logging.getLogger(__name__)

bp = Blueprint("office", __name__, url_prefix="/voice/office")

ENGLISH = "en"
EMERGENCY_START = "/voice/emergency/start"

T = TypeVar("T")


# ------------------------------------------------------------------ small helpers


def current_time() -> datetime:
    """Return the current moment from the one clock."""
    return utcnow()


def office_url(step: str, **state: object) -> str:
    """Return the relative URL of an office step, with the call state in its query."""
    return f"{bp.url_prefix}/{step}?{urlencode(state)}"


def _clean(value: str | None, limit: int = 64) -> str:
    """Return an untrusted form value without control characters, cut to `limit`."""
    return "".join(ch for ch in (value or "")[: limit * 4] if ch.isprintable())[:limit].strip()


def _guarded(action: Callable[..., T], /, *, context: object = None, **kwargs: object) -> T | None:
    """Run a database service function; when one write fails, log it and carry on.

    An unreachable database is re-raised instead: the app's outage handling then serves the
    caller from configuration, journals the call for replay and spares the next webhooks the
    wait, which a flow swallowing the error would prevent.
    """
    try:
        return action(db.session, **kwargs)
    except SQLAlchemyError as exc:
        try:
            db.session.rollback()
        except SQLAlchemyError:
            log.warning("rollback after the failed %s also failed", action.__name__)
        if is_database_unreachable(exc):
            log.error("database unreachable in %s; handing over (%s)", action.__name__, context)
            raise
        log.exception("%s failed; serving the caller without it (%s)", action.__name__, context)
        return None


def _note(form: Mapping[str, str], step: str, language: str | None = None) -> None:
    """Append a step to the call's trail in the call log, if the call is known."""
    sid = _clean(form.get("CallSid"))
    if sid:
        _guarded(calls.note_step, sid=sid, step=step, language=language)


def _override() -> str:
    """Return support's working-hours override; 'auto' when the database cannot say."""
    mode = _guarded(get_hours_override)
    return mode if mode in OVERRIDE_MODES else "auto"


def _speaker(settings: Settings, args: Mapping[str, str]) -> Speaker:
    """Return the speaker of the language our own URL carries."""
    return Speaker.for_language(settings, menus.pick_language(settings, args.get("lang")))


def _team_name(settings: Settings, department: Department, speak: Speaker) -> str:
    """Return how a department is called in the caller's language."""
    return department.names.get(speak.language) or department.names[settings.default_language]


class Hours:
    """Opening-hours questions about one moment, with support's override applied."""

    def __init__(self, settings: Settings, now: datetime, override: str) -> None:
        self.settings = settings
        self.now = now
        self.override = override

    @classmethod
    def current(cls, settings: Settings) -> Hours:
        """Return the hours as they stand for this request."""
        return cls(settings, current_time(), _override())

    def is_open(self, schedule: Schedule) -> bool:
        """Return whether `schedule` is open now."""
        return is_open(
            schedule,
            self.now,
            zone=self.settings.zone,
            country=self.settings.holiday_country,
            override=self.override,
        )

    def next_open(self, schedule: Schedule, speak: Speaker) -> str:
        """Say when `schedule` opens next ('at a later time' while forced closed)."""
        moment = None
        if self.override != "closed":
            moment = next_opening(
                schedule, self.now, zone=self.settings.zone, country=self.settings.holiday_country
            )
        return describe_moment(moment, self.now, speak)


# ------------------------------------------------------------------ TwiML builders


def menu_twiml(
    settings: Settings, speak: Speaker, *, misses: int, opening: tuple[str, ...] = ()
) -> VoiceResponse:
    """Offer the menu with barge-in; silence comes back to us as a choice without keys."""
    response = VoiceResponse()
    action = office_url("choice", lang=speak.language, misses=misses)
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
    response: VoiceResponse, settings: Settings, speak: Speaker, department: str, *, in_hours: bool
) -> VoiceResponse:
    """Invite a voicemail for `department`; the recording's action stores it."""
    speak.say(response, "voicemail_invitation")
    response.record(
        action=office_url(
            "voicemail", dept=department, lang=speak.language, hours="in" if in_hours else "out"
        ),
        method="POST",
        max_length=settings.office.voicemail_max_seconds,
        play_beep=True,
        finish_on_key="#",
    )
    # Twilio skips the action and runs these when nothing at all was recorded.
    speak.say(response, "voicemail_empty")
    response.hangup()
    return response


def extension_twiml(
    settings: Settings, speak: Speaker, *, tries: int, opening: tuple[str, ...] = ()
) -> VoiceResponse:
    """Ask for a colleague's extension; waiting it out leads to reception."""
    response = VoiceResponse()
    gather = response.gather(
        action=office_url("extension", lang=speak.language, tries=tries),
        method="POST",
        finish_on_key="#",
        timeout=settings.office.extension_timeout,
    )
    for key in opening:
        speak.say(gather, key)
    speak.say(gather, "colleague_prompt")
    response.redirect(office_url("reception", lang=speak.language), method="POST")
    return response


def hang_up() -> VoiceResponse:
    """End the call: the conversation is over or the caller has gone."""
    response = VoiceResponse()
    response.hangup()
    return response


# ------------------------------------------------------------------ call flow steps


def answer(settings: Settings, form: Mapping[str, str]) -> VoiceResponse:
    """Log the call, greet the caller in the default language and offer the menu."""
    language = settings.default_language
    sid = _clean(form.get("CallSid"))
    if sid:
        _guarded(
            calls.record_call_start,
            sid=sid,
            line=OFFICE,
            from_number=_clean(form.get("From")) or None,
            to_number=_clean(form.get("To")) or None,
            language=language,
        )
    speak = Speaker.for_language(settings, language)
    return menu_twiml(settings, speak, misses=0, opening=("office_welcome",))


def take_choice(
    settings: Settings, args: Mapping[str, str], form: Mapping[str, str]
) -> VoiceResponse:
    """Act on the key pressed at the menu, or on the silence after it."""
    speak = _speaker(settings, args)
    office = settings.office
    misses = menus.read_count(args.get("misses"), limit=office.max_misses)
    choice = menus.route_office_choice(office, form.get("Digits"))
    if choice.kind in ("none", "invalid"):
        _note(form, f"menu:{choice.kind}")
        explanation = "office_no_input" if choice.kind == "none" else "office_invalid"
        misses += 1
        if misses >= office.max_misses:
            return put_through_to_reception(settings, speak, form, before=(explanation,))
        return menu_twiml(settings, speak, misses=misses, opening=(explanation,))
    key = form.get("Digits", "").strip()
    if choice.kind == "english":
        english = Speaker.for_language(settings, ENGLISH)
        _note(form, f"lang:{english.language}", language=english.language)
        return menu_twiml(settings, english, misses=misses, opening=("office_welcome",))
    _note(form, f"menu:{key}")
    if choice.kind == "repeat":
        return menu_twiml(settings, speak, misses=misses)
    if choice.kind == "emergency":
        response = VoiceResponse()
        query = urlencode({"via": "office", "lang": speak.language})
        response.redirect(f"{EMERGENCY_START}?{query}", method="POST")
        return response
    if choice.kind == "colleague":
        hours = Hours.current(settings)
        if not hours.is_open(menus.office_schedule(settings)):
            return put_through_to_reception(settings, speak, form, hours=hours)
        return extension_twiml(settings, speak, tries=0)
    return reach_department(settings, speak, form, choice.department or "")


def reach_department(
    settings: Settings, speak: Speaker, form: Mapping[str, str], name: str
) -> VoiceResponse:
    """Ring a team while it is open; otherwise say when it opens and offer a voicemail."""
    department = settings.office.departments[name]
    schedule = menus.team_schedule(settings, department)
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
        return offer_voicemail(response, settings, speak, name, in_hours=False)
    speak.say(response, "department_connecting", department=team)
    dial = response.dial(
        action=office_url("dialed", dept=name, lang=speak.language),
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
    speak = _speaker(settings, args)
    name = _clean(args.get("dept"), menus.MAX_INPUT)
    department = menus.find_department(settings.office, name)
    _note(form, menus.dial_step(name if department else "team", form.get("DialCallStatus")))
    if menus.dial_outcome(form.get("DialCallStatus"), form.get("CallStatus")) != "missed":
        return hang_up()
    if department is None:
        return put_through_to_reception(settings, speak, form)
    schedule = menus.team_schedule(settings, department)
    response = VoiceResponse()
    speak.say(
        response,
        "department_no_answer",
        department=_team_name(settings, department, speak),
        available=describe_hours(schedule, speak),
    )
    return offer_voicemail(response, settings, speak, name, in_hours=True)


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
    schedule = menus.office_schedule(settings)
    if not hours.is_open(schedule):
        _note(form, "reception:closed")
        speak.say(response, "office_closed", next_open=hours.next_open(schedule, speak))
        return offer_voicemail(response, settings, speak, menus.RECEPTION, in_hours=False)
    _note(form, "reception")
    if announce:
        speak.say(response, "office_to_reception")
    dial = response.dial(
        action=office_url("reception-dialed", lang=speak.language),
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
    speak = _speaker(settings, args)
    _note(form, menus.dial_step(menus.RECEPTION, form.get("DialCallStatus")))
    if menus.dial_outcome(form.get("DialCallStatus"), form.get("CallStatus")) != "missed":
        return hang_up()
    response = VoiceResponse()
    speak.say(response, "reception_no_answer")
    return offer_voicemail(response, settings, speak, menus.RECEPTION, in_hours=True)


def take_extension(
    settings: Settings, args: Mapping[str, str], form: Mapping[str, str]
) -> VoiceResponse:
    """Ring the colleague whose configured extension was typed; never dial the keys themselves."""
    speak = _speaker(settings, args)
    office = settings.office
    tries = menus.read_count(args.get("tries"), limit=office.extension_max_tries)
    digits = form.get("Digits")
    if not (digits or "").strip():
        _note(form, "ext:none")
        return put_through_to_reception(settings, speak, form)
    colleague = menus.find_colleague(office, digits)
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
        action=office_url("colleague-dialed", ext=colleague.extension, lang=speak.language),
        method="POST",
        timeout=office.colleague_dial_timeout,
    )
    dial.number(colleague.number)
    return response


def settle_colleague_dial(
    settings: Settings, args: Mapping[str, str], form: Mapping[str, str]
) -> VoiceResponse:
    """After ringing a colleague: done if answered, else on to reception."""
    speak = _speaker(settings, args)
    colleague = menus.find_colleague(settings.office, args.get("ext"))
    target = f"ext{colleague.extension}" if colleague else "ext"
    _note(form, menus.dial_step(target, form.get("DialCallStatus")))
    if menus.dial_outcome(form.get("DialCallStatus"), form.get("CallStatus")) != "missed":
        return hang_up()
    if colleague is None:
        return put_through_to_reception(settings, speak, form)
    response = VoiceResponse()
    speak.say(response, "colleague_no_answer", name=colleague.name)
    return put_through_to_reception(settings, speak, form, response=response, announce=False)


def store_voicemail(
    settings: Settings, args: Mapping[str, str], form: Mapping[str, str]
) -> VoiceResponse:
    """Keep a left message for call-back and thank the caller; an empty one is not kept."""
    speak = _speaker(settings, args)
    name = _clean(args.get("dept"), menus.MAX_INPUT)
    department = name if menus.find_department(settings.office, name) else menus.RECEPTION
    url = menus.recording_link(form.get("RecordingUrl"))
    seconds = menus.recording_seconds(form.get("RecordingDuration"))
    response = VoiceResponse()
    if menus.is_empty_recording(url, seconds):
        _note(form, f"voicemail:{department}:empty")
        speak.say(response, "voicemail_empty")
        response.hangup()
        return response
    details = {
        # Twilio always sends CallSid; without one the message is still kept, just not deduplicated.
        "call_sid": _clean(form.get("CallSid")) or f"unknown-{uuid.uuid4().hex}",
        "caller": caller_id(form.get("From")),
        "department": department,
        "recording_url": url,
        "recording_sid": _clean(form.get("RecordingSid")) or None,
        "recording_duration": seconds,
        "in_hours": args.get("hours") == "in",
    }
    # On failure the log line names the recording, which stays in Twilio, for support to find.
    _guarded(record_callback_request, context=details, at=current_time(), **details)
    _note(form, f"voicemail:{department}")
    speak.say(response, "voicemail_thanks")
    response.hangup()
    return response


# ------------------------------------------------------------------ webhooks


def _settings() -> Settings:
    """Return the running service's settings."""
    return current_app.config["SETTINGS"]


@bp.post("/menu")
@twilio_only
def menu():
    """Offer the menu again (for flows that send a caller back to it)."""
    settings = _settings()
    misses = menus.read_count(request.args.get("misses"), limit=settings.office.max_misses)
    return twiml(menu_twiml(settings, _speaker(settings, request.args), misses=misses))


@bp.post("/choice")
@twilio_only
def choice():
    """Act on the menu key (or silence)."""
    return twiml(take_choice(_settings(), request.args, request.form))


@bp.post("/dialed")
@twilio_only
def dialed():
    """Handle the end of ringing a department."""
    return twiml(settle_team_dial(_settings(), request.args, request.form))


@bp.post("/extension")
@twilio_only
def extension():
    """Act on the extension the caller typed."""
    return twiml(take_extension(_settings(), request.args, request.form))


@bp.post("/colleague-dialed")
@twilio_only
def colleague_dialed():
    """Handle the end of ringing a colleague."""
    return twiml(settle_colleague_dial(_settings(), request.args, request.form))


@bp.post("/reception")
@twilio_only
def reception():
    """Put the caller through to reception (after waiting at the extension prompt)."""
    settings = _settings()
    speak = _speaker(settings, request.args)
    return twiml(put_through_to_reception(settings, speak, request.form))


@bp.post("/reception-dialed")
@twilio_only
def reception_dialed():
    """Handle the end of ringing reception."""
    return twiml(settle_reception_dial(_settings(), request.args, request.form))


@bp.post("/voicemail")
@twilio_only
def voicemail():
    """Store the voicemail the caller left."""
    return twiml(store_voicemail(_settings(), request.args, request.form))
