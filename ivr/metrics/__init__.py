"""Metrics for Prometheus: what is counted (`counters`), read at scrape time (`state`), timed
per webhook (`timing`), and `GET /metrics` (`routes`).

The ticket side's metric objects are in `tickets.metrics`; `GET /metrics` serves both.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Serve `/metrics` and time the webhooks."""
    # Imported here: the call flows import `counters` alone, and `state` reads their modules.
    from ivr.metrics import routes, timing

    app.register_blueprint(routes.bp)
    app.before_request(timing.start_clock)
    app.teardown_request(timing.stop_clock)
