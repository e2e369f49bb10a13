"""What the `ivr` commands share: settings, the database, the audit actor, printing imports."""

from __future__ import annotations

import getpass
import sys

import click

from core.settings import ConfigError, Settings, load_settings


def settings_or_exit(hint: str | None = None) -> Settings:
    """Load the settings, or stop with one line naming the bad key (and `hint`, what to do)."""
    try:
        return load_settings()
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        if hint:
            click.echo(hint, err=True)
        sys.exit(2)


def open_database(settings: Settings):
    """Bring the schema up to date and return a session on the configured database."""
    from app.schema import register_models, upgrade_database
    from core.db import db

    url = settings.resolved_database_url
    register_models()
    upgrade_database(url)
    # Commands run by people may take their time (a large import); webhooks must not.
    db.configure(url, timeout_seconds=10, limit_statements=False)
    return db.session()


def cli_actor() -> str:
    """Return how the audit trail names a change made with the `ivr` command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli:unknown"


def active_staff_or_exit(session, email: str):
    """Return the active staff account with this e-mail, or stop with one line saying so."""
    from tickets.staff import find_staff

    account = find_staff(session, email)
    if account is None or not account.active:
        click.echo(f"error: no active staff account {email.strip().lower()}", err=True)
        sys.exit(1)
    return account


def echo_import(label: str, result) -> None:
    """Print an import's counts and every rejected row with its line number and reasons."""
    click.echo(
        f"{label}: {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged, {len(result.rejected)} rejected"
    )
    for row in result.rejected:
        click.echo(f"  rejected line {row.line} ({row.email or 'no e-mail'}): {row.reason}")
