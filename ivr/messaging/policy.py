"""Turn the paging settings into the ticket side's policy, with only the channels that can send."""

from __future__ import annotations

import logging
from datetime import timedelta

from core.settings import Settings
from tickets.caller_texts import CallerTextRules
from tickets.paging import FallbackEngineer, PagingPolicy

log = logging.getLogger(__name__)


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
        fallback=tuple(
            FallbackEngineer(name=engineer.name, phone=engineer.number)
            for engineer in settings.emergency.engineers
        ),
    )


def warn_if_silent(settings: Settings) -> None:
    """Log once at start-up when paging is on but nothing could be sent."""
    if settings.paging.enabled and not paging_policy(settings).enabled:
        log.warning(
            "paging is on but no channel can send: set IVR_SMS_FROM and TWILIO_ACCOUNT_SID, "
            "or IVR_SMTP_URL, or paging.chat_webhook_url"
        )
