"""The support JSON API under /api: `tickets` reads, `actions` changes, `oncall` the rota.

Both sides need a valid bearer token. What they share lives here: the blueprint and
errors answered as JSON.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

bp = Blueprint("api", __name__, url_prefix="/api")


def json_error(message: str, status: int, *, code: str | None = None):
    """Return a JSON error response: {"error": message}, plus "code" when given."""
    response = jsonify(error=message, code=code) if code else jsonify(error=message)
    response.status_code = status
    return response


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
from tickets.api import actions, call_backs, incidents, oncall, tickets  # noqa: E402

__all__ = [
    "actions",
    "bp",
    "call_backs",
    "incidents",
    "is_api_path",
    "json_error",
    "oncall",
    "tickets",
]
