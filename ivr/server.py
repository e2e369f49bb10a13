"""Run the service under gunicorn, the production WSGI server."""

from __future__ import annotations

import logging

from gunicorn.app.base import BaseApplication

from ivr.settings import Settings

log = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):
    """Gunicorn application that builds our Flask app in each worker."""

    def __init__(self, settings: Settings, options: dict) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn 25+ opens one admin socket per user; instances sharing a host would
            # take it from each other, and we do not use it.
            self.cfg.set("control_socket_disable", True)

    def load(self):
        from ivr import create_app
        from ivr.outage.replay import start_replay_thread

        app = create_app(self.settings)
        start_replay_thread(app)
        return app


def run_server(
    settings: Settings, *, host: str | None, port: int | None, workers: int | None
) -> None:
    """Migrate the database if it is reachable, then serve until stopped."""
    from ivr.schema import upgrade_database

    try:
        upgrade_database(settings.resolved_database_url)
    except Exception as exc:  # noqa: BLE001 - a down database must not keep calls unanswered
        log.error("database not reachable at start-up (%s); serving in fallback mode", exc)
    server = settings.server
    options = {
        "bind": f"{host or server.host}:{port or server.port}",
        "workers": workers or server.workers,
        "threads": server.threads,
        "worker_class": "gthread",
        "timeout": server.timeout,
        "graceful_timeout": 20,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
    }
    _Gunicorn(settings, options).run()
