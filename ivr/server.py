"""Run the service under gunicorn, the production WSGI server."""

from __future__ import annotations

import ipaddress
import logging

from gunicorn.app.base import BaseApplication

from ivr.settings import ConfigError, Settings

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
        from ivr.messaging.sender import start_sender_thread
        from ivr.outage.replay import start_replay_thread

        app = create_app(self.settings)
        start_replay_thread(app)
        start_sender_thread(app)
        return app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, host: str) -> None:
    """Refuse to listen beyond this machine when the service would believe any Host header.

    Signatures are checked over the URL Twilio used; without `public_url` or trusted proxies
    that URL is rebuilt from the request's own Host header, which anyone can set.
    """
    if _is_loopback(host) or settings.public_url or settings.trusted_proxies:
        return
    raise ConfigError(
        f"configuration error: public_url: ivr serve listens on {host}, so set IVR_PUBLIC_URL "
        "(the URL Twilio calls) or trusted_proxies (the reverse proxy's address)"
    )


def gunicorn_options(
    settings: Settings, *, host: str | None, port: int | None, workers: int | None
) -> dict:
    """Return gunicorn's settings for `ivr serve`."""
    server = settings.server
    return {
        "bind": f"{host or server.host}:{port or server.port}",
        "workers": workers or server.workers,
        "threads": server.threads,
        "worker_class": "gthread",
        "timeout": server.timeout,
        "graceful_timeout": 20,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        # gunicorn believes X-Forwarded-Proto only from these; by default it would from any
        # local process. Nobody, without configured proxies.
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or "",
    }


def run_server(
    settings: Settings, *, host: str | None, port: int | None, workers: int | None
) -> None:
    """Migrate the database if it is reachable, then serve until stopped."""
    from ivr.messaging.policy import warn_if_silent
    from ivr.schema import upgrade_database

    check_exposure(settings, host or settings.server.host)
    warn_if_silent(settings)
    try:
        upgrade_database(settings.resolved_database_url)
    except Exception as exc:  # noqa: BLE001 - a down database must not keep calls unanswered
        log.error("database not reachable at start-up (%s); serving in fallback mode", exc)
    _Gunicorn(settings, gunicorn_options(settings, host=host, port=port, workers=workers)).run()
