"""Answer a request whose handler raised, so a caller never hears Twilio's "application error"."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

from core.db import db, is_database_busy, is_database_unreachable
from core.log_redaction import redact
from ivr.outage.routes import is_voice_webhook, respond_without_database
from ivr.prompts import twiml
from ivr.signatures import is_support_path

log = logging.getLogger(__name__)

# How soon a request the database was too busy for may try again.
RETRY_AFTER_SECONDS = 2
BUSY_PAGE = "The database is busy right now; try again in a moment. Calls are still answered."


def register_error_handler(app: Flask) -> None:
    """Answer any failure inside a voice webhook with TwiML that still serves the caller."""

    @app.errorhandler(Exception)
    def _serve_caller_anyway(exc: Exception):
        if isinstance(exc, HTTPException):
            return exc
        return answer_failed_request(exc)


def answer_failed_request(exc: Exception):
    """Answer a request whose handler raised: callers are served, others get a 503/500.

    Only a webhook that could not reach the database marks it down for this process: a
    support request has connections of its own (their pool running dry says nothing about the
    webhooks'), and a statement the server cancelled fails its own request alone.
    """
    unreachable = is_database_unreachable(exc)
    busy = is_database_busy(exc)
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the database may be the thing that is down
        log.warning("rollback after a failed request also failed")
    outage = current_app.extensions.get("outage")
    if unreachable and outage is not None and not is_support_path(request.path):
        outage.health.mark_down()
    if request.path.startswith("/sms/"):
        # Twilio's messaging webhooks: say nothing rather than 500; the sender may reply later.
        log.exception("messaging webhook %s failed", redact(request.path))
        return Response(str(MessagingResponse()), 200, mimetype="text/xml")
    if not is_voice_webhook():
        return _answer_failed_page(exc, unreachable=unreachable, busy=busy)
    path = redact(request.path)
    if unreachable:
        log.error("voice webhook %s: database unavailable; serving the caller without it", path)
    elif busy:
        log.error("voice webhook %s: a statement failed (%s); serving the caller without it",
                  path, _sqlstate(exc))  # fmt: skip
    else:
        log.exception("voice webhook %s failed; serving the caller without it", path)
    try:
        return respond_without_database()
    except Exception:  # noqa: BLE001 - last resort: the caller must hear something
        log.exception("serving %s without the database failed too", path)
        response = VoiceResponse()
        response.hangup()
        return twiml(response)


def _sqlstate(exc: Exception) -> str:
    """Name a database error for the log: its SQLSTATE, or its class."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or type(orig or exc).__name__


def _answer_failed_page(exc: Exception, *, unreachable: bool, busy: bool):
    """Answer a failed dashboard, API or health request with a 503 or 500."""
    path = redact(request.path)  # a calendar feed's path is its key
    # The API's paths (/api/...) are a fixed interface; its blueprints may be split or renamed.
    api = request.path.startswith("/api/")
    if busy and (is_support_path(request.path) or not unreachable):
        # A cancelled statement, a lock, or all of support's connections in use: the database
        # is there, this request just did not get its turn.
        log.warning("database busy on %s (%s)", path, _sqlstate(exc))
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if api:
            return {"error": "database busy; try again", "code": "busy"}, 503, headers
        return Response(BUSY_PAGE, 503, headers, mimetype="text/plain")
    if unreachable:
        log.error("database unavailable on %s (%s)", path, type(exc).__name__)
        if api:
            return {"error": "database unavailable"}, 503
        return Response("Database unavailable; calls are still answered.", 503)
    log.exception("unhandled error on %s", path)
    if api:
        return {"error": "internal error"}, 500
    return Response("Internal error.", 500)
