"""Serve callers while the database is away: notice it fast, answer without it, journal the call.

- `detection`: fail database connections fast and remember for a moment that they failed;
- `watchdog`: cut off database calls past their deadline (a server that stopped answering);
- `webhook`: read a webhook by its endpoint: its line, its leg, what it tells the journal;
- `without_database`: the TwiML that serves a caller from the configuration alone;
- `journal`: the local file those calls are written to;
- `replay` and `replayers`: apply the journal to the database once it is back;
- `routes`: `/voice/fallback*` and `/voice/outage/*`, and the short cut while the database is down;
- `errors`: the app-wide error handler, so a caller never hears Twilio's "application error".
"""

from __future__ import annotations

from flask import Flask

from core.db import db
from core.settings import Settings
from ivr.outage.detection import DatabaseHealth, guard_connections
from ivr.outage.errors import register_error_handler
from ivr.outage.journal import Journal
from ivr.outage.routes import Outage, bp, skip_database_while_down

__all__ = ["bp", "init_app"]


def init_app(app: Flask, settings: Settings) -> Outage:
    """Attach the journal, the database hint, the short cut while it is down, the error handler."""
    outage = Outage(
        settings=settings,
        journal=Journal(settings.resolved_journal_path),
        health=DatabaseHealth(settings.database_retry_seconds),
    )
    app.extensions["outage"] = outage
    for engine in db.engines():
        guard_connections(engine, settings.database_timeout_seconds)
    app.before_request(skip_database_while_down)
    register_error_handler(app)
    return outage
