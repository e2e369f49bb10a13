"""Major incidents in the JSON API: list, open by hand, update, acknowledge and resolve.

    GET  /api/incidents                       newest first; `status` (open, resolved), `page`
    GET  /api/incidents/<number>
    POST /api/incidents                       {"summary"}: opened by hand, 201 (409: one is open)
    POST /api/incidents/<number>/updates      {"text"}: texted to every caller who may be, 201
    POST /api/incidents/<number>/acknowledge  stops its paging and that of its tickets
    POST /api/incidents/<number>/resolve      {"text"?, "resolve_tickets"?: false}: callers told

Each answers with the incident as the list shows it; errors are {"error", "code"}.
"""

from __future__ import annotations

from flask import g, jsonify, request
from sqlalchemy import select

from core.clock import utcnow
from core.db import db
from tickets import lifecycle
from tickets.api import bp, json_error
from tickets.api.actions import json_body
from tickets.incidents import Incident, grouping, pages, telling
from tickets.incidents.documents import incident_to_dict
from tickets.incidents.models import INCIDENT_STATUSES
from tickets.staff import token_required

MAX_PER_PAGE = 100
LIST_PARAMETERS = ("status", "page", "per_page")


def _page_number(name: str, default: int, high: int) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= high:
        raise ValueError(f"{name} must be a whole number from 1 to {high}")
    return int(value)


@bp.get("/incidents")
@token_required
def list_incidents():
    """List incidents, newest first."""
    try:
        unknown = [name for name in request.args if name not in LIST_PARAMETERS]
        if unknown:
            raise ValueError(
                f"unknown parameter {unknown[0][:40]!r}; use {', '.join(LIST_PARAMETERS)}"
            )
        status = request.args.get("status")
        if status is not None and status not in INCIDENT_STATUSES:
            raise ValueError(f"status must be one of {', '.join(INCIDENT_STATUSES)}")
        page = _page_number("page", 1, 100_000)
        per_page = _page_number("per_page", 20, MAX_PER_PAGE)
    except ValueError as exc:
        return json_error(str(exc), 400, code="invalid_input")
    statement = select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc())
    if status is not None:
        statement = statement.where(Incident.status == status)
    found = list(db.session.scalars(statement.offset((page - 1) * per_page).limit(per_page + 1)))
    return jsonify(
        incidents=[incident_to_dict(db.session, incident) for incident in found[:per_page]],
        page=page,
        per_page=per_page,
        has_more=len(found) > per_page,
    )


def _answer(incident: Incident, status: int = 200):
    return jsonify(incident_to_dict(db.session, incident)), status


def _refused(message: str, status: int, code: str):
    db.session.rollback()
    return json_error(message, status, code=code)


@bp.get("/incidents/<id:number>")
@token_required
def show_incident(number: int):
    """Show one incident."""
    incident = db.session.get(Incident, number)
    if incident is None:
        return json_error(f"no incident {number}", 404, code="not_found")
    return jsonify(incident_to_dict(db.session, incident))


@bp.post("/incidents")
@token_required
def open_incident():
    """Open an incident by hand, with a summary."""
    try:
        summary = json_body().get("summary")
        if not isinstance(summary, str):
            raise ValueError("The summary is required (text).")
        incident = grouping.open_by_hand(
            db.session, summary=summary, opened_by=g.api_staff.email, now=utcnow()
        )
    except grouping.AlreadyOpen as exc:
        return _refused(str(exc), 409, "incident_open")
    except (ValueError, lifecycle.InvalidInput) as exc:
        return _refused(str(exc), 400, "invalid_input")
    return _answer(incident, 201)


def _change(number: int, change, status: int = 200):
    """Find the incident, apply `change(incident, body)` as the token's staff, answer with it."""
    incident = db.session.get(Incident, number)
    if incident is None:
        return json_error(f"no incident {number}", 404, code="not_found")
    try:
        change(incident, json_body())
    except pages.NotOpen as exc:
        return _refused(str(exc), 409, "invalid_transition")
    except (ValueError, lifecycle.InvalidInput) as exc:
        return _refused(str(exc), 400, "invalid_input")
    return _answer(incident, status)


@bp.post("/incidents/<id:number>/updates")
@token_required
def post_incident_update(number: int):
    """Post an update: what new callers hear, texted to every caller who may be texted."""

    def change(incident: Incident, body: dict) -> None:
        text = body.get("text")
        if not isinstance(text, str):
            raise ValueError("The text of the update is required (text).")
        telling.post_update(
            db.session, incident=incident, text=text, author=g.api_staff.email, now=utcnow()
        )

    return _change(number, change, 201)


@bp.post("/incidents/<id:number>/acknowledge")
@token_required
def acknowledge_incident(number: int):
    """Acknowledge the incident: its paging and that of its tickets stop."""

    def change(incident: Incident, body: dict) -> None:
        pages.acknowledge(db.session, incident=incident, staff=g.api_staff, via="api", now=utcnow())

    return _change(number, change)


@bp.post("/incidents/<id:number>/resolve")
@token_required
def resolve_incident(number: int):
    """Resolve the incident and tell its callers; its tickets resolved too when asked."""

    def change(incident: Incident, body: dict) -> None:
        text, resolve_tickets = body.get("text"), body.get("resolve_tickets", False)
        if text is not None and not isinstance(text, str):
            raise ValueError("The text must be text.")
        if not isinstance(resolve_tickets, bool):
            raise ValueError("resolve_tickets must be true or false.")
        telling.resolve(
            db.session,
            incident=incident,
            text=text,
            author=g.api_staff.email,
            staff=g.api_staff,
            resolve_tickets=resolve_tickets,
            now=utcnow(),
        )

    return _change(number, change)
