"""Turn the paging settings into the ticket side's policy, with only the channels that can send."""

from __future__ import annotations

import logging
from datetime import timedelta

from core.settings import Settings
from tickets.caller_texts import CallerTextRules
from tickets.paging import FallbackEngineer, PagingPolicy
from tickets.paging_state import CANNOT_SEND, OFF, configured_state

log = logging.getLogger(__name__)

# What each channel needs before it can send, as support sets it.
NEEDS = {
    "sms": "SMS needs IVR_SMS_FROM and TWILIO_ACCOUNT_SID",
    "email": "e-mail needs IVR_SMTP_URL",
}


def can_text(settings: Settings) -> bool:
    """Return whether SMS can be sent: a sender number and a Twilio account."""
    return bool(settings.paging.sms_from and settings.twilio_account_sid)


def usable_channels(settings: Settings) -> tuple[str, ...]:
    """Return the configured channels that have what they need to send."""
    ready = {"sms": can_text(settings), "email": bool(settings.paging.smtp_url)}
    return tuple(channel for channel in settings.paging.channels if ready[channel])


def paging_policy(settings: Settings) -> PagingPolicy:
    """Return the policy the ticket side pages by."""
    paging = settings.paging
    channels = usable_channels(settings)
    chat = bool(paging.chat_webhook_url)
    return PagingPolicy(
        enabled=paging.enabled and bool(channels or chat),
        switched_on=paging.enabled,
        missing=tuple(NEEDS[channel] for channel in paging.channels if channel not in channels),
        ack_timeout=timedelta(minutes=paging.ack_timeout),
        rounds=paging.rounds,
        out_of_hours=paging.out_of_hours,
        channels=channels,
        chat=chat,
        callers=CallerTextRules(
            enabled=paging.caller_sms and can_text(settings),
            countries=tuple(paging.caller_sms_countries),
            per_number_per_day=paging.caller_sms_per_number_per_day,
            per_hour=paging.caller_sms_per_hour,
        ),
        unverified_digest=timedelta(minutes=paging.unverified_digest_minutes),
        staff_language=settings.default_language,
        transcript_wait=timedelta(seconds=settings.emergency.transcription.wait_seconds),
        fallback=tuple(
            FallbackEngineer(name=engineer.name, phone=engineer.number)
            for engineer in settings.emergency.engineers
        ),
    )


def announce_paging(settings: Settings) -> None:
    """Log at start-up what `/health`, the dashboard and the README say about paging."""
    state = configured_state(paging_policy(settings))
    if state.state == CANNOT_SEND:
        log.warning("paging cannot send: %s", state.advice)
    elif state.state == OFF:
        log.info("paging is off: %s", state.advice)
    elif state.missing:
        log.warning("paging can send, but %s", "; ".join(state.missing))
