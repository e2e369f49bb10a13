"""A test page: prove an engineer's phone and mailbox before a shift, through the real channels.

`ivr staff test-page EMAIL` and the button on the Staff and On call pages send one SMS (Twilio's
Messages API, the twilio REST client) and one e-mail (smtplib), as paging does, and wait for the
provider to accept each. Every attempt is an outbox row of kind `test_page`, so the result is
on record: the On call page shows each engineer's latest, and a failed one counts towards
"paging cannot send" (`tickets.paging_state`) like a failed page would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.clock import utcnow
from core.settings import Settings
from ivr.messaging import channels
from ivr.messaging.outbox import commit_or_skip
from ivr.messaging.policy import NEEDS, usable_channels
from ivr.messaging.sender import LEASE, deliver
from ivr.messaging.texts import render
from tickets import paging
from tickets.labels import channel_label
from tickets.models import OutboxMessage, StaffUser

log = logging.getLogger(__name__)

TESTED = ("sms", "email")


@dataclass(frozen=True)
class ChannelResult:
    """How one channel of a test page went: accepted by the provider, or why not."""

    channel: str
    address: str | None
    accepted: bool
    detail: str

    def describe(self) -> str:
        """Say it in one line, for the command and the dashboard."""
        name = channel_label(self.channel)
        to = f" to {self.address}" if self.address else ""
        if self.accepted:
            return f"{name}{to}: accepted by the provider ({self.detail})"
        return f"{name}{to} failed: {self.detail}"


def _row(session: Session, staff: StaffUser, channel: str, address: str, language: str):
    now = utcnow()
    message = OutboxMessage(
        kind=paging.TEST_PAGE,
        channel=channel,
        recipient=address,
        recipient_name=staff.name,
        staff_id=staff.id,
        language=language,
        idempotency_key=paging.new_key(),
        # Claimed by this process: the sender leaves it alone unless we die while sending.
        status="sending",
        attempts=1,
        lease_until=now + LEASE,
        next_attempt_at=now,
    )
    session.add(message)
    session.flush()
    return message


def _not_sent(session: Session, staff: StaffUser, channel: str, address: str, why: str) -> None:
    """Record a channel that could not even be tried (not set up, no address)."""
    session.add(
        OutboxMessage(
            kind=paging.TEST_PAGE,
            channel=channel,
            recipient=address or "—",
            recipient_name=staff.name,
            staff_id=staff.id,
            idempotency_key=paging.new_key(),
            status="failed",
            last_error=why[:500],
        )
    )
    session.flush()


def _try(settings: Settings, session: Session, staff: StaffUser, channel: str) -> ChannelResult:
    address = staff.phone if channel == "sms" else staff.email
    if channel not in usable_channels(settings):
        why = f"not set up ({NEEDS[channel]})"
        _not_sent(session, staff, channel, address, why)
        return ChannelResult(channel, address, False, why)
    if not address:
        why = "the account has no phone number (add one on its Staff page)"
        _not_sent(session, staff, channel, "", why)
        return ChannelResult(channel, None, False, why)
    message = _row(session, staff, channel, address, settings.default_language)
    text = render(settings, session, message)
    commit_or_skip(session)  # no transaction open while the provider answers
    try:
        provider_id = deliver(settings, message, text)
    except channels.SendError as exc:
        message.status, message.last_error, message.lease_until = "failed", str(exc)[:500], None
        session.flush()
        log.warning("test page %s to %s failed: %s", channel, staff.email, exc)
        return ChannelResult(channel, address, False, str(exc))
    message.status, message.provider_id = "sent", provider_id[:64]
    message.sent_at, message.lease_until = utcnow(), None
    session.flush()
    return ChannelResult(channel, address, True, provider_id)


def send_test_page(settings: Settings, session: Session, staff: StaffUser) -> list[ChannelResult]:
    """Send `staff` a test SMS and e-mail now; return how each channel went, recorded.

    Each attempt is committed before its provider is asked; the caller's unit of work commits
    how the last one went.
    """
    return [_try(settings, session, staff, channel) for channel in TESTED]
