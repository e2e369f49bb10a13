"""Run the service under gunicorn, the production WSGI server."""

from __future__ import annotations

import gc
import ipaddress
import logging
import multiprocessing
import os
import re
import shutil
import sys
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from core.log_redaction import redact_logger
from core.settings import ConfigError, Settings

log = logging.getLogger(__name__)

# The body size `WholeRequests` reads at most for an app that sets no MAX_CONTENT_LENGTH.
DEFAULT_MAX_BYTES = 256 * 1024
# Connections each worker keeps open at once (gunicorn's default); more wait to be accepted.
WORKER_CONNECTIONS = 1000


class _Gunicorn(BaseApplication):
    """Gunicorn application that builds our Flask app in each worker."""

    def __init__(self, settings: Settings, options: dict, *, metrics_directory: Path) -> None:
        self.settings = settings
        self.options = options
        self.metrics_directory = metrics_directory
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn 25+ opens one admin socket per user; instances sharing a host would
            # take it from each other, and we do not use it.
            self.cfg.set("control_socket_disable", True)

    def load(self):
        from app import create_app
        from app.background import start_background
        from app.metrics.routes import DIRECTORY

        app = create_app(self.settings)
        app.config[DIRECTORY] = str(self.metrics_directory)
        start_background(app)
        served = admit_whole_requests(app, self.settings)
        # What start-up built (modules, the app, settings) lives as long as the worker. Out of
        # the collector's sight, a full collection scans only what requests left behind: about
        # 0.1 ms instead of 120 ms, a pause every request in this worker would wait through.
        gc.collect()  # what start-up left as garbage is freed, not kept for good
        gc.freeze()
        return served


class RedactingLogger(Logger):
    """gunicorn's logger, whose access and error lines carry no secret of a URL (a feed's token)."""

    def setup(self, cfg) -> None:
        """Set gunicorn's logs up, then make both of them redact (again after a reload)."""
        super().setup(cfg)
        redact_logger(self.access_log)
        redact_logger(self.error_log)


def admit_whole_requests(app, settings: Settings):
    """Wrap a WSGI app as `ivr serve` serves it: whole requests only, a few at a time."""
    from app.admission import WholeRequests

    return WholeRequests(
        app,
        places=settings.server.threads,
        support_places=settings.server.support_threads,
        read_seconds=settings.server.read_timeout,
        max_bytes=app.config.get("MAX_CONTENT_LENGTH") or DEFAULT_MAX_BYTES,
    )


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
    """Return gunicorn's settings for `ivr serve`.

    gevent workers, because nothing stands in front of `ivr serve` to buffer slow clients:
    a connection costs a greenlet, not one of a few threads. gunicorn's async workers read each
    request's line and headers under the keep-alive timeout (`read_timeout`, never 0) and close
    a connection that has not sent them by then; `WholeRequests` does the same for the body.
    """
    server = settings.server
    return {
        "bind": f"{host or server.host}:{port or server.port}",
        "workers": workers or server.workers,
        "worker_class": "gevent",
        "worker_connections": WORKER_CONNECTIONS,
        "keepalive": server.read_timeout,
        "timeout": server.timeout,
        "graceful_timeout": 20,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        "logger_class": RedactingLogger,
        # gunicorn believes X-Forwarded-Proto only from these; by default it would from any
        # local process. Nobody, without configured proxies.
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or "",
    }


def run_server(
    settings: Settings, *, host: str | None, port: int | None, workers: int | None
) -> None:
    """Migrate the database if it is reachable, then serve until stopped."""
    from ivr.messaging.policy import announce_paging

    check_exposure(settings, host or settings.server.host)
    options = gunicorn_options(settings, host=host, port=port, workers=workers)
    metrics_directory = prepare_metrics_directory(settings, options["bind"])
    options["child_exit"] = _forget_worker_gauges
    options["worker_exit"] = _thaw_collector
    announce_paging(settings)
    migrate_in_child(settings.resolved_database_url)
    _Gunicorn(settings, options, metrics_directory=metrics_directory).run()


def prepare_metrics_directory(settings: Settings, bind: str) -> Path:
    """Give this server's workers an empty directory for their metrics, before they exist.

    prometheus-client's multiprocess mode keeps each worker's values in files there, and the
    scrape adds them up, so `/metrics` says the same whichever worker answers. The library
    chooses that mode when it is first imported, from `PROMETHEUS_MULTIPROC_DIR`: it is set here,
    in the master, before anything imports it, so every worker forked later inherits it. One
    directory per listening address, emptied at start: counters begin at 0 with the server.
    """
    name = re.sub(r"[^A-Za-z0-9.-]+", "_", bind).strip("_")
    directory = (settings.data_dir / "metrics" / name).resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    from prometheus_client import values

    if not getattr(values.ValueClass, "_multiprocess", False):
        raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    return directory


def _thaw_collector(_server, _worker) -> None:
    """gunicorn's worker_exit hook: give the objects `gc.freeze()` set aside back to the collector.

    Left frozen, they are finalised only after the interpreter has torn its modules down, and
    logging's clean-up then prints tracebacks into the log at every worker's exit.
    """
    gc.unfreeze()


def _forget_worker_gauges(_server, worker) -> None:
    """gunicorn's child_exit hook: drop the gauges of a worker that ended ('live' modes)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def migrate_in_child(url: str) -> None:
    """Upgrade the schema in a child process, so that this one never imports the driver.

    The gevent workers fork from this process and monkey-patch before loading the app;
    psycopg chooses a way of waiting that lets other greenlets run only when it is first
    imported after that patching.
    """
    child = multiprocessing.get_context("fork").Process(target=_migrate, args=(url,))
    child.start()
    child.join()


def _migrate(url: str) -> None:
    from app.schema import upgrade_database

    try:
        upgrade_database(url)
    except Exception as exc:  # noqa: BLE001 - a down database must not keep calls unanswered
        log.error("database not reachable at start-up (%s); serving in fallback mode", exc)
        sys.exit(1)
