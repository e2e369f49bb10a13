"""The on-call side of the JSON API: who is on call at a moment, level by level."""

from __future__ import annotations

from flask import jsonify, request

from core.clock import utcnow
from core.db import db
from core.settings import current_settings
from tickets.api import bp, json_error
from tickets.rota import on_call_at, read_moment
from tickets.staff import token_required


@bp.get("/oncall")
@token_required
def who_is_on_call():
    """Say who is on call at `at` (default now), level by level."""
    unknown = [name for name in request.args if name != "at"]
    if unknown:
        return json_error(f"unknown parameter {unknown[0][:40]!r}; use at", 400)
    at = request.args.get("at")
    zone = current_settings().zone
    moment = utcnow() if at is None else read_moment(at, zone)
    if moment is None:
        return json_error("at must be an ISO 8601 time, e.g. 2026-12-01T10:00:00+01:00", 400)
    levels = on_call_at(db.session, moment)
    return jsonify(
        at=moment.astimezone(zone).isoformat(),
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
