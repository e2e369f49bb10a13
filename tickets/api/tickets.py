"""The read side of the JSON API: list tickets and show one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from core.db import db
from tickets import lifecycle
from tickets.api import bp, json_error
from tickets.models import MAX_ID, PRIORITIES, REASONS, SOURCES, STATUSES, Ticket
from tickets.serialize import ticket_loading_options, ticket_to_dict
from tickets.staff import token_required

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
# A list pages through its first 10,000 tickets at most (page × per_page): deeper, OFFSET
# would make the database walk past a million rows for one page, holding a connection and
# running into its statement timeout. Filters narrow a list to what lies deeper.
MAX_ROWS = 10_000
MAX_PAGE = MAX_ROWS
CHOICE_FILTERS: dict[str, tuple[str, ...]] = {
    "priority": PRIORITIES,
    "status": STATUSES,
    "source": SOURCES,
    "reason": REASONS,
}
LIST_PARAMETERS = (*CHOICE_FILTERS, "organization", "page", "per_page")
WHOLE_NUMBER = re.compile(r"[0-9]{1,10}")


class BadParameter(ValueError):
    """A query parameter of the API is unknown, repeated or has a bad value."""


@dataclass(frozen=True)
class TicketQuery:
    """Which tickets a list request asks for: filters and page."""

    filters: dict[str, str] = field(default_factory=dict)
    organization_id: int | None = None
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE


def _whole_number(args: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    value = args.get(name)
    if value is None:
        return None
    if not WHOLE_NUMBER.fullmatch(value) or not low <= int(value) <= high:
        raise BadParameter(f"{name} must be a whole number from {low} to {high}")
    return int(value)


def parse_ticket_query(args: MultiDict[str, str]) -> TicketQuery:
    """Read the list filters and page from query parameters, refusing anything else."""
    for name in args:
        if name not in LIST_PARAMETERS:
            raise BadParameter(f"unknown parameter {name[:40]!r}; use {', '.join(LIST_PARAMETERS)}")
        if len(args.getlist(name)) > 1:
            raise BadParameter(f"{name} is given more than once")
    filters = {}
    for name, choices in CHOICE_FILTERS.items():
        value = args.get(name)
        if value is None:
            continue
        if value not in choices:
            raise BadParameter(f"{name} must be one of {', '.join(choices)}")
        filters[name] = value
    page = _whole_number(args, "page", 1, MAX_PAGE) or 1
    per_page = _whole_number(args, "per_page", 1, MAX_PER_PAGE) or DEFAULT_PER_PAGE
    if page * per_page > MAX_ROWS:
        raise BadParameter(
            f"page × per_page may be at most {MAX_ROWS}: a list pages through its newest "
            f"{MAX_ROWS} tickets; filter it (status, priority, source, reason, organization) "
            "to reach older ones"
        )
    return TicketQuery(
        filters=filters,
        organization_id=_whole_number(args, "organization", 1, MAX_ID),
        page=page,
        per_page=per_page,
    )


def find_tickets(session: Session, query: TicketQuery) -> tuple[list[Ticket], bool]:
    """Return one page of tickets, newest first, and whether another page follows."""
    statement = select(Ticket)
    for name, value in query.filters.items():
        statement = statement.where(getattr(Ticket, name) == value)
    if query.organization_id is not None:
        statement = statement.where(Ticket.organization_id == query.organization_id)
    # One row more than the page tells whether there is a next page, without COUNT(*).
    statement = (
        statement.order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .offset((query.page - 1) * query.per_page)
        .limit(query.per_page + 1)
        .options(*ticket_loading_options())
    )
    tickets = list(session.scalars(statement))
    return tickets[: query.per_page], len(tickets) > query.per_page


@bp.get("/tickets")
@token_required
def list_tickets():
    """List tickets, newest first, filtered and paginated."""
    try:
        query = parse_ticket_query(request.args)
    except BadParameter as exc:
        return json_error(str(exc), 400)
    tickets, has_more = find_tickets(db.session, query)
    return jsonify(
        tickets=[ticket_to_dict(ticket) for ticket in tickets],
        page=query.page,
        per_page=query.per_page,
        has_more=has_more,
    )


@bp.get("/tickets/<number>")
@token_required
def show_ticket(number: str):
    """Show one ticket with its calls and timeline."""
    try:
        ticket = lifecycle.find_ticket(
            db.session, number, options=ticket_loading_options(with_events=True)
        )
    except lifecycle.TicketNotFound:
        return json_error(f"no ticket {number[:20]}", 404)
    return jsonify(ticket_to_dict(ticket, with_events=True))
