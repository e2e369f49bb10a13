"""Playing recordings in the browser: calls on tickets and office voicemails.

Each playing is on the audit trail (who, which recording), once per listen: see
`tickets.audit.note_recording_played`.
"""

from __future__ import annotations

from flask import Response, request, stream_with_context

from core.db import db, unit_of_work
from core.settings import current_settings
from tickets.audit import note_recording_played
from tickets.auth import current_staff
from tickets.dashboard import bp, error_page
from tickets.models import CallbackRequest, TicketCall
from tickets.recordings import RecordingUnavailable, open_recording

UNAVAILABLE = "Recording unavailable"


def stream_recording(recording_url: str | None, *, played: str):
    """Relay a Twilio recording to the browser; credentials stay on the server.

    `played` names the recording on the audit trail, written once Twilio delivers it.
    """
    settings = current_settings()
    try:
        upstream = open_recording(
            recording_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            byte_range=request.headers.get("Range"),
        )
    except RecordingUnavailable as exc:
        return error_page(str(exc), exc.status_code, title=UNAVAILABLE)
    try:
        note_recording_played(db.session, actor=current_staff().email, recording=played)
    except Exception:
        upstream.close()
        raise
    kind = upstream.headers.get("Content-Type", "audio/mpeg")
    headers = {
        name: upstream.headers[name]
        for name in ("Content-Length", "Content-Range", "Accept-Ranges")
        if name in upstream.headers
    }
    headers["Cache-Control"] = "private, no-store"
    response = Response(
        stream_with_context(upstream.iter_content(64 * 1024)),
        status=upstream.status_code,
        mimetype=kind if kind.startswith("audio/") else "audio/mpeg",
        headers=headers,
        direct_passthrough=True,
    )
    response.call_on_close(upstream.close)
    return response


@bp.get("/recordings/<id:call_id>")
@unit_of_work  # who listened is on the audit trail
def call_recording(call_id: int):
    """Play the recording of a ticket's call."""
    call = db.session.get(TicketCall, call_id)
    if call is None:
        return error_page("There is no such call.", 404, title=UNAVAILABLE)
    recording = f" {call.recording_sid}" if call.recording_sid else ""
    played = f"recording{recording} of call {call.sid} on ticket {call.ticket.number}"
    return stream_recording(call.recording_url, played=played)


@bp.get("/callbacks/<id:callback_id>/recording")
@unit_of_work  # who listened is on the audit trail
def callback_recording(callback_id: int):
    """Play an office voicemail."""
    callback = db.session.get(CallbackRequest, callback_id)
    if callback is None:
        return error_page("There is no such voicemail.", 404, title=UNAVAILABLE)
    recording = f" {callback.recording_sid}" if callback.recording_sid else ""
    played = f"office voicemail{recording} of call {callback.call_sid} ({callback.department})"
    return stream_recording(callback.recording_url, played=played)
