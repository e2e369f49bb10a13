"""Whether paging can reach an engineer: "ok", "off" or "cannot_send". The one home of that rule.

`/health`, the dashboard's banner and Pages page, the start-up line and `ivr doctor` all ask
here. Paging is:

- "off" when the configuration switches it off (`paging.enabled = false`);
- "cannot_send" when it is on but no channel is set up to send, or when every channel's recent
  attempts failed: the last `LAST_ATTEMPTS` messages to engineers that a channel tried within
  `RECENT`, read from the outbox rows, so every instance says the same;
- "ok" otherwise. A channel with no attempt in `RECENT` counts as able to send: nothing says
  it cannot (a test page proves it, `ivr staff test-page`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.labels import channel_label
from tickets.models import OutboxMessage
from tickets.paging import ENGINEER_KINDS, TEST_PAGE, PagingPolicy

OK = "ok"
OFF = "off"
CANNOT_SEND = "cannot_send"

RECENT = timedelta(hours=24)
LAST_ATTEMPTS = 3
SET_UP = (
    "set IVR_SMS_FROM and TWILIO_ACCOUNT_SID for SMS, or IVR_SMTP_URL for e-mail "
    "(or paging.chat_webhook_url for a chat channel)"
)


@dataclass(frozen=True)
class PagingState:
    """Where paging stands, and what support should do about it."""

    state: str
    advice: str = ""
    # Channels whose every recent attempt failed, with the latest error.
    failing: dict[str, str] = field(default_factory=dict)
    # Configured channels that cannot send, and what they need.
    missing: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()

    @property
    def can_send(self) -> bool:
        """Return whether a page would reach someone."""
        return self.state == OK


def _channels(rules: PagingPolicy) -> tuple[str, ...]:
    return rules.channels + (("chat",) if rules.chat else ())


def configured_state(rules: PagingPolicy) -> PagingState:
    """Return what the configuration alone says: off, on without a channel, or on."""
    channels = _channels(rules)
    if not rules.switched_on:
        advice = "paging is switched off in the configuration (paging.enabled = false)"
        return PagingState(OFF, advice, channels=channels)
    if not channels:
        advice = f"paging is on, but no channel is set up to send: {SET_UP}"
        return PagingState(CANNOT_SEND, advice, missing=rules.missing)
    return PagingState(OK, missing=rules.missing, channels=channels)


def _failed(row) -> bool:
    return row.status == "failed" or (row.status == "pending" and row.last_error is not None)


def recent_failures(session: Session, channels: tuple[str, ...], now: datetime) -> dict[str, str]:
    """Return the channels whose last attempts to engineers in `RECENT` all failed, with why."""
    failing = {}
    for channel in channels:
        rows = session.execute(
            select(OutboxMessage.status, OutboxMessage.last_error)
            .where(
                OutboxMessage.channel == channel,
                OutboxMessage.updated_at >= now - RECENT,
                OutboxMessage.attempts > 0,
                OutboxMessage.kind.in_((*ENGINEER_KINDS, TEST_PAGE)),
                OutboxMessage.status.in_(("sent", "delivered", "failed", "pending")),
            )
            .order_by(OutboxMessage.updated_at.desc(), OutboxMessage.id.desc())
            .limit(LAST_ATTEMPTS)
        ).all()
        if rows and all(_failed(row) for row in rows):
            failing[channel] = rows[0].last_error or "failed"
    return failing


def paging_state(session: Session | None, rules: PagingPolicy, now: datetime) -> PagingState:
    """Return whether paging can send now; without a session, from the configuration alone."""
    configured = configured_state(rules)
    if configured.state != OK or session is None:
        return configured
    failing = recent_failures(session, configured.channels, now)
    if set(failing) != set(configured.channels):
        return PagingState(OK, failing=failing, missing=rules.missing, channels=configured.channels)
    reasons = "; ".join(f"{channel_label(c)}: {error}" for c, error in failing.items())
    advice = f"every recent page failed ({reasons}); check the credentials and addresses"
    return PagingState(
        CANNOT_SEND, advice, failing=failing, missing=rules.missing, channels=configured.channels
    )


def latest_test_pages(
    session: Session, staff_ids: list[int]
) -> dict[int, dict[str, OutboxMessage]]:
    """Return each engineer's latest test page per channel (SMS, e-mail), newest first."""
    if not staff_ids:
        return {}
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.kind == TEST_PAGE, OutboxMessage.staff_id.in_(staff_ids))
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(20 * len(staff_ids))
    )
    latest: dict[int, dict[str, OutboxMessage]] = {}
    for row in rows:
        latest.setdefault(row.staff_id, {}).setdefault(row.channel, row)
    return latest


def test_page_failed(tests: dict[str, OutboxMessage]) -> bool:
    """Return whether an engineer's latest test page failed on some channel."""
    return any(row.status == "failed" for row in tests.values())
