"""Serve callers while the database is away: notice it fast, answer without it, journal the call.

Three parts. Connections to PostgreSQL are guarded so an unreachable server fails within
`database_timeout_seconds` (a protocol-level probe before each new connection, a TCP user
timeout on open ones). A per-process hint remembers for `database_retry_seconds` that the
database just failed, so the next webhooks do not wait for it again; it holds no call state.
And `answer_without_database` turns any webhook into TwiML that serves the caller from the
configuration alone (emergency callers ring the engineers, screened as unverified; office
callers ring reception) while what happened is written to the outage journal for replay.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import psycopg
from flask import Blueprint, Flask, Response, abort, current_app, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from twilio.twiml.voice_response import VoiceResponse

from ivr import fallback
from ivr.deadlines import watch_engine
from ivr.emergency.routes import DESCRIPTION_PATH, TRIAGE_PATH
from ivr.emergency.triage import reason_for_key
from ivr.journal import Journal
from ivr.lines import EMERGENCY, OFFICE, line_for_number
from ivr.params import caller_id
from ivr.params import sid as clean_sid
from ivr.params import speech as clean_speech
from ivr.prompts import Speaker, twiml
from ivr.settings import Settings
from ivr.signatures import request_is_from_twilio, twilio_only
from tickets.db import db, is_database_unreachable
from tickets.models import REASONS

log = logging.getLogger(__name__)

bp = Blueprint("outage", __name__, url_prefix="/voice/outage")

VOICEMAIL_PATH = "/voice/outage/voicemail"

# Webhooks that never touch the database, so they need no short cut while it is down.
OUTAGE_PATHS = ("/voice/fallback", "/voice/outage/")
DATABASE_FREE_PATHS = OUTAGE_PATHS

CALL_FINAL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")

# PostgreSQL's SSLRequest: any live server answers it with one byte, before authentication.
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


class DatabaseHealth:
    """This process's hint that the database failed a moment ago; holds no call state."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        self._down_until = 0.0
        self._lock = threading.Lock()

    def looks_down(self) -> bool:
        """Return whether the database failed less than `retry_after` seconds ago."""
        return time.monotonic() < self._down_until

    def mark_down(self) -> None:
        """Remember that the database just failed."""
        with self._lock:
            self._down_until = time.monotonic() + self.retry_after

    def mark_up(self) -> None:
        """Forget an earlier failure: the database answered."""
        with self._lock:
            self._down_until = 0.0


@dataclass
class Outage:
    """The outage machinery of one app: its journal and its database hint."""

    settings: Settings
    journal: Journal
    health: DatabaseHealth


def probe_postgres(host: str, port: int, timeout: float) -> None:
    """Raise OSError unless a PostgreSQL server answers at host:port within `timeout`."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        sock.sendall(_SSL_REQUEST)
        answer = sock.recv(1)
    if answer not in (b"S", b"N"):
        raise OSError(f"no PostgreSQL answer from {host}:{port}")


def guard_connections(engine: Engine, timeout: float) -> None:
    """Make new and open PostgreSQL connections fail within `timeout` when the server is gone.

    psycopg never waits less than 2 s to connect; the probe answers first. An open connection
    whose peer vanished would wait for TCP retransmissions; `tcp_user_timeout` cuts that short.
    A server that keeps the connection but never answers is cut off by the deadline watchdog
    (`ivr.deadlines`): pings after 0.25 s, statements shortly after the server's own
    statement_timeout (twice `timeout`).
    """
    if engine.dialect.name != "postgresql":
        return
    watch_engine(engine, statement_seconds=2 * timeout)
    host = engine.url.host
    port = engine.url.port or 5432
    probe = bool(host) and not host.startswith("/") and "," not in host

    @event.listens_for(engine, "do_connect")
    def _fail_fast(_dialect, _record, _cargs, cparams) -> None:
        cparams.setdefault("tcp_user_timeout", int(timeout * 1000))
        cparams.setdefault("keepalives", 1)
        cparams.setdefault("keepalives_idle", 5)
        cparams.setdefault("keepalives_interval", 1)
        cparams.setdefault("keepalives_count", 3)
        if probe:
            try:
                probe_postgres(host, port, timeout)
            except OSError as exc:
                raise psycopg.OperationalError(f"database unreachable ({exc})") from None


def init_app(app: Flask, settings: Settings) -> Outage:
    """Attach the journal, the database hint and the short cut for webhooks while it is down."""
    outage = Outage(
        settings=settings,
        journal=Journal(settings.resolved_journal_path),
        health=DatabaseHealth(settings.database_retry_seconds),
    )
    app.extensions["outage"] = outage
    if db.engine is not None:
        guard_connections(db.engine, settings.database_timeout_seconds)
    app.before_request(_skip_database_while_down)
    return outage


def current_outage() -> Outage:
    """Return the outage machinery of the running app."""
    return current_app.extensions["outage"]


def _skip_database_while_down():
    """Answer webhooks without the database while it is known to be down."""
    path = request.path
    if not path.startswith("/voice/") or path.startswith(DATABASE_FREE_PATHS):
        return None
    if request.endpoint is None or request.method != "POST":
        return None
    outage = current_outage()
    if not outage.health.looks_down():
        return None
    if not request_is_from_twilio():
        log.warning("rejected unsigned or badly signed request to %s", path)
        abort(403)
    return respond_without_database()


def respond_without_database() -> Response | tuple:
    """Serve the current webhook from configuration alone and journal what it tells us."""
    outage = current_outage()
    return answer_without_database(
        outage.settings, outage.journal, path=request.path, args=request.args, form=request.form
    )


# ---------------------------------------------------------------- plain decisions


def line_of_request(settings: Settings, path: str, form: Mapping) -> str:
    """Return the line a webhook belongs to, from our own path or else the called number."""
    if path.startswith("/voice/emergency"):
        return EMERGENCY
    if path.startswith("/voice/office"):
        return OFFICE
    if path.startswith(("/voice/fallback/screen", "/voice/fallback/accept")):
        return EMERGENCY
    to = caller_id(form.get("To"))
    if to in {engineer.number for engineer in settings.emergency.engineers}:
        return EMERGENCY
    return line_for_number(settings, form.get("To"))


def is_engineer_leg(path: str, form: Mapping) -> bool:
    """Return whether a webhook is for a leg our `<Dial>` placed, not the caller's own leg.

    Our screening webhooks count as such whatever the form says: a screened leg must never be
    sent a `<Dial>`.
    """
    if "/screen" in path or "/accept" in path:
        return True
    return (form.get("Direction") or "").startswith("outbound") or bool(form.get("ParentCallSid"))


def language_of(settings: Settings, args: Mapping) -> str:
    """Return the caller's language from our query string, else the default language."""
    language = args.get("lang")
    return language if language in settings.prompts else settings.default_language


def _outage_line(settings: Settings, path: str, args: Mapping, form: Mapping) -> str:
    """Return the `line` our own outage URLs carry, else the line of the path or number."""
    line = args.get("line")
    if path.startswith(OUTAGE_PATHS) and line in (OFFICE, EMERGENCY):
        return line
    return line_of_request(settings, path, form)


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
        action=f"{VOICEMAIL_PATH}?{urlencode(query)}",
        method="POST",
        max_length=limit,
        finish_on_key="#",
        play_beep=True,
    )
    speak.say(response, "voicemail_empty")
    response.hangup()
    return response


def _goodbye(speak: Speaker, key: str = "goodbye") -> VoiceResponse:
    """Say a closing prompt and hang up."""
    response = VoiceResponse()
    speak.say(response, key)
    response.hangup()
    return response


def _call_details(settings: Settings, path: str, args: Mapping, form: Mapping, line: str) -> dict:
    """Return what we know about a call from one webhook, for the journal (never Digits)."""
    return {
        "line": line,
        "from": form.get("From"),
        "caller": caller_id(form.get("From")),
        "to": form.get("To"),
        "language": language_of(settings, args),
        "via": args.get("via"),
        "ticket": args.get("ticket"),
        "path": path,
        "error_code": form.get("ErrorCode"),
    }


def is_status_callback(path: str, form: Mapping) -> bool:
    """Return whether a webhook only reports progress (its answer is not TwiML for a caller)."""
    return (
        path == "/voice/status"
        or bool(form.get("RecordingStatus"))
        or bool(form.get("TranscriptionStatus"))
    )


def journal_events(
    settings: Settings, path: str, args: Mapping, form: Mapping
) -> list[tuple[str, str, str, dict]]:
    """Return the journal entries (kind, call sid, step, data) one webhook stands for.

    Never the keys a caller typed (they may be a PIN), except a triage choice.
    """
    events: list[tuple[str, str, str, dict]] = []
    sid = clean_sid(form.get("CallSid"))
    line = _outage_line(settings, path, args, form)
    if is_engineer_leg(path, form):
        parent, digits = clean_sid(form.get("ParentCallSid")), (form.get("Digits") or "").strip()
        if parent and sid and line == EMERGENCY and digits == "1":
            engineer = {"engineer": form.get("To"), "ticket": args.get("ticket")}
            events.append(("answered", parent, f"answered:{sid}", engineer))
        return events
    if sid is None:
        return events
    if not is_status_callback(path, form):
        # Only a caller still being served stands for a call to record (a status callback
        # can be the end of a call that was refused, say to a normal user, before the outage).
        events.append(("call", sid, "call", _call_details(settings, path, args, form, line)))
    reason = args.get("reason") if args.get("reason") in REASONS else None
    if path == TRIAGE_PATH:
        reason = reason_for_key(form.get("Digits")) or reason
    if reason is not None:
        events.append(("reason", sid, "reason", {"reason": reason}))
    description = clean_speech(form.get("SpeechResult")) if path == DESCRIPTION_PATH else None
    if description:
        events.append(("description", sid, "description", {"text": description}))
    if form.get("DialCallStatus"):
        dial = {
            "status": form.get("DialCallStatus"),
            "dial_sid": form.get("DialCallSid"),
            "duration": form.get("DialCallDuration"),
            "bridged": form.get("DialBridged"),
            "line": line,
        }
        step = form.get("DialCallSid") or form.get("DialCallStatus")
        events.append(("dial", sid, f"dial:{step}", dial))
    if form.get("RecordingUrl"):
        recording = {
            "url": form.get("RecordingUrl"),
            "recording_sid": form.get("RecordingSid"),
            "duration": form.get("RecordingDuration"),
            "status": form.get("RecordingStatus"),
            "line": line,
            "department": args.get("dept"),
            "hours": args.get("hours"),
        }
        step = form.get("RecordingSid") or form.get("RecordingUrl")
        kind = "recording" if form.get("RecordingStatus") else "voicemail"
        # Our own recording callbacks name the call they belong to.
        owner = (clean_sid(args.get("call")) if kind == "recording" else None) or sid
        events.append((kind, owner, f"{kind}:{step}", recording))
    status = (form.get("CallStatus") or "").strip().lower()[:20]
    if path == "/voice/status" or status in CALL_FINAL_STATUSES:
        details = {
            "status": status,
            "duration": form.get("CallDuration"),
            "sequence": form.get("SequenceNumber"),
            "line": line,
        }
        events.append(("status", sid, f"status:{status}", details))
    return events


def twiml_without_database(
    settings: Settings, path: str, args: Mapping, form: Mapping
) -> VoiceResponse | None:
    """Return TwiML that serves this webhook's caller from configuration; None: no body."""
    speak = Speaker.for_language(settings, language_of(settings, args))
    line = _outage_line(settings, path, args, form)
    if path == "/voice/status":
        return None
    if is_status_callback(path, form):
        return VoiceResponse()  # Twilio ignores the answer to a progress report
    if is_engineer_leg(path, form):
        if line != EMERGENCY:
            return VoiceResponse()  # an office colleague's leg: just connect
        if "Digits" in form or path.startswith("/voice/fallback/accept"):
            return fallback.accept_unverified(form.get("Digits"))
        caller = caller_id(args.get("caller")) or caller_id(form.get("From")) or "anonymous"
        return fallback.screen_unverified(settings, caller)
    status = (form.get("CallStatus") or "").strip().lower()
    if status in CALL_FINAL_STATUSES:
        response = VoiceResponse()
        response.hangup()
        return response
    dial_status = (form.get("DialCallStatus") or "").strip().lower()
    if dial_status:
        if dial_status == "completed" or (form.get("DialBridged") or "").lower() == "true":
            return _goodbye(speak)
        sequential = settings.emergency.ring_strategy == "sequential"
        if line == EMERGENCY and sequential and not path.startswith(OUTAGE_PATHS):
            # The flow rang one engineer; without the database ring them all, unverified.
            return fallback.safe_response(settings, line, form.get("From"), language=speak.language)
        return voicemail_response(settings, speak, line, args.get("dept"))
    if form.get("RecordingUrl") or path.startswith(VOICEMAIL_PATH):
        if not form.get("RecordingUrl"):
            return _goodbye(speak, "voicemail_empty")
        key = "emergency_voicemail_thanks" if line == EMERGENCY else "voicemail_thanks"
        return _goodbye(speak, key)
    return fallback.safe_response(settings, line, form.get("From"), language=speak.language)


def write_journal(journal: Journal, events: list[tuple[str, str, str, dict]]) -> None:
    """Append events to the journal; a failing disk is logged, never stops the caller."""
    for kind, sid, step, data in events:
        try:
            journal.record(kind, call_sid=sid, step=step, data=data)
        except OSError:
            log.exception("outage journal %s not writable; event %s of %s lost", journal, kind, sid)


def answer_without_database(
    settings: Settings, journal: Journal, *, path: str, args: Mapping, form: Mapping
) -> Response | tuple:
    """Serve a webhook from configuration alone and journal what it says about the call."""
    write_journal(journal, journal_events(settings, path, args, form))
    response = twiml_without_database(settings, path, args, form)
    if response is None:
        return ("", 204)
    return twiml(response)


# ---------------------------------------------------------------- failures of any webhook


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
    path = request.path
    if not path.startswith("/voice/"):
        if database:
            log.error("database unavailable on %s (%s)", path, type(exc).__name__)
            if path.startswith("/api/"):
                return {"error": "database unavailable"}, 503
            return Response("Database unavailable; calls are still answered.", 503)
        log.exception("unhandled error on %s", path)
        if path.startswith("/api/"):
            return {"error": "internal error"}, 500
        return Response("Internal error.", 500)
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


# ---------------------------------------------------------------- webhooks of the outage TwiML


@bp.post("/dialled")
@twilio_only
def dialled():
    """Finish the outage dial: goodbye after a conversation, otherwise a voicemail."""
    return respond_without_database()


@bp.post("/voicemail")
@twilio_only
def voicemail():
    """Journal a voicemail left during the outage and thank the caller."""
    return respond_without_database()


@bp.post("/recording")
@twilio_only
def recording():
    """Journal the recording of a conversation held during the outage."""
    return respond_without_database()
