"""The background sender of each server process: due paging steps, then due messages.

Several processes (and instances) run it over one database. Each claims rows before acting on
them: `FOR UPDATE SKIP LOCKED` on PostgreSQL keeps two instances off the same row, and every
row's version column makes a claim that lost a race fail instead of acting twice (SQLite). A
message is claimed with a lease; a process that dies while sending leaves the lease to expire,
and the retry goes out under the same idempotency key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import db
from core.settings import Settings
from ivr.messaging import call_backs, channels
from ivr.messaging.incident_texts import render_message
from ivr.messaging.outbox import LOST_RACE, commit_or_skip
from ivr.messaging.outbox import backoff as outbox_backoff
from ivr.messaging.outbox import record as outbox_record
from ivr.metrics import counters
from tickets import paging
from tickets.callback_queue.queue import CALL
from tickets.incidents import pages as incident_pages
from tickets.models import OutboxMessage

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BATCH = 20
# Batches one round may send while they keep coming back full: a backlog (a burst of calls)
# drains as fast as the providers take messages, not one batch per round. A round also ends
# after ROUND_SECONDS (claimed messages it has not reached go back unsent, long before their
# lease runs out), so the next one takes due paging steps again and a stopping process is
# not in the middle of a long backlog.
MAX_BATCHES = 10
ROUND_SECONDS = 10.0
FIRST_RETRY_SECONDS = 15
LONGEST_RETRY_SECONDS = 600


@dataclass
class TickReport:
    """What one round of the sender did."""

    steps: int = 0
    summaries: int = 0
    digested: int = 0
    incident_digests: int = 0
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def take_due_steps(session: Session, now: datetime, rules: paging.PagingPolicy) -> int:
    """Page the next level of every page whose acknowledgement timed out; return how many."""
    taken = 0
    for page in paging.due_pages(session, now):
        paging.step(session, page=page, now=now, rules=rules)
        taken += 1
    if not taken:
        session.rollback()
        return 0
    return taken if commit_or_skip(session) else 0


def send_due_summaries(session: Session, now: datetime, rules: paging.PagingPolicy) -> int:
    """Send the opening-time summary of tickets that came in while closed; return how many."""
    pages = paging.due_summaries(session, now)
    if not pages:
        session.rollback()
        return 0
    paging.summarise(session, pages=pages, now=now, rules=rules)
    return len(pages) if commit_or_skip(session) else 0


def send_due_digest(session: Session, now: datetime, rules: paging.PagingPolicy) -> int:
    """Send the digest of unverified tickets when one is due; return how many it lists.

    Its pages are locked waiting (see `paging.due_digest`): a wait cut short by the database's
    statement timeout is a lost race too, and the next round tries again.
    """
    try:
        pages = paging.due_digest(session, now, rules)
        if pages:
            paging.digest(session, pages=pages, now=now, rules=rules)
    except LOST_RACE:
        session.rollback()
        return 0
    if not pages:
        session.rollback()
        return 0
    return len(pages) if commit_or_skip(session) else 0


def send_due_incident_digests(session: Session, now: datetime, rules: paging.PagingPolicy) -> int:
    """Send level 1 the digest of organisations that joined an acknowledged incident."""
    try:
        due = incident_pages.due_digests(session, now)
        for incident in due:
            incident_pages.send_digest(session, incident=incident, now=now, rules=rules)
    except LOST_RACE:
        session.rollback()
        return 0
    if not due:
        session.rollback()
        return 0
    return len(due) if commit_or_skip(session) else 0


def claim(session: Session, now: datetime, *, limit: int = BATCH) -> list[int]:
    """Take up to `limit` due messages (and ones whose sender died) for this process."""
    rows = session.scalars(
        select(OutboxMessage)
        .where(
            or_(
                and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
                and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
            )
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.status, row.lease_until, row.attempts = "sending", now + LEASE, row.attempts + 1
    ids = [row.id for row in rows]
    if not ids:
        session.rollback()
        return []
    return ids if commit_or_skip(session) else []


def release(session: Session, message_ids: list[int]) -> None:
    """Give claimed messages back unsent, as they were: the next round takes them."""

    def unclaim(row: OutboxMessage) -> None:
        if row.status == "sending":
            row.status, row.lease_until, row.attempts = "pending", None, max(0, row.attempts - 1)

    for message_id in message_ids:
        _record(session, message_id, unclaim)


def deliver(settings: Settings, message: OutboxMessage, text: channels.Text | None) -> str:
    """Send one message through its channel; return the provider's id (the test page too)."""
    if message.channel == CALL:
        return call_backs.place(settings, message)
    if message.channel == "sms":
        return channels.send_sms(
            settings, to=message.recipient, text=text, key=message.idempotency_key
        )
    if message.channel == "email":
        return channels.send_email(
            settings,
            to=message.recipient,
            name=message.recipient_name,
            text=text,
            key=message.idempotency_key,
        )
    return channels.send_chat(settings, text=text)


def backoff(attempts: int) -> timedelta:
    """Return the wait before attempt `attempts + 1`: 15 s, 30 s, 1 min, ... at most 10 min."""
    return outbox_backoff(attempts, first=FIRST_RETRY_SECONDS, longest=LONGEST_RETRY_SECONDS)


def _record(session: Session, message_id: int, change: Callable[[OutboxMessage], None]) -> None:
    """Apply `change` to the message as it is now; once more if a status callback raced us."""
    outbox_record(session, OutboxMessage, message_id, change)


def _failed(error: str, give_up: bool) -> Callable[[OutboxMessage], None]:
    """Return the change that records a failed attempt: try again later, or give up."""

    def change(row: OutboxMessage) -> None:
        row.last_error, row.lease_until = error[:500], None
        if row.status == "sending":
            row.status = "failed" if give_up else "pending"
            row.next_attempt_at = utcnow() + backoff(row.attempts)

    return change


def _sent(provider_id: str) -> Callable[[OutboxMessage], None]:
    """Return the change that records a message the provider took."""

    def change(row: OutboxMessage) -> None:
        row.provider_id = row.provider_id or provider_id[:64]
        row.sent_at, row.lease_until = row.sent_at or utcnow(), None
        if row.status == "sending":  # a status callback may already have said more
            row.status = "sent"

    return change


def send_one(settings: Settings, session: Session, message_id: int, report: TickReport) -> None:
    """Send one claimed message and record how it went."""
    message = session.get(OutboxMessage, message_id)
    calling = message.channel == CALL
    text = None if calling else render_message(settings, session, message)
    # Hold no transaction open while talking to the outside world.
    if not commit_or_skip(session):
        return
    try:
        provider_id = deliver(settings, message, text)
    except channels.SendError as exc:
        limit = (
            call_backs.gives_up(message)
            if calling
            else message.attempts >= settings.paging.max_attempts
        )
        give_up = not exc.retry or limit
        (report.failed if give_up else report.retrying).append(message_id)
        who = message.recipient_name or message.channel
        log.warning(
            "%s %s to %s failed (attempt %s): %s",
            message.channel,
            message.kind,
            who,
            message.attempts,
            exc,
        )
        _record(session, message_id, _failed(str(exc), give_up))
        if calling and give_up:
            call_backs.record_given_up(session, message, str(exc))
            commit_or_skip(session)
        counters.count_message(message.channel, message.kind, sent=False, final=give_up)
        return
    report.sent.append(message_id)
    _record(session, message_id, _sent(provider_id))
    if calling:
        call_backs.record_placed(session, message, provider_id)
        commit_or_skip(session)
    counters.count_message(message.channel, message.kind, sent=True)


def tick(app: Flask) -> TickReport:
    """One round: take due paging steps, summaries and digests, then send what is due.

    A round goes on while its batches come back full (up to `MAX_BATCHES` and `ROUND_SECONDS`),
    so a backlog is sent as fast as the providers take it.
    """
    report = TickReport()
    with app.app_context():
        settings: Settings = app.config["SETTINGS"]
        rules: paging.PagingPolicy = app.config["PAGING"]
        session = db.session
        try:
            now = utcnow()
            report.steps = take_due_steps(session, now, rules)
            report.summaries = send_due_summaries(session, now, rules)
            report.digested = send_due_digest(session, now, rules)
            report.incident_digests = send_due_incident_digests(session, now, rules)
            ends = time.monotonic() + ROUND_SECONDS
            for _ in range(MAX_BATCHES):
                claimed = claim(session, now)
                for position, message_id in enumerate(claimed):
                    if time.monotonic() > ends:  # slow providers: well inside the lease
                        release(session, claimed[position:])
                        break
                    send_one(settings, session, message_id, report)
                if len(claimed) < BATCH or time.monotonic() > ends:
                    break
                now = utcnow()
        finally:
            session.rollback()
            db.session.remove()
    return report


def backlog(session: Session, now: datetime) -> tuple[int, float]:
    """Return how many messages are due and unsent, and how many seconds the oldest waited."""
    count, oldest = session.execute(
        select(func.count(OutboxMessage.id), func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status.in_(("pending", "sending")),
            OutboxMessage.next_attempt_at <= now,
        )
    ).one()
    if not count or oldest is None:
        return 0, 0.0
    return count, max(0.0, (now - oldest).total_seconds())
