"""Page the on-call engineers about urgent tickets nobody took, until one acknowledges.

Everything here only writes rows, in the caller's transaction: a `Page` holds where the paging
of a ticket stands and when its next step is due, and each message to send is an
`OutboxMessage`. The sender (`ivr.messaging.sender`) takes due steps and sends due messages,
whichever server process gets there first.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.clock import utcnow
from tickets import caller_texts, rota
from tickets.caller_texts import CALLER_ACK as CALLER_ACK
from tickets.caller_texts import CALLER_KINDS as CALLER_KINDS
from tickets.caller_texts import CALLER_RESOLVED as CALLER_RESOLVED
from tickets.caller_texts import CALLER_TICKET, CallerTextRules
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

# Kinds of message to engineers; the caller's are in `tickets.caller_texts`.
PAGE = "page"
ACK_NOTICE = "ack_notice"
SUMMARY = "summary"
DIGEST = "digest"
# A test SMS or e-mail an engineer asks for before a shift (`ivr staff test-page`).
TEST_PAGE = "test_page"
ENGINEER_KINDS = (PAGE, ACK_NOTICE, SUMMARY, DIGEST)
# Messages that list tickets to an engineer: each entitles them to acknowledge those by SMS.
LISTING_KINDS = (SUMMARY, DIGEST)
SENDING_OR_SENT = ("sending", "sent", "delivered")
# An SMS reply acknowledges tickets paged to its sender this recently.
PAGED_WITHIN = timedelta(days=7)

# Page states of an unverified ticket: waiting for the next digest, or in one already.
IN_NEXT_DIGEST = "digest"
DIGESTED = "digested"

# Timeline event kinds.
PAGED = "paged"
PAGING_EXHAUSTED = "paging_exhausted"
PAGING_WAITING = "paging_waiting"
PAGING_TRANSCRIPT = "paging_transcript"
NOT_PAGED = "not_paged"
CALLER_NOT_TEXTED = "caller_not_texted"


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
    callers: CallerTextRules = field(default_factory=CallerTextRules)
    # Unverified tickets are paged together, at most one digest in this time.
    unverified_digest: timedelta = timedelta(minutes=15)
    staff_language: str = "nl"
    # Pages about a voicemail wait at most this long for its transcript.
    transcript_wait: timedelta = timedelta(seconds=30)
    fallback: tuple[FallbackEngineer, ...] = field(default_factory=tuple)

    @property
    def caller_sms(self) -> bool:
        """Return whether callers may be texted at all."""
        return self.callers.enabled


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
    once the transcript is in (`tickets.transcripts.transcript_complete`) or after
    `rules.transcript_wait`, whichever comes first: the page's `next_step_at`, which any
    instance's sender takes.
    Does not commit: the caller's transaction holds the cause.
    """
    rules = rules or policy()
    if ticket.priority != "urgent" or _taken(session, ticket):
        return None
    if not rules.enabled:
        if rules.switched_on:  # on, but nothing can send: the ticket says nobody was paged
            _note_not_paged(session, ticket, now)
        return None
    if in_paged_incident(session, ticket):
        return None
    page = session.scalar(select(Page).where(Page.ticket_id == ticket.id))
    if by_digest(ticket) and (ticket.in_hours or rules.out_of_hours):
        return _await_digest(session, ticket=ticket, page=page, now=now)
    if page is not None:
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


def _note_not_paged(session: Session, ticket: Ticket, now: datetime) -> None:
    """Say once on the ticket that nobody was paged because no channel can send."""
    noted = session.scalar(
        select(TicketEvent.id)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == NOT_PAGED)
        .limit(1)
    )
    if noted is None:
        _event(session, ticket.id, NOT_PAGED, "paging is on, but no channel can send", now)


def in_paged_incident(session: Session, ticket: Ticket) -> bool:
    """Return whether the ticket is part of a major incident that is paged for it."""
    if ticket.incident_id is None:
        return False
    page = session.scalar(select(Page.id).where(Page.incident_id == ticket.incident_id))
    return page is not None


def by_digest(ticket: Ticket) -> bool:
    """Return whether a ticket is paged in the digest: nobody confirmed who called."""
    return not ticket.verified and not ticket.from_journal


def _await_digest(session: Session, *, ticket: Ticket, page: Page | None, now: datetime) -> Page:
    """Put an unverified ticket in the next digest; again after another call on it."""
    if page is None:
        page = Page(ticket_id=ticket.id, state=IN_NEXT_DIGEST, next_step_at=now, started_at=now)
        session.add(page)
    elif page.state == DIGESTED:
        page.state, page.next_step_at, page.ended_at = IN_NEXT_DIGEST, now, None
    else:
        return page
    _event(session, ticket.id, PAGING_WAITING, "in the next digest of unverified calls", now)
    return page


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


def level_one(session: Session, now: datetime, rules: PagingPolicy) -> tuple[rota.Engineer, ...]:
    """Return who is on the rota's first level now (the configured engineers when nobody)."""
    levels = _levels(session, now, rules)
    return levels[0].engineers if levels else ()


def message_engineer(
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
    """Page the next level of the rota (a new round after the last), or give up after all rounds.

    A ticket's page notes each step on its timeline; an incident's messages are its record.
    """
    rules = rules or policy()
    levels = _levels(session, now, rules)
    position, round = page.level + 1, page.round
    if position > len(levels):
        position, round = 1, round + 1
    if not levels or round > rules.rounds:
        page.state, page.next_step_at, page.ended_at = "exhausted", None, now
        if page.ticket_id is not None:
            _event(session, page.ticket_id, PAGING_EXHAUSTED, "nobody acknowledged the pages", now)
        log.warning("paging ended, nobody acknowledged: %r", page)
        return
    page.level, page.round = position, round
    page.next_step_at = now + rules.ack_timeout
    level = levels[position - 1]
    about = {"incident_id": page.incident_id} if page.incident_id is not None else {}
    fields = {"kind": PAGE, "level": position, "round": round, **about}
    for engineer in level.engineers:
        message_engineer(session, page.ticket_id, engineer, rules, **fields)
    if rules.chat:
        _message(
            session,
            page.ticket_id,
            channel="chat",
            recipient="chat",
            language=rules.staff_language,
            **fields,
        )
    if page.ticket_id is not None:
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


def due_digest(session: Session, now: datetime, rules: PagingPolicy) -> Sequence[Page]:
    """Return the unverified tickets' pages for a digest now; none while the last is recent.

    Locked without SKIP LOCKED, unlike the other steps: an instance that gets here while
    another is writing a digest waits for its commit, then sees that digest and sends none.
    """
    pages = session.scalars(
        select(Page)
        .where(Page.state == IN_NEXT_DIGEST, Page.next_step_at <= now)
        .order_by(Page.id)
        .with_for_update()
    ).all()
    if not pages:
        return []
    last = session.scalar(
        select(func.max(OutboxMessage.created_at)).where(
            OutboxMessage.ticket_id.is_(None), OutboxMessage.kind == DIGEST
        )
    )
    if last is not None and now < last + rules.unverified_digest:
        return []
    return pages


def _list_to_level_one(
    session: Session,
    *,
    pages: Sequence[Page],
    now: datetime,
    rules: PagingPolicy,
    kind: str,
    state: str,
    said: str,
) -> None:
    """Send level 1 one message listing the pages' tickets that nobody took yet.

    Everything is read before anything is written, so a claim that lost a race fails at the
    commit (where the sender expects it), not in the middle.
    """
    open_ids = [
        page.ticket_id for page in pages if not _taken(session, session.get(Ticket, page.ticket_id))
    ]
    engineers = level_one(session, now, rules) if open_ids else ()
    for page in pages:
        page.state, page.next_step_at, page.ended_at = state, None, now
    numbers = " ".join(str(TICKET_NUMBER_BASE + ticket_id) for ticket_id in open_ids)
    for engineer in engineers:
        message_engineer(session, None, engineer, rules, kind=kind, detail=numbers)
    for ticket_id in open_ids:
        _event(session, ticket_id, PAGED, said, now)


def summarise(
    session: Session, *, pages: Sequence[Page], now: datetime, rules: PagingPolicy | None = None
) -> None:
    """Send level 1 one summary of the tickets that came in while closed and are still open."""
    said = "in the opening summary to level 1"
    rules = rules or policy()
    _list_to_level_one(
        session, pages=pages, now=now, rules=rules, kind=SUMMARY, state="summarised", said=said
    )


def digest(
    session: Session, *, pages: Sequence[Page], now: datetime, rules: PagingPolicy | None = None
) -> None:
    """Send level 1 one digest of the unverified tickets since the last one, still not taken."""
    said = "in the digest of unverified calls to level 1"
    rules = rules or policy()
    _list_to_level_one(
        session, pages=pages, now=now, rules=rules, kind=DIGEST, state=DIGESTED, said=said
    )


# ------------------------------------------------------------------ acknowledgement


def _paged_recipients(session: Session, about) -> list[OutboxMessage]:
    """Return one page message per (channel, recipient) that went out or is going out."""
    rows = session.scalars(
        select(OutboxMessage)
        .where(about, OutboxMessage.kind == PAGE, OutboxMessage.status.in_(SENDING_OR_SENT))
        .order_by(OutboxMessage.id)
    ).all()
    seen: dict[tuple[str, str], OutboxMessage] = {}
    for row in rows:
        seen.setdefault((row.channel, row.recipient), row)
    return list(seen.values())


def _subject(ticket_id: int | None, incident_id: int | None) -> tuple:
    """Return the conditions on pages and messages of a ticket, or of an incident."""
    if incident_id is not None:
        return Page.incident_id == incident_id, OutboxMessage.incident_id == incident_id
    return Page.ticket_id == ticket_id, OutboxMessage.ticket_id == ticket_id


def stop(
    session: Session,
    *,
    ticket_id: int | None = None,
    incident_id: int | None = None,
    state: str,
    why: str,
    now: datetime,
) -> None:
    """Stop the paging of a ticket or an incident: no next step, no page not yet sent."""
    page_of, message_of = _subject(ticket_id, incident_id)
    session.execute(
        update(Page)
        .where(page_of, Page.state.in_(("active", "waiting", IN_NEXT_DIGEST)))
        .values(state=state, next_step_at=None, ended_at=now, version=Page.version + 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(OutboxMessage)
        .where(message_of, OutboxMessage.kind == PAGE, OutboxMessage.status == "pending")
        .values(status="cancelled", last_error=why[:500], version=OutboxMessage.version + 1)
        .execution_options(synchronize_session=False)
    )


def tell_the_paged(
    session: Session,
    *,
    ticket_id: int | None = None,
    incident_id: int | None = None,
    staff: StaffUser,
    via: str,
) -> None:
    """Tell everyone else who was paged that `staff` acknowledged it."""
    _, message_of = _subject(ticket_id, incident_id)
    own = {staff.phone, staff.email}
    for row in _paged_recipients(session, message_of):
        if row.recipient in own or (row.staff_id is not None and row.staff_id == staff.id):
            continue
        _message(
            session,
            ticket_id,
            incident_id=incident_id,
            staff_id=row.staff_id,
            kind=ACK_NOTICE,
            channel=row.channel,
            recipient=row.recipient,
            recipient_name=row.recipient_name,
            language=policy().staff_language,
            detail=f"{staff.name} ({via})",
        )


def acknowledged(
    session: Session, *, ticket: Ticket, staff: StaffUser, via: str, now: datetime
) -> None:
    """Stop the ticket's paging at once and tell the others who were paged; in this transaction."""
    why = f"acknowledged by {staff.name}"
    stop(session, ticket_id=ticket.id, state="acknowledged", why=why, now=now)
    tell_the_paged(session, ticket_id=ticket.id, staff=staff, via=via)
    tell_caller(session, ticket=ticket, kind=CALLER_ACK)


# ------------------------------------------------------------------ the caller


def note_not_texted(session: Session, ticket_id: int, why: str, call_sid: str | None, now) -> None:
    """Note on the timeline that a protection kept the caller from being texted."""
    if why not in caller_texts.QUIET:
        log.info("caller of ticket id %s not texted: %s", ticket_id, why)
        session.add(
            TicketEvent(
                ticket_id=ticket_id, kind=CALLER_NOT_TEXTED, detail=why, call_sid=call_sid, at=now
            )
        )


def inform_caller(
    session: Session,
    *,
    ticket: Ticket,
    call: TicketCall,
    language: str,
    rules: PagingPolicy | None = None,
    now: datetime | None = None,
) -> OutboxMessage | None:
    """Queue the caller's SMS with the ticket number, once per ticket, if they may be texted."""
    rules, now, caller = rules or policy(), now or utcnow(), call.caller
    if not rules.caller_sms or not caller:
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
    why = caller_texts.why_not_textable(
        session,
        number=caller,
        recognised=call.recognised_by is not None,
        rules=rules.callers,
        now=now,
    )
    if why is not None:
        note_not_texted(session, ticket.id, why, call.sid, now)
        return None
    return _message(
        session, ticket.id, kind=CALLER_TICKET, channel="sms", recipient=caller, language=language
    )


def tell_caller(
    session: Session, *, ticket: Ticket, kind: str, now: datetime | None = None
) -> None:
    """Queue one update (acknowledged, resolved) for each caller who got the ticket number.

    Only a caller whose ticket-number text went out (or is going out) is told, and only
    within the caps: the rule of `tickets.caller_texts` held when that first text was queued.
    """
    rules = policy()
    if not rules.caller_sms:
        return
    now = now or utcnow()
    told = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.ticket_id == ticket.id,
            OutboxMessage.kind.in_((CALLER_TICKET, kind)),
            OutboxMessage.status.not_in(("failed", "cancelled")),
        )
        .order_by(OutboxMessage.id)
    ).all()
    # A caller whose number was purged or erased is not texted again (nor is "erased").
    already = {row.recipient for row in told if row.kind == kind} | {ERASED}
    for row in told:
        if row.kind != CALLER_TICKET or row.recipient in already:
            continue
        already.add(row.recipient)
        why = caller_texts.cap_problem(session, number=row.recipient, rules=rules.callers, now=now)
        if why is not None:
            note_not_texted(session, ticket.id, why, None, now)
            continue
        _message(
            session,
            ticket.id,
            kind=kind,
            channel="sms",
            recipient=row.recipient,
            language=row.language,
        )
