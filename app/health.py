"""Tell a load balancer whether this instance can answer calls."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core.clock import utcnow
from core.db import db
from core.settings import current_settings
from ivr.messaging.sender import backlog
from tickets import paging
from tickets.paging_state import paging_state

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """Answer 200 while calls can be served; say whether the database is reachable.

    Also whether paging can send and recordings can be played: neither changes the status,
    a load balancer keeps an instance that answers calls.
    """
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError as exc:
        log.warning("health check: database unavailable (%s)", type(exc).__name__)
        db.session.rollback()
        database = "unavailable"
    status = "ok" if database == "ok" else "degraded"
    body = {"status": status, "database": database, "paging": _paging(database == "ok")}
    body["recordings"] = "ok" if current_settings().twilio_account_sid else "cannot_play"
    if database == "ok":
        body["messages"] = _sender_state()
    return jsonify(body)


def _paging(database_up: bool) -> str:
    """Say whether paging can send: "ok", "off" or "cannot_send" (`tickets.paging_state`).

    Without the database only the configuration can tell.
    """
    try:
        state = paging_state(db.session if database_up else None, paging.policy(), utcnow())
    except SQLAlchemyError:
        db.session.rollback()
        state = paging_state(None, paging.policy(), utcnow())
    if state.state != "ok":
        log.warning("health check: paging %s: %s", state.state, state.advice)
    return state.state


def _sender_state() -> dict:
    """Say whether messages (pages, the callers' SMS) go out in time, or the sender is behind."""
    try:
        waiting, oldest = backlog(db.session, utcnow())
    except SQLAlchemyError:
        db.session.rollback()
        return {"sender": "unknown"}
    settings = current_settings()
    behind = waiting > 0 and oldest > settings.paging.behind_seconds
    if behind:
        log.warning("health check: %s messages waiting, the oldest for %.0f s", waiting, oldest)
    return {
        "sender": "behind" if behind else "ok",
        "waiting": waiting,
        "oldest_waiting_seconds": round(oldest),
    }
