"""Answer a request whose handler raised, so a caller never hears Twilio's "application error"."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

from core.db import db, is_database_unreachable
from core.log_redaction import redact
from ivr.outage.routes import is_voice_webhook, respond_without_database
from ivr.prompts import twiml

log = logging.getLogger(__name__)


def register_error_handler(app: Flask) -> None:
    """Answer any failure inside a voice webhook with TwiML that still serves the caller."""

    @app.errorhandler(Exception)
    def _serve_caller_anyway(exc: Exception):
        if isinstance(exc, HTTPException):
            return exc
        return answer_failed_request(exc)


def answer_failed_request(exc: Exception):
    """Answer a request whose handler raised: callers are served, others get a 503/500."""
    database = is_database_unreachable(exc)
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the database may be the thing that is down
        log.warning("rollback after a failed request also failed")
    outage = current_app.extensions.get("outage")
    if database and outage is not None:
        outage.health.mark_down()
    if request.path.startswith("/sms/"):
        # Twilio's messaging webhooks: say nothing rather than 500; the sender may reply later.
        log.exception("messaging webhook %s failed", redact(request.path))
        return Response(str(MessagingResponse()), 200, mimetype="text/xml")
    if not is_voice_webhook():
        return _answer_failed_page(exc, database=database)
    path = redact(request.path)
    if database:
        log.error("voice webhook %s: database unavailable; serving the caller without it", path)
    else:
        log.exception("voice webhook %s failed; serving the caller without it", path)
    try:
        return respond_without_database()
    except Exception:  # noqa: BLE001 - last resort: the caller must hear something
        log.exception("serving %s without the database failed too", path)
        response = VoiceResponse()
        response.hangup()
        return twiml(response)


def _answer_failed_page(exc: Exception, *, database: bool):
    """Answer a failed dashboard, API or health request with a 503 or 500."""
    path = redact(request.path)  # a calendar feed's path is its key
    # The API's paths (/api/...) are a fixed interface; its blueprints may be split or renamed.
    api = request.path.startswith("/api/")
    if database:
        log.error("database unavailable on %s (%s)", path, type(exc).__name__)
        if api:
            return {"error": "database unavailable"}, 503
        return Response("Database unavailable; calls are still answered.", 503)
    log.exception("unhandled error on %s", path)
    if api:
        return {"error": "internal error"}, 500
    return Response("Internal error.", 500)
