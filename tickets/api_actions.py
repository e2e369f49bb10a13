"""The write side of the support JSON API: the dashboard's ticket actions, by bearer token.

Every endpoint takes a JSON object and answers with the ticket as `GET /api/tickets/<number>`
shows it (plus `version`, `next_statuses` and the minutes logged) on success, or
{"error": message, "code": kind} with 400 (bad input), 403 (role), 404 (unknown ticket) or
409 (not allowed in the ticket's state, changed by someone else, rate approval missing).
An optional "version" in the body makes the change only apply to that version of the ticket.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select

from tickets import lifecycle
from tickets.db import db
from tickets.models import StaffUser, Ticket
from tickets.serialize import ticket_loading_options, ticket_to_dict
from tickets.staff import token_required

bp = Blueprint("api_actions", __name__, url_prefix="/api/tickets")

ERROR_CODES = {
    lifecycle.InvalidInput: "invalid_input",
    lifecycle.TicketNotFound: "not_found",
    lifecycle.InvalidTransition: "invalid_transition",
    lifecycle.StaleTicket: "stale_version",
    lifecycle.ApprovalRequired: "rate_approval_required",
    lifecycle.NotAllowed: "forbidden",
}


def ticket_state(ticket_id: int) -> dict:
    """Return the ticket as the read API shows it, plus what a writer needs next."""
    ticket = db.session.scalar(
        select(Ticket)
        .where(Ticket.id == ticket_id)
        .options(*ticket_loading_options(with_events=True))
        .execution_options(populate_existing=True)
    )
    summary = lifecycle.time_summary(db.session, ticket)
    return ticket_to_dict(ticket, with_events=True) | {
        "version": ticket.version,
        "next_statuses": list(lifecycle.next_statuses(ticket)),
        "minutes_logged": summary.total,
        "billable_minutes": summary.billable,
        "free_minutes_left": summary.free_left,
    }


def _error(exc: lifecycle.LifecycleError):
    code = next((c for kind, c in ERROR_CODES.items() if isinstance(exc, kind)), "invalid_input")
    return jsonify(error=str(exc), code=code), exc.status_code


def _body() -> dict:
    """Return the JSON object sent, or raise InvalidInput."""
    if not request.get_data():
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise lifecycle.InvalidInput("Send a JSON object (Content-Type: application/json).")
    return data


def _act(number: str, change: Callable[[Ticket, StaffUser, dict], object], status: int = 200):
    """Find the ticket, apply one change as the token's staff member, answer with its state."""
    try:
        body = _body()
        ticket = lifecycle.find_ticket(db.session, number)
        change(ticket, g.api_staff, body)
    except lifecycle.LifecycleError as exc:
        db.session.rollback()
        return _error(exc)
    return jsonify(ticket_state(ticket.id)), status


@bp.post("/<number>/acknowledge")
@token_required
def acknowledge(number: str):
    """Acknowledge a ticket and assign it to the token's staff member."""
    return _act(
        number,
        lambda ticket, staff, body: lifecycle.acknowledge_ticket(
            db.session, ticket=ticket, staff=staff, expected_version=body.get("version")
        ),
    )


@bp.post("/<number>/status")
@token_required
def change_status(number: str):
    """Change the status: {"status", "question"?, "release_week"?, "rating"?, "comment"?}."""
    return _act(
        number,
        lambda ticket, staff, body: lifecycle.change_status(
            db.session,
            ticket=ticket,
            staff=staff,
            status=body.get("status"),
            question=body.get("question"),
            release_week=body.get("release_week"),
            rating=body.get("rating"),
            comment=body.get("comment"),
            expected_version=body.get("version"),
        ),
    )


@bp.post("/<number>/close")
@token_required
def close(number: str):
    """Close with the customer's rating: {"rating": 1-5, "comment"?}."""
    return _act(
        number,
        lambda ticket, staff, body: lifecycle.close_ticket(
            db.session,
            ticket=ticket,
            staff=staff,
            rating=body.get("rating"),
            comment=body.get("comment"),
            expected_version=body.get("version"),
        ),
    )


@bp.post("/<number>/reopen")
@token_required
def reopen(number: str):
    """Reopen a closed ticket (admins only)."""
    return _act(
        number,
        lambda ticket, staff, body: lifecycle.reopen_ticket(
            db.session, ticket=ticket, staff=staff, expected_version=body.get("version")
        ),
    )


@bp.post("/<number>/category")
@token_required
def change_category(number: str):
    """Change the category: {"category": "bug" | "question" | "other"}."""
    return _act(
        number,
        lambda ticket, staff, body: lifecycle.change_category(
            db.session,
            ticket=ticket,
            staff=staff,
            category=body.get("category"),
            expected_version=body.get("version"),
        ),
    )


@bp.post("/<number>/notes")
@token_required
def add_note(number: str):
    """Add an internal note: {"text"}."""
    return _act(
        number,
        lambda ticket, staff, body: lifecycle.add_note(
            db.session, ticket=ticket, staff=staff, text=body.get("text")
        ),
        status=201,
    )


@bp.post("/<number>/time")
@token_required
def log_time(number: str):
    """Log minutes of work: {"minutes", "note"?}."""
    return _act(
        number,
        lambda ticket, staff, body: lifecycle.log_time(
            db.session,
            ticket=ticket,
            staff=staff,
            minutes=body.get("minutes"),
            note=body.get("note"),
            expected_version=body.get("version"),
        ),
        status=201,
    )


@bp.post("/<number>/rate-approval")
@token_required
def approve_rate(number: str):
    """Record that the customer approved the standard rate."""
    return _act(
        number,
        lambda ticket, staff, body: lifecycle.record_rate_approval(
            db.session, ticket=ticket, staff=staff, expected_version=body.get("version")
        ),
    )


@bp.post("/<number>/release-week")
@token_required
def release_week(number: str):
    """Change a planned ticket's release week: {"release_week": "YYYY-Www"}."""
    return _act(
        number,
        lambda ticket, staff, body: lifecycle.set_release_week(
            db.session,
            ticket=ticket,
            staff=staff,
            week=body.get("release_week"),
            expected_version=body.get("version"),
        ),
    )
