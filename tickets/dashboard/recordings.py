"""Playing recordings in the browser: calls on tickets and office voicemails."""

from __future__ import annotations

from flask import Response, current_app, request, stream_with_context

from tickets.dashboard import bp, error_page
from tickets.db import db
from tickets.models import CallbackRequest, TicketCall
from tickets.recordings import RecordingUnavailable, open_recording

UNAVAILABLE = "Recording unavailable"


def stream_recording(recording_url: str | None):
    """Relay a Twilio recording to the browser; credentials stay on the server."""
    settings = current_app.config["SETTINGS"]
    try:
        upstream = open_recording(
            recording_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            byte_range=request.headers.get("Range"),
        )
    except RecordingUnavailable as exc:
        return error_page(str(exc), exc.status_code, title=UNAVAILABLE)
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
def call_recording(call_id: int):
    """Play the recording of a ticket's call."""
    call = db.session.get(TicketCall, call_id)
    if call is None:
        return error_page("There is no such call.", 404, title=UNAVAILABLE)
    return stream_recording(call.recording_url)


@bp.get("/callbacks/<id:callback_id>/recording")
def callback_recording(callback_id: int):
    """Play an office voicemail."""
    callback = db.session.get(CallbackRequest, callback_id)
    if callback is None:
        return error_page("There is no such voicemail.", 404, title=UNAVAILABLE)
    return stream_recording(callback.recording_url)
