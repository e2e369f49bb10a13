"""Keep the voicemails left on the office line, so support can call the caller back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import insert_or_get
from tickets.models import CallbackRequest


def get_callback_request(session: Session, call_sid: str) -> CallbackRequest | None:
    """Return the call-back request left during a call, if any."""
    return session.scalar(select(CallbackRequest).where(CallbackRequest.call_sid == call_sid))


def record_callback_request(
    session: Session,
    *,
    call_sid: str,
    caller: str | None,
    department: str,
    recording_url: str | None,
    recording_sid: str | None,
    recording_duration: int | None,
    in_hours: bool,
    at: datetime | None = None,
) -> CallbackRequest:
    """Store a voicemail for call-back once per call, however often Twilio retries."""

    def add() -> CallbackRequest:
        request = CallbackRequest(
            call_sid=call_sid[:64],
            caller=caller[:64] if caller else None,
            department=department[:64],
            created_at=at or utcnow(),
            recording_url=recording_url[:500] if recording_url else None,
            recording_sid=recording_sid[:64] if recording_sid else None,
            recording_duration=recording_duration,
            in_hours=in_hours,
        )
        session.add(request)
        return request

    return insert_or_get(session, find=lambda: get_callback_request(session, call_sid), add=add)
