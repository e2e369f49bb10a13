"""Who is on call over HTTP: the JSON answer for support's scripts and each engineer's feed."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, Response, current_app, jsonify, request

from tickets.db import db, utcnow
from tickets.oncall.calendar import feed_for
from tickets.oncall.feeds import staff_for_feed_token
from tickets.oncall.rota import on_call_at, shifts_between
from tickets.staff import token_required

bp = Blueprint("oncall", __name__)

# A feed shows a month back (the last hand-overs) and a year ahead.
FEED_PAST = timedelta(days=31)
FEED_AHEAD = timedelta(days=366)
MAX_MOMENT = 40


def _error(message: str, status: int) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def read_moment(text: str | None) -> datetime | None:
    """Return an ISO 8601 moment (local to the service's zone without an offset), or None."""
    if text is None:
        return utcnow()
    if len(text) > MAX_MOMENT:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=current_app.config["SETTINGS"].zone)
    return moment


@bp.get("/api/oncall")
@token_required
def who_is_on_call():
    """Say who is on call at `at` (default now), level by level."""
    unknown = [name for name in request.args if name != "at"]
    if unknown:
        return _error(f"unknown parameter {unknown[0][:40]!r}; use at", 400)
    moment = read_moment(request.args.get("at"))
    if moment is None:
        return _error("at must be an ISO 8601 time, e.g. 2026-12-01T10:00:00+01:00", 400)
    levels = on_call_at(db.session, moment)
    return jsonify(
        at=moment.isoformat(),
        levels=[
            {
                "level": level.level,
                "engineers": [
                    {"name": e.name, "email": e.email, "phone": e.phone} for e in level.engineers
                ],
            }
            for level in levels
        ],
    )


@bp.get("/oncall/feed/<token>.ics")
def engineer_feed(token: str):
    """Serve an engineer's own shifts to their calendar; the secret URL is the only key."""
    staff = staff_for_feed_token(db.session, token)
    if staff is None:
        return Response("unknown or revoked feed\n", status=404, mimetype="text/plain")
    now = utcnow()
    shifts = shifts_between(db.session, now - FEED_PAST, now + FEED_AHEAD, staff_id=staff.id)
    body = feed_for(staff, shifts, product=request.host or "otys-support")
    response = Response(body, mimetype="text/calendar")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
