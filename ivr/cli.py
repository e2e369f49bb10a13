"""The `ivr` command: serve, manage the directory, staff and hours, and place test calls."""

from __future__ import annotations

import getpass
import logging
import sys

import click

from ivr.settings import ConfigError, Settings, load_settings

log = logging.getLogger(__name__)


def settings_or_exit() -> Settings:
    """Load the settings, or stop with one line naming the bad key."""
    try:
        return load_settings()
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


def open_database(settings: Settings):
    """Bring the schema up to date and return a session on the configured database."""
    from ivr.schema import upgrade_database
    from tickets.db import db

    url = settings.resolved_database_url
    upgrade_database(url)
    db.configure(url, timeout_seconds=settings.database_timeout_seconds)
    return db.session()


@click.group()
def main() -> None:
    """OTYS support phone lines."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default from config).")
@click.option("--port", default=None, type=int, help="Port to listen on (default from config).")
@click.option("--workers", default=None, type=int, help="gunicorn worker processes.")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the service with gunicorn."""
    from ivr.server import run_server

    settings = settings_or_exit()
    run_server(settings, host=host, port=port, workers=workers)


@main.group()
def hours() -> None:
    """Working-hours override for both lines."""


@hours.command("set")
@click.argument("mode", type=click.Choice(["open", "closed", "auto"]))
def hours_set(mode: str) -> None:
    """Force the lines open or closed, or follow the schedule again (auto)."""
    from tickets.availability import set_hours_override

    settings = settings_or_exit()
    session = open_database(settings)
    set_hours_override(session, mode=mode, set_by=f"cli:{getpass.getuser()}")
    click.echo(f"hours override: {mode}")
