"""Page the on-call engineers about urgent tickets nobody took, until one acknowledges.

Everything here only writes rows, in the caller's transaction: a `Page` holds where the paging
of a ticket stands and when its next step is due, and each message to send is an
`OutboxMessage`. The sender (`ivr.messaging.sender`) takes due steps and sends due messages,
whichever server process gets there first.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import phonenumbers
from flask import current_app, has_app_context
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tickets import rota
from tickets.models import (
    ERASED,
    TICKET_NUMBER_BASE,
    OutboxMessage,
    Page,
    StaffUser,
    Ticket,
    TicketCall,
    TicketEvent,
)

log = logging.getLogger(__name__)

# Kinds of message.
PAGE = "page"
ACK_NOTICE = "ack_notice"
SUMMARY = "summary"
CALLER_TICKET = "caller_ticket"
CALLER_ACK = "caller_ack"
CALLER_RESOLVED = "caller_resolved"
# A test SMS or e-mail an engineer asks for before a shift (`ivr staff test-page`).
TEST_PAGE = "test_page"
ENGINEER_KINDS = (PAGE, ACK_NOTICE, SUMMARY)
# Texts to the caller: their recipient is the caller's number (see the index on the outbox).
CALLER_KINDS = (CALLER_TICKET, CALLER_ACK, CALLER_RESOLVED)

CHANNEL_NAMES = {"sms": "SMS", "email": "E-mail", "chat": "Chat"}

# Timeline event kinds.
PAGED = "paged"
PAGING_EXHAUSTED = "paging_exhausted"
PAGING_WAITING = "paging_waiting"
PAGING_TRANSCRIPT = "paging_transcript"
NOT_PAGED = "not_paged"


@dataclass(frozen=True)
class FallbackEngineer:
    """An engineer from the configuration, paged when the rota names nobody."""

    name: str
    phone: str


@dataclass(frozen=True)
class PagingPolicy:
    """The paging settings the ticket side needs; the service builds it from its settings.

    `enabled` means paging can happen: switched on and a channel that can send. `switched_on`
    is the configuration's own switch, and `missing` says, for each configured channel that
    cannot send, what to set (`tickets.paging_state` tells support from these).
    """

    enabled: bool = False
    switched_on: bool = False
    missing: tuple[str, ...] = ()
    ack_timeout: timedelta = timedelta(minutes=5)
    rounds: int = 2
    out_of_hours: bool = False
    channels: tuple[str, ...] = ("sms", "email")
    chat: bool = False
    caller_sms: bool = False
    staff_language: str = "nl"
    # Pages about a voicemail wait at most this long for its transcript.
    transcript_wait: timedelta = timedelta(seconds=30)
    fallback: tuple[FallbackEngineer, ...] = field(default_factory=tuple)


def policy() -> PagingPolicy:
    """Return the running service's paging policy (paging off outside a configured app)."""
    if has_app_context():
        configured = current_app.config.get("PAGING")
        if configured is not None:
            return configured
    return PagingPolicy()


def new_key() -> str:
    """Return a fresh idempotency key for one message."""
    return secrets.token_hex(16)


def is_mobile(number: str | None) -> bool:
    """Return whether an E.164 number is a mobile phone (only those get an SMS)."""
    if not number:
        return False
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE


def _message(session: Session, ticket_id: int | None, **values) -> OutboxMessage:
    message = OutboxMessage(ticket_id=ticket_id, idempotency_key=new_key(), **values)
    session.add(message)
    return message


def _event(session: Session, ticket_id: int, kind: str, detail: str, at: datetime) -> None:
    session.add(TicketEvent(ticket_id=ticket_id, kind=kind, detail=detail, at=at))


# ------------------------------------------------------------------ starting and escalating


def _taken(session: Session, ticket: Ticket) -> bool:
    """Return whether someone already has the ticket: acknowledged, or a call was answered."""
    if ticket.acknowledged_at is not None or ticket.status in ("resolved", "closed"):
        return True
    answered = session.scalar(
        select(TicketCall.id)
        .where(TicketCall.ticket_id == ticket.id, TicketCall.answered_at.is_not(None))
        .limit(1)
    )
    return answered is not None


def start(
    session: Session,
    *,
    ticket: Ticket,
    now: datetime,
    next_opening: datetime | None,
    rules: PagingPolicy | None = None,
    transcribing: bool = False,
) -> Page | None:
    """Begin paging for an urgent ticket nobody took; nothing when paging already began.

    Out of hours, unless paging then is on, the ticket waits for the summary sent at
    `next_opening`. While the caller's voicemail is `transcribing`, the first level is paged
    once the transcript is in (`transcript_complete`) or after `rules.transcript_wait`,
    whichever comes first: the page's `next_step_at`, which any instance's sender takes.
    Does not commit: the caller's transaction holds the cause.
    """
    rules = rules or policy()
    if ticket.priority != "urgent" or _taken(session, ticket):
        return None
    if not rules.enabled:
        if rules.switched_on:  # on, but nothing can send: the ticket says nobody was paged
            _note_not_paged(session, ticket, now)
        return None
    if session.scalar(select(Page.id).where(Page.ticket_id == ticket.id)) is not None:
        return None
    if not ticket.in_hours and not rules.out_of_hours:
        page = Page(ticket_id=ticket.id, state="waiting", next_step_at=next_opening, started_at=now)
        session.add(page)
        _event(session, ticket.id, PAGING_WAITING, "in the summary at opening time", now)
        return page
    page = Page(ticket_id=ticket.id, state="active", level=0, round=1, started_at=now)
    session.add(page)
    if transcribing and rules.transcript_wait:
        page.next_step_at = now + rules.transcript_wait
        wait = int(rules.transcript_wait.total_seconds())
        _event(session, ticket.id, PAGING_TRANSCRIPT, f"at most {wait} s", now)
        return page
    step(session, page=page, now=now, rules=rules)
    return page


def transcript_complete(session: Session, *, ticket_id: int, now: datetime) -> bool:
    """Page now the transcript is in, if the ticket's first page still waits for it."""
    hurried = session.execute(
        update(Page)
        .where(
            Page.ticket_id == ticket_id,
            Page.state == "active",
            Page.level == 0,
            Page.next_step_at > now,
        )
        .values(next_step_at=now, version=Page.version + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(hurried)


def _note_not_paged(session: Session, ticket: Ticket, now: datetime) -> None:
    """Say once on the ticket that nobody was paged because no channel can send."""
    noted = session.scalar(
        select(TicketEvent.id)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == NOT_PAGED)
        .limit(1)
    )
    if noted is None:
        _event(session, ticket.id, NOT_PAGED, "paging is on, but no channel can send", now)


def _levels(session: Session, now: datetime, rules: PagingPolicy) -> list[rota.OnCallLevel]:
    """Return the rota's levels now; the configured engineers when it names nobody."""
    levels = rota.on_call_at(session, now)
    if levels:
        return levels
    engineers = tuple(
        rota.Engineer(staff_id=0, name=engineer.name, email="", phone=engineer.phone)
        for engineer in rules.fallback
    )
    return [rota.OnCallLevel(level=1, engineers=engineers)] if engineers else []


def _message_engineer(
    session: Session,
    ticket_id: int | None,
    engineer: rota.Engineer,
    rules: PagingPolicy,
    **fields,
) -> None:
    """Queue one message to an engineer on each paging channel they can be reached on."""
    addresses = {"sms": engineer.phone, "email": engineer.email}
    for channel in rules.channels:
        if addresses.get(channel):
            _message(
                session,
                ticket_id,
                staff_id=engineer.staff_id or None,
                channel=channel,
                recipient=addresses[channel],
                recipient_name=engineer.name,
                language=rules.staff_language,
                **fields,
            )


def step(session: Session, *, page: Page, now: datetime, rules: PagingPolicy | None = None) -> None:
    """Page the next level of the rota (a new round after the last), or give up after all rounds."""
    rules = rules or policy()
    levels = _levels(session, now, rules)
    position, round = page.level + 1, page.round
    if position > len(levels):
        position, round = 1, round + 1
    if not levels or round > rules.rounds:
        page.state, page.next_step_at, page.ended_at = "exhausted", None, now
        _event(session, page.ticket_id, PAGING_EXHAUSTED, "nobody acknowledged the pages", now)
        log.warning("paging for ticket id %s ended: nobody acknowledged", page.ticket_id)
        return
    page.level, page.round = position, round
    page.next_step_at = now + rules.ack_timeout
    level = levels[position - 1]
    for engineer in level.engineers:
        _message_engineer(
            session, page.ticket_id, engineer, rules, kind=PAGE, level=page.level, round=page.round
        )
    if rules.chat:
        _message(
            session,
            page.ticket_id,
            kind=PAGE,
            channel="chat",
            recipient="chat",
            language=rules.staff_language,
            level=position,
            round=round,
        )
    names = ", ".join(engineer.name for engineer in level.engineers)
    where = f"level {level.level}" + (f", round {round}" if round > 1 else "")
    _event(session, page.ticket_id, PAGED, f"{names} ({where})", now)


def due_pages(session: Session, now: datetime, *, limit: int = 20) -> Sequence[Page]:
    """Return active pages whose next step is due, locked so another instance skips them."""
    return session.scalars(
        select(Page)
        .where(Page.state == "active", Page.next_step_at <= now)
        .order_by(Page.next_step_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()


def due_summaries(session: Session, now: datetime) -> Sequence[Page]:
    """Return the waiting pages whose opening time has come, locked like `due_pages`."""
    return session.scalars(
        select(Page)
        .where(Page.state == "waiting", Page.next_step_at <= now)
        .order_by(Page.ticket_id)
        .with_for_update(skip_locked=True)
    ).all()


def summarise(
    session: Session, *, pages: Sequence[Page], now: datetime, rules: PagingPolicy | None = None
) -> None:
    """Send level 1 one summary of the tickets that came in while closed and are still open."""
    rules = rules or policy()
    open_ids = [
        page.ticket_id for page in pages if not _taken(session, session.get(Ticket, page.ticket_id))
    ]
    for page in pages:
        page.state, page.next_step_at, page.ended_at = "summarised", None, now
    if not open_ids:
        return
    levels = _levels(session, now, rules)
    numbers = " ".join(str(TICKET_NUMBER_BASE + ticket_id) for ticket_id in open_ids)
    for engineer in levels[0].engineers if levels else ():
        _message_engineer(session, None, engineer, rules, kind=SUMMARY, detail=numbers)
    for ticket_id in open_ids:
        _event(session, ticket_id, PAGED, "in the opening summary to level 1", now)


# ------------------------------------------------------------------ acknowledgement


def _paged_recipients(session: Session, ticket_id: int) -> list[OutboxMessage]:
    """Return one page message per (channel, recipient) that went out or is going out."""
    rows = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.ticket_id == ticket_id,
            OutboxMessage.kind == PAGE,
            OutboxMessage.status.in_(("sending", "sent", "delivered")),
        )
        .order_by(OutboxMessage.id)
    ).all()
    seen: dict[tuple[str, str], OutboxMessage] = {}
    for row in rows:
        seen.setdefault((row.channel, row.recipient), row)
    return list(seen.values())


def acknowledged(
    session: Session, *, ticket: Ticket, staff: StaffUser, via: str, now: datetime
) -> None:
    """Stop the ticket's paging at once and tell the others who were paged; in this transaction."""
    rules = policy()
    session.execute(
        update(Page)
        .where(Page.ticket_id == ticket.id, Page.state.in_(("active", "waiting")))
        .values(state="acknowledged", next_step_at=None, ended_at=now, version=Page.version + 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.ticket_id == ticket.id,
            OutboxMessage.kind == PAGE,
            OutboxMessage.status == "pending",
        )
        .values(
            status="cancelled",
            last_error=f"acknowledged by {staff.name}",
            version=OutboxMessage.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    own = {staff.phone, staff.email}
    for row in _paged_recipients(session, ticket.id):
        if row.recipient in own or (row.staff_id is not None and row.staff_id == staff.id):
            continue
        _message(
            session,
            ticket.id,
            staff_id=row.staff_id,
            kind=ACK_NOTICE,
            channel=row.channel,
            recipient=row.recipient,
            recipient_name=row.recipient_name,
            language=rules.staff_language,
            detail=f"{staff.name} ({via})",
        )
    tell_caller(session, ticket=ticket, kind=CALLER_ACK)


# ------------------------------------------------------------------ the caller


def inform_caller(
    session: Session,
    *,
    ticket: Ticket,
    caller: str | None,
    language: str,
    rules: PagingPolicy | None = None,
) -> OutboxMessage | None:
    """Queue the caller's SMS with the ticket number, once per ticket; mobiles only."""
    if not (rules or policy()).caller_sms or not is_mobile(caller):
        return None
    existing = session.scalar(
        select(OutboxMessage.id).where(
            OutboxMessage.ticket_id == ticket.id,
            OutboxMessage.kind == CALLER_TICKET,
            OutboxMessage.recipient == caller,
        )
    )
    if existing is not None:
        return None
    return _message(
        session, ticket.id, kind=CALLER_TICKET, channel="sms", recipient=caller, language=language
    )


def tell_caller(session: Session, *, ticket: Ticket, kind: str) -> None:
    """Queue one update (acknowledged, resolved) for each caller who got the ticket number."""
    if not policy().caller_sms:
        return
    told = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.ticket_id == ticket.id,
            OutboxMessage.kind.in_((CALLER_TICKET, kind)),
        )
    ).all()
    # A caller whose number was purged or erased is not texted again (nor is "erased").
    already = {row.recipient for row in told if row.kind == kind} | {ERASED}
    for row in told:
        if row.kind == CALLER_TICKET and row.recipient not in already:
            already.add(row.recipient)
            _message(
                session,
                ticket.id,
                kind=kind,
                channel="sms",
                recipient=row.recipient,
                language=row.language,
            )


# ------------------------------------------------------------------ what the timeline shows


def messages_of(session: Session, ticket_id: int) -> list[OutboxMessage]:
    """Return every message about a ticket, oldest first, for its timeline."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.ticket_id == ticket_id)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
    )


def latest_paged_ticket(session: Session, staff: StaffUser) -> Ticket | None:
    """Return the ticket this staff member was paged about last."""
    addresses: Iterable[str] = [address for address in (staff.phone, staff.email) if address]
    ticket_id = session.scalar(
        select(OutboxMessage.ticket_id)
        .where(
            OutboxMessage.kind == PAGE,
            OutboxMessage.ticket_id.is_not(None),
            (OutboxMessage.staff_id == staff.id) | OutboxMessage.recipient.in_(list(addresses)),
        )
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(1)
    )
    return session.get(Ticket, ticket_id) if ticket_id is not None else None
