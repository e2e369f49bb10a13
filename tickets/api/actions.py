"""The write side of the JSON API: the dashboard's ticket actions, by bearer token.

Every endpoint takes a JSON object and answers with the ticket as `GET /api/tickets/<number>`
shows it (plus `version`, `next_statuses` and the minutes logged) on success, or
{"error": message, "code": kind} with 400 (bad input), 403 (role), 404 (unknown ticket) or
409 (not allowed in the ticket's state, changed by someone else, rate approval missing).
An optional "version" in the body makes the change only apply to that version of the ticket.

    POST /api/tickets/<number>/acknowledge    acknowledge and assign to the token's staff member
    POST .../status         {"status", "question"?, "release_week"?, "rating"?, "comment"?}
    POST .../close          {"rating": 1-5, "comment"?}
    POST .../reopen         a closed ticket (admins only)
    POST .../category       {"category": "bug" | "question" | "other"}
    POST .../notes          {"text"}, answers 201
    POST .../time           {"minutes", "note"?}, answers 201
    POST .../rate-approval  the customer approved the standard rate
    POST .../release-week   {"release_week": "YYYY-Www"} of a planned ticket
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import g, jsonify, request

from core.db import db
from tickets import actions, lifecycle
from tickets.actions import TicketAction
from tickets.api import bp, json_error
from tickets.serialize import ticket_loading_options, ticket_to_dict
from tickets.staff import token_required

ERROR_CODES = {
    lifecycle.InvalidInput: "invalid_input",
    lifecycle.TicketNotFound: "not_found",
    lifecycle.InvalidTransition: "invalid_transition",
    lifecycle.StaleTicket: "stale_version",
    lifecycle.ApprovalRequired: "rate_approval_required",
    lifecycle.NotAllowed: "forbidden",
}

# (path under /api/tickets/<number>/, endpoint, action, status on success)
ROUTES: tuple[tuple[str, str, TicketAction, int], ...] = (
    ("acknowledge", "acknowledge", actions.ACKNOWLEDGE, 200),
    ("status", "change_status", actions.CHANGE_STATUS, 200),
    ("close", "close", actions.CLOSE, 200),
    ("reopen", "reopen", actions.REOPEN, 200),
    ("category", "change_category", actions.CHANGE_CATEGORY, 200),
    ("notes", "add_note", actions.ADD_NOTE, 201),
    ("time", "log_time", actions.LOG_TIME, 201),
    ("rate-approval", "approve_rate", actions.APPROVE_RATE, 200),
    ("release-week", "release_week", actions.SET_RELEASE_WEEK, 200),
)


def ticket_state(number: str) -> dict:
    """Return the ticket as the read API shows it, plus what a writer needs next."""
    ticket = lifecycle.find_ticket(
        db.session, number, options=ticket_loading_options(with_events=True)
    )
    summary = lifecycle.time_summary(db.session, ticket)
    return ticket_to_dict(ticket, with_events=True) | {
        "version": ticket.version,
        "next_statuses": list(lifecycle.next_statuses(ticket)),
        "minutes_logged": summary.total,
        "billable_minutes": summary.billable,
        "free_minutes_left": summary.free_left,
    }


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def json_body() -> dict:
    """Return the JSON object sent, or raise InvalidInput."""
    raw = request.get_data()
    if not raw:
        return {}
    try:
        # Strict JSON: no NaN or Infinity, and nesting deep enough to exhaust the stack is refused.
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise lifecycle.InvalidInput("Send a JSON object (Content-Type: application/json).")
    return data


def act(number: str, action: TicketAction, status: int):
    """Find the ticket, apply one change as the token's staff member, answer with its state."""
    try:
        body = json_body()
        ticket = lifecycle.find_ticket(db.session, number)
        action.apply(db.session, ticket=ticket, staff=g.api_staff, read=body.get, via="api")
    except lifecycle.LifecycleError as exc:
        db.session.rollback()
        code = next((c for kind, c in ERROR_CODES.items() if isinstance(exc, kind)), None)
        return json_error(str(exc), exc.status_code, code=code or "invalid_input")
    return jsonify(ticket_state(ticket.number)), status


def _action_view(action: TicketAction, status: int) -> Callable[[str], object]:
    @token_required
    def view(number: str):
        return act(number, action, status)

    return view


for _path, _endpoint, _action, _status in ROUTES:
    bp.add_url_rule(
        f"/tickets/<number>/{_path}", _endpoint, _action_view(_action, _status), methods=["POST"]
    )
