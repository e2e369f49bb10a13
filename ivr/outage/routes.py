"""Serve callers without the database: the fallback and outage webhooks, and the short cut.

`/voice/fallback` is where Twilio goes when our primary handler failed; `/voice/fallback/*`
and `/voice/outage/*` are the URLs our database-free TwiML hands Twilio. While this process
knows the database is down, every other voice webhook is served the same way at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, Response, abort, current_app, request

from core.settings import Settings
from ivr.outage.detection import DatabaseHealth
from ivr.outage.journal import Journal
from ivr.outage.webhook import Webhook
from ivr.outage.without_database import answer_without_database
from ivr.signatures import request_is_from_twilio, twilio_only

log = logging.getLogger(__name__)

bp = Blueprint("outage", __name__, url_prefix="/voice")

# The blueprints whose webhooks Twilio calls for a call; all but ours use the database.
VOICE_BLUEPRINTS = frozenset({"voice", "office", "emergency", "call_back", "outage"})


@dataclass
class Outage:
    """The outage machinery of one app: its journal and its database hint."""

    settings: Settings
    journal: Journal
    health: DatabaseHealth


def current_outage() -> Outage:
    """Return the outage machinery of the running app."""
    return current_app.extensions["outage"]


def current_webhook() -> Webhook:
    """Return the webhook being served, as the outage machinery reads it."""
    return Webhook(
        endpoint=request.endpoint, path=request.path, args=request.args, form=request.form
    )


def is_voice_webhook() -> bool:
    """Return whether the current request is a webhook Twilio makes for a call."""
    return request.blueprint in VOICE_BLUEPRINTS


def respond_without_database() -> Response | tuple:
    """Serve the current webhook from configuration alone and journal what it tells us."""
    outage = current_outage()
    return answer_without_database(outage.settings, outage.journal, current_webhook())


def skip_database_while_down():
    """Answer webhooks without the database while it is known to be down."""
    if not is_voice_webhook() or request.blueprint == bp.name or request.method != "POST":
        return None
    if not current_outage().health.looks_down():
        return None
    if not request_is_from_twilio():
        log.warning("rejected unsigned or badly signed request to %s", request.path)
        abort(403)
    return respond_without_database()


@bp.post("/fallback")
@twilio_only
def fallback_call():
    """Serve a caller when the primary handler failed: no database, no call state."""
    form = request.form
    log.error(
        "fallback used for call %s: ErrorCode=%s ErrorUrl=%s",
        form.get("CallSid"),
        form.get("ErrorCode"),
        form.get("ErrorUrl"),
    )
    return respond_without_database()


@bp.post("/fallback/screen")
@twilio_only
def fallback_screen():
    """Screen an engineer's leg of an unverified emergency call."""
    return respond_without_database()


@bp.post("/fallback/accept")
@twilio_only
def fallback_accept():
    """Bridge the engineer who pressed 1."""
    return respond_without_database()


@bp.post("/outage/dialled")
@twilio_only
def dialled():
    """Finish the outage dial: goodbye after a conversation, otherwise a voicemail."""
    return respond_without_database()


@bp.post("/outage/voicemail")
@twilio_only
def voicemail():
    """Journal a voicemail left during the outage and thank the caller."""
    return respond_without_database()


@bp.post("/outage/recording")
@twilio_only
def recording():
    """Journal the recording of a conversation held during the outage."""
    return respond_without_database()
