"""The on-call side of the JSON API: who is on call at a moment, level by level."""

from __future__ import annotations

from datetime import datetime

from flask import current_app, jsonify, request

from tickets.api import bp, json_error
from tickets.db import db, utcnow
from tickets.oncall.rota import on_call_at
from tickets.staff import token_required

# Longer than any ISO 8601 moment with an offset; anything longer is not one.
MAX_MOMENT = 40


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


@bp.get("/oncall")
@token_required
def who_is_on_call():
    """Say who is on call at `at` (default now), level by level."""
    unknown = [name for name in request.args if name != "at"]
    if unknown:
        return json_error(f"unknown parameter {unknown[0][:40]!r}; use at", 400)
    moment = read_moment(request.args.get("at"))
    if moment is None:
        return json_error("at must be an ISO 8601 time, e.g. 2026-12-01T10:00:00+01:00", 400)
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
