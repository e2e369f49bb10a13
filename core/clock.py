"""The one clock of the whole service."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, has_app_context


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime: the one clock of the whole service.

    Tests replace it by setting `app.config["CLOCK"]` to a callable; everything that asks for
    the time (flows, call log, services, column defaults) asks here, so a test's clock holds
    everywhere at once.
    """
    if has_app_context():
        clock = current_app.config.get("CLOCK")
        if clock is not None:
            return clock()
    return datetime.now(UTC)
