"""The helpdesk sender of each server process: deliver due helpdesk events, in order per ticket.

A thread of its own, beside the paging sender: a slow receiver (up to 15 s an attempt) never
holds back a page. Rows are claimed like the outbox's messages (`ivr.messaging.outbox`), with
a lease; an event keeps its `webhook-id` on every attempt, so a receiver recognises a repeat.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import db
from core.helpdesk_settings import TEST, Webhook
from core.settings import Settings
from ivr.messaging import webhooks
from ivr.messaging.outbox import backoff, commit_or_skip, record
from ivr.metrics import counters
from tickets.helpdesk import deliveries, documents
from tickets.helpdesk.events import HelpdeskPolicy, Receiver, new_msg_id
from tickets.helpdesk.models import HelpdeskDelivery

log = logging.getLogger(__name__)

BATCH = 10
# Batches one round may send while it finds more; a round also ends after ROUND_SECONDS and
# gives back what it claimed and did not reach.
MAX_BATCHES = 20
ROUND_SECONDS = 20.0
# Share of each retry's wait taken off at random.
JITTER = 0.5


def helpdesk_policy(settings: Settings) -> HelpdeskPolicy:
    """Return the policy the ticket side writes events by."""
    receivers = tuple(
        Receiver(name=hook.name, events=frozenset(hook.events), address=hook.address)
        for hook in settings.helpdesk.receivers
    )
    return HelpdeskPolicy(
        receivers=receivers, retry_for=timedelta(hours=settings.helpdesk.retry_hours)
    )


def lease(settings: Settings) -> timedelta:
    """Return how long a claim holds: well past one attempt's timeout."""
    return timedelta(seconds=2 * settings.helpdesk.timeout_seconds + 30)


@dataclass
class HelpdeskReport:
    """What one round of the helpdesk sender did (delivery ids)."""

    delivered: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)


def claim(session: Session, settings: Settings, now: datetime, receivers: list[str]) -> list[int]:
    """Take up to BATCH due deliveries, each next in line for its ticket, for this process."""
    rows = deliveries.due(session, now, receivers=receivers, limit=BATCH)
    for row in rows:
        row.status, row.lease_until, row.attempts = (
            "sending",
            now + lease(settings),
            row.attempts + 1,
        )
    ids = [row.id for row in rows]
    if not ids:
        session.rollback()
        return []
    return ids if commit_or_skip(session) else []


def release(session: Session, delivery_ids: list[int]) -> None:
    """Give claimed deliveries back unsent, as they were: the next round takes them."""

    def unclaim(row: HelpdeskDelivery) -> None:
        if row.status == "sending":
            row.status, row.lease_until, row.attempts = "pending", None, max(0, row.attempts - 1)

    for delivery_id in delivery_ids:
        record(session, HelpdeskDelivery, delivery_id, unclaim)


def _delivered(status: int | None):
    def change(row: HelpdeskDelivery) -> None:
        if row.status == "sending":
            row.status, row.delivered_at, row.lease_until = "delivered", utcnow(), None
            row.last_status, row.last_error = status, None

    return change


def _failed(settings: Settings, outcome: webhooks.Outcome, decision: list[str]):
    """Return the change that records a failed attempt: retry later, wait (410), or give up."""
    config = settings.helpdesk

    def change(row: HelpdeskDelivery) -> None:
        decision.clear()
        if row.status != "sending":
            return
        now = utcnow()
        row.last_status, row.last_error, row.lease_until = outcome.status, outcome.error, None
        if outcome.reason == "gone":  # waits, first in line, until support enables it again
            row.status, row.next_attempt_at = "pending", now
            decision.append("held")
            return
        wait = backoff(
            row.attempts,
            first=config.first_retry_seconds,
            longest=config.longest_retry_seconds,
            jitter=JITTER,
        )
        if outcome.retry_after:
            wait = max(
                wait, timedelta(seconds=min(outcome.retry_after, config.longest_retry_seconds))
            )
        if now + wait > row.retry_until:
            row.status = "failed"
            decision.append("failed")
        else:
            row.status, row.next_attempt_at = "pending", now + wait
            decision.append("retrying")

    return change


def _body(session: Session, delivery_id: int) -> HelpdeskDelivery | None:
    """Return the claimed row with its body built (once) and kept; None if it was lost."""
    row = session.get(HelpdeskDelivery, delivery_id, populate_existing=True)
    if row is None or row.status != "sending":
        session.rollback()
        return None
    if row.body is None:
        row.body, row.data = documents.render(session, row), None
        if not commit_or_skip(session):  # another process took it over meanwhile
            return None
    else:
        session.commit()  # hold no transaction open while talking to the receiver
    return row


def send_one(
    settings: Settings, session: Session, delivery_id: int, report: HelpdeskReport
) -> None:
    """Send one claimed delivery and record how it went."""
    row = _body(session, delivery_id)
    if row is None:
        return
    receivers = {hook.name: hook for hook in settings.helpdesk.receivers}
    hook = receivers[row.receiver]
    names = tuple(receivers)
    outcome = webhooks.post_event(
        hook, msg_id=row.msg_id, body=row.body, timeout=settings.helpdesk.timeout_seconds
    )
    if outcome.delivered:
        record(session, HelpdeskDelivery, delivery_id, _delivered(outcome.status))
        report.delivered.append(delivery_id)
        counters.count_helpdesk_delivery(row.receiver, row.type, receivers=names)
        return
    decision: list[str] = []
    record(session, HelpdeskDelivery, delivery_id, _failed(settings, outcome, decision))
    final = decision == ["failed"]
    (report.failed if final else report.retrying).append(delivery_id)
    counters.count_helpdesk_delivery(
        row.receiver, row.type, receivers=names, reason=outcome.reason, final=final
    )
    log.warning(
        "helpdesk %s to %s failed (attempt %s)%s: %s",
        row.type,
        row.receiver,
        row.attempts,
        ", given up" if final else "",
        outcome.error,
    )
    if outcome.reason == "gone":
        _disable(session, hook, outcome, report)


def _disable(session: Session, hook: Webhook, outcome: webhooks.Outcome, report: HelpdeskReport):
    """Switch a receiver off after a 410 Gone, and tell support (audit trail, log, dashboard)."""
    reason = f"it answered {outcome.error or 'HTTP 410'}"
    if deliveries.disable_receiver(session, name=hook.name, reason=reason, now=utcnow()):
        report.disabled.append(hook.name)
        log.error(
            "helpdesk receiver %s (%s) disabled: %s; its events wait until support enables it",
            hook.name,
            hook.address,
            reason,
        )
    commit_or_skip(session)


def tick(app: Flask) -> HelpdeskReport:
    """One round: send due deliveries, batch after batch while there are more."""
    report = HelpdeskReport()
    with app.app_context():
        settings: Settings = app.config["SETTINGS"]
        names = [hook.name for hook in settings.helpdesk.receivers]
        if not names:
            return report
        session = db.session
        try:
            ends = time.monotonic() + ROUND_SECONDS
            for _ in range(MAX_BATCHES):
                held = deliveries.disabled_receivers(session)
                active = [name for name in names if name not in held]
                claimed = claim(session, settings, utcnow(), active)
                for position, delivery_id in enumerate(claimed):
                    if time.monotonic() > ends:
                        release(session, claimed[position:])
                        break
                    send_one(settings, session, delivery_id, report)
                if not claimed or time.monotonic() > ends:
                    break
        finally:
            session.rollback()
            db.session.remove()
    return report


def send_test(settings: Settings, hook: Webhook, *, now: datetime) -> webhooks.Outcome:
    """Send a receiver a `helpdesk.test` event now, outside the queue, and say how it went."""
    body = documents.envelope(TEST, now, {"message": "A test event from the OTYS support lines."})
    outcome = webhooks.post_event(
        hook, msg_id=new_msg_id(), body=body, timeout=settings.helpdesk.timeout_seconds
    )
    names = tuple(receiver.name for receiver in settings.helpdesk.receivers)
    counters.count_helpdesk_delivery(
        hook.name, TEST, receivers=names, reason=None if outcome.delivered else outcome.reason
    )
    return outcome
