"""`ivr serve`: run the service under gunicorn."""

from __future__ import annotations

import sys

import click

from app.cli.common import settings_or_exit
from core.settings import ConfigError


@click.command()
@click.option("--host", default=None, help="Address to listen on (default from config).")
@click.option("--port", default=None, type=int, help="Port to listen on (default from config).")
@click.option("--workers", default=None, type=int, help="gunicorn worker processes.")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the service with gunicorn."""
    from app.server import run_server

    settings = settings_or_exit()
    try:
        run_server(settings, host=host, port=port, workers=workers)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
