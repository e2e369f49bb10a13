"""`GET /metrics`: who may read it and every worker's values (`routes`), and the shared state
read at scrape time (`state`); the counters themselves live with the code that moves them.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Serve `/metrics` and time the webhooks."""
    from app.metrics import routes
    from ivr.metrics import timing

    app.register_blueprint(routes.bp)
    app.before_request(timing.start_clock)
    app.teardown_request(timing.stop_clock)
