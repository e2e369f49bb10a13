"""The support JSON API under /api: `tickets` reads tickets, `actions` changes them.

Both sides need a valid bearer token. What they share lives here: the blueprint, finding a
ticket by its number, and errors answered as JSON.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from tickets import lifecycle
from tickets.models import Ticket
from tickets.serialize import ticket_loading_options

bp = Blueprint("api", __name__, url_prefix="/api")


def json_error(message: str, status: int, *, code: str | None = None):
    """Return a JSON error response: {"error": message}, plus "code" when given."""
    response = jsonify(error=message, code=code) if code else jsonify(error=message)
    response.status_code = status
    return response


def find_ticket(session: Session, number: str) -> Ticket:
    """Return the ticket with its calls and timeline, fresh from the database, or raise."""
    ticket_id = lifecycle.ticket_id_for(number)
    ticket = None
    if ticket_id is not None:
        ticket = session.scalar(
            select(Ticket)
            .where(Ticket.id == ticket_id)
            .options(*ticket_loading_options(with_events=True))
            .execution_options(populate_existing=True)
        )
    if ticket is None:
        raise lifecycle.TicketNotFound(f"There is no ticket {number[:20]}.")
    return ticket


def is_api_path(path: str) -> bool:
    """Return whether a request path belongs to the JSON API."""
    return path == "/api" or path.startswith("/api/")


@bp.app_errorhandler(HTTPException)
def _answer_api_errors_in_json(exc: HTTPException):
    """Answer HTTP errors under /api (unknown path, wrong method, ...) with JSON."""
    if not is_api_path(request.path) or exc.code is None:
        return exc
    message = exc.name.lower()
    if exc.description and exc.description != type(exc).description:
        message = exc.description
    response = json_error(message, exc.code)
    for name, value in exc.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


# The two sides add their views to `bp`; they are imported last because they import it.
from tickets.api import actions, tickets  # noqa: E402

__all__ = ["actions", "bp", "find_ticket", "is_api_path", "json_error", "tickets"]
