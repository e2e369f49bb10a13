"""Place a call-back's call: the outbox row that rings the engineer first, through Twilio.

The row is written when an engineer starts the call-back (`tickets.callback_queue.start`),
so the call is placed once, by whichever server process claims it, like every message. A
call is not worth placing minutes late: it is given up after a few quick attempts, and the
request goes back in the queue.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.settings import Settings
from ivr.messaging import channels
from tickets.callback_queue import calls as call_backs
from tickets.models import OutboxMessage

# Attempts to place one call-back before it goes back in the queue (15 s, then 30 s apart).
MAX_ATTEMPTS = 3


def _url(settings: Settings, endpoint: str, **values: object) -> str:
    """Return the public URL of one of the call-back's webhooks, outside any request."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return settings.public_url.rstrip("/") + path


def place(settings: Settings, message: OutboxMessage) -> str:
    """Ring the engineer of a call-back through Twilio's Calls API; return the call's SID."""
    if not settings.public_url:
        raise channels.SendError(
            "public_url is not set: Twilio cannot fetch our TwiML", retry=False
        )
    if not settings.twilio_account_sid:
        raise channels.SendError(
            "TWILIO_ACCOUNT_SID is not set: no call can be placed", retry=False
        )
    request_id = int(message.detail or 0)
    return channels.place_call(
        settings,
        to=message.recipient,
        url=_url(settings, "call_back.engineer", request=request_id),
        status_callback=_url(settings, "call_back.status", request=request_id),
        fallback_url=_url(settings, "call_back.fallback"),
    )


def gives_up(message: OutboxMessage) -> bool:
    """Return whether a failed call-back is given up (and its request queued again)."""
    return message.attempts >= MAX_ATTEMPTS


def record_placed(session: Session, message: OutboxMessage, call_sid: str) -> None:
    """Note the call's SID on its request; committed with the message's result."""
    call_backs.placed(session, request_id=int(message.detail or 0), call_sid=call_sid)


def record_given_up(session: Session, message: OutboxMessage, error: str) -> None:
    """Put the request back in the queue: the call could not be placed."""
    call_backs.not_placed(session, request_id=int(message.detail or 0), error=error, now=utcnow())
