"""Answer the emergency line's webhooks: each reads the request and hands it to one step."""

from __future__ import annotations

from flask import Blueprint, request
from twilio.twiml.voice_response import VoiceResponse

from core.settings import current_settings
from ivr import params
from ivr.emergency import engineers, everyone_busy, identify, intake, known_outage, unverified
from ivr.emergency import voicemail as voicemails
from ivr.flow import webhook
from ivr.prompts import twiml
from tickets.models import ONCALL_LEVELS

bp = Blueprint("emergency", __name__, url_prefix="/voice/emergency")


def _language() -> str:
    """Return the caller's language our own URL carries."""
    return params.language(current_settings(), request.args.get("lang"))


def _engineer_index() -> int | None:
    """Return which configured engineer's leg our own URL is about, if any."""
    return params.index(request.args.get("eng"), len(current_settings().emergency.engineers))


def _staff_id() -> int | None:
    """Return which rota engineer's leg our own URL is about, if any."""
    return params.whole_number(request.args.get("staff"))


def _dial_state() -> engineers.DialState:
    """Return where the escalation stands, from our own `dialled` URL."""
    settings = current_settings()
    return engineers.DialState(
        index=_engineer_index(),
        round=params.count(request.args.get("round"), limit=settings.oncall.rounds),
        level=params.count(request.args.get("level"), limit=max(ONCALL_LEVELS)),
        previous=params.id_list(request.args.get("prev")),
    )


@bp.post("/start")
@webhook
def start():
    """Take over a call from the office menu exactly like a call to the emergency number."""
    return twiml(identify.answer(current_settings(), request.form, language=_language()))


@bp.post("/pin")
@webhook
def pin():
    """Check the PIN a caller typed."""
    settings = current_settings()
    tries = params.count(request.args.get("tries"), limit=settings.emergency.pin_max_tries)
    return twiml(identify.check_pin(settings, request.form, language=_language(), tries=tries))


@bp.post("/unverified", endpoint="unverified")
@webhook
def unverified_caller():
    """Take the triage key of a caller who goes on without a confirmed PIN."""
    settings = current_settings()
    misses = params.count(request.args.get("misses"), limit=settings.emergency.triage_max_misses)
    why = params.choice(request.args.get("why"), unverified.WHY, default=unverified.TRIES)
    return twiml(
        unverified.take_choice(settings, request.form, language=_language(), why=why, misses=misses)
    )


@bp.post("/triage")
@webhook
def triage():
    """Take the triage key: 1 major outage, 2 urgent bug."""
    settings = current_settings()
    misses = params.count(request.args.get("misses"), limit=settings.emergency.triage_max_misses)
    return twiml(intake.take_triage(settings, request.form, language=_language(), misses=misses))


@bp.post("/description")
@webhook
def description():
    """Take the optional spoken description and connect to the engineers."""
    return twiml(intake.take_description(current_settings(), request.form, language=_language()))


@bp.post("/dialled")
@webhook
def dialled():
    """Handle the end of ringing engineers."""
    return twiml(
        engineers.settle_engineer_dial(
            current_settings(), request.form, language=_language(), state=_dial_state()
        )
    )


def _engineer_leg(step):
    """Run a step on an engineer's leg: which ticket, which engineer and level our URL names."""
    state = _dial_state()
    leg = engineers.Leg(
        ticket_number=request.args.get("ticket"),
        index=state.index,
        staff_id=_staff_id(),
        level=state.level,
        round=state.round,
    )
    return twiml(step(current_settings(), request.form, leg))


@bp.post("/screen")
@webhook
def screen_engineer():
    """Screen an engineer's leg before bridging."""
    return _engineer_leg(engineers.screen)


@bp.post("/accept")
@webhook
def accept_engineer():
    """Take the engineer's answer to the screening question."""
    return _engineer_leg(engineers.accept)


@bp.post("/voicemail")
@webhook
def voicemail():
    """Store a voicemail left on the emergency line."""
    return twiml(voicemails.take_voicemail(current_settings(), request.form, language=_language()))


@bp.post("/transcript")
@webhook
def transcript():
    """Store what Twilio's real-time transcription heard on a voicemail."""
    voicemails.take_transcript(request.form)
    return twiml(VoiceResponse())


@bp.post("/recording")
@webhook
def recording():
    """Store the recording of a bridged call (Twilio's recordingStatusCallback)."""
    voicemails.store_recording(request.form, call_sid=request.args.get("call"))
    return twiml(VoiceResponse())


@bp.post("/busy")
@webhook
def busy_choice():
    """Take the key after hearing every engineer is on a call: 2 a call-back, else a voicemail."""
    return twiml(everyone_busy.take_choice(current_settings(), request.form, language=_language()))


@bp.post("/known")
@webhook
def known_choice():
    """Take the key after hearing the outage is known: 1 an engineer, 2 a call-back."""
    settings = current_settings()
    misses = params.count(request.args.get("misses"), limit=settings.emergency.triage_max_misses)
    return twiml(
        known_outage.take_choice(settings, request.form, language=_language(), misses=misses)
    )
