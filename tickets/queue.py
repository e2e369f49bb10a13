"""The support queue: filter, search and page tickets, open urgent call-tickets first.

Built for a large table: every query is driven by an index (created_at/id, status/priority,
organisation, caller), pages are fetched with LIMIT/OFFSET plus one extra row instead of a
COUNT over the whole table, and only the (few) open urgent tickets are ever counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, false, func, not_, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from core.phones import to_e164
from tickets.models import OPEN_STATUSES, STATUSES, Organization, Ticket

MAX_PER_PAGE = 200
FEED_LIMIT = 20
MAX_SEARCH_ORGANISATIONS = 10_000


@dataclass(frozen=True)
class QueueFilter:
    """What staff asked to see; empty fields do not filter."""

    status: str | None = None  # one status, or "open" for every open status
    priority: str | None = None
    reason: str | None = None
    organization_id: int | None = None
    created_from: datetime | None = None  # inclusive, aware
    created_before: datetime | None = None  # exclusive, aware
    search: str | None = None
    region: str = "NL"


@dataclass
class QueuePage:
    """One page of the queue."""

    tickets: list[Ticket]
    page: int
    per_page: int
    has_next: bool
    open_urgent: int = 0

    @property
    def has_previous(self) -> bool:
        """Return whether there is a page before this one."""
        return self.page > 1


def open_urgent() -> ColumnElement[bool]:
    """Return the condition 'an urgent ticket that is still open'."""
    return and_(Ticket.priority == "urgent", Ticket.status.in_(OPEN_STATUSES))


def caller_number(text: str, region: str = "NL") -> str | None:
    """Return `text` as an E.164 phone number if it is one, in any usual notation."""
    digits = sum(ch.isdigit() for ch in text)
    if digits < 6 or len(text) > 40:
        return None
    return to_e164(text, region=region)


def search_condition(session: Session, text: str, region: str = "NL") -> ColumnElement[bool]:
    """Match a ticket number, a caller's phone number or part of an organisation's name."""
    text = text.strip()[:100]
    matches: list[ColumnElement[bool]] = []
    compact = text.replace(" ", "").removeprefix("#")
    if compact.isdigit():
        ticket_id = Ticket.id_from_number(compact)
        if ticket_id is not None:
            matches.append(Ticket.id == ticket_id)
    number = caller_number(text, region)
    if number:
        matches.append(Ticket.caller == number)
    # No name holds a NUL (PostgreSQL refuses one in a text parameter, with an error).
    if len(text) >= 2 and "\x00" not in text:
        named = select(Organization.id).where(
            func.lower(Organization.name).contains(text.lower(), autoescape=True)
        )
        # Looked up first (a small table) so the planner gets plain values it can use an index
        # for; only a very broad search falls back to the (slower) subquery.
        organisations = session.scalars(named.limit(MAX_SEARCH_ORGANISATIONS + 1)).all()
        if len(organisations) > MAX_SEARCH_ORGANISATIONS:
            matches.append(Ticket.organization_id.in_(named))
        elif organisations:
            matches.append(Ticket.organization_id.in_(organisations))
    return or_(*matches) if matches else false()


def filter_conditions(session: Session, filters: QueueFilter) -> list[ColumnElement[bool]]:
    """Return the WHERE conditions of a filter."""
    conditions: list[ColumnElement[bool]] = []
    if filters.status == "open":
        conditions.append(Ticket.status.in_(OPEN_STATUSES))
    elif filters.status in STATUSES:
        conditions.append(Ticket.status == filters.status)
    if filters.priority:
        conditions.append(Ticket.priority == filters.priority)
    if filters.reason:
        conditions.append(Ticket.reason == filters.reason)
    if filters.organization_id is not None:
        conditions.append(Ticket.organization_id == filters.organization_id)
    if filters.created_from is not None:
        conditions.append(Ticket.created_at >= filters.created_from)
    if filters.created_before is not None:
        conditions.append(Ticket.created_at < filters.created_before)
    if filters.search:
        conditions.append(search_condition(session, filters.search, filters.region))
    return conditions


def _newest_first(statement, offset: int, limit: int):
    return (
        statement.order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .offset(offset)
        .limit(limit)
        .options(
            selectinload(Ticket.organization),
            selectinload(Ticket.contact),
            selectinload(Ticket.assigned_to),
        )
    )


def list_queue(
    session: Session, filters: QueueFilter, *, page: int = 1, per_page: int = 50
) -> QueuePage:
    """Return one page of tickets: open urgent ones first, then the rest, newest first."""
    page = max(1, page)
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    conditions = filter_conditions(session, filters)
    urgent = open_urgent()
    urgent_total = session.scalar(select(func.count(Ticket.id)).where(*conditions, urgent)) or 0
    offset = (page - 1) * per_page
    wanted = per_page + 1  # one more than shown tells whether a next page exists
    rows: list[Ticket] = []
    if offset < urgent_total:
        rows += session.scalars(
            _newest_first(select(Ticket).where(*conditions, urgent), offset, wanted)
        ).all()
    if len(rows) < wanted:
        rest_offset = max(0, offset - urgent_total)
        rows += session.scalars(
            _newest_first(
                select(Ticket).where(*conditions, not_(urgent)), rest_offset, wanted - len(rows)
            )
        ).all()
    return QueuePage(
        tickets=rows[:per_page],
        page=page,
        per_page=per_page,
        has_next=len(rows) > per_page,
        open_urgent=urgent_total,
    )


def new_urgent_tickets(session: Session, *, after_id: int) -> list[Ticket]:
    """Return urgent tickets created after ticket `after_id`, oldest first."""
    return list(
        session.scalars(
            select(Ticket)
            .where(Ticket.id > after_id, Ticket.priority == "urgent")
            .order_by(Ticket.id)
            .limit(FEED_LIMIT)
            .options(selectinload(Ticket.organization), selectinload(Ticket.contact))
        )
    )


def latest_ticket_id(session: Session) -> int:
    """Return the id of the newest ticket (0 when there is none)."""
    return session.scalar(select(func.max(Ticket.id))) or 0
