"""`ivr hours set`: support's override of the working-hours schedule."""

from __future__ import annotations

import click

from app.cli.common import cli_actor, open_database, settings_or_exit
from core.db import unit_of_work


@click.group()
def hours() -> None:
    """Working-hours override for both lines."""


@hours.command("set")
@click.argument("mode", type=click.Choice(["open", "closed", "auto"]))
@unit_of_work
def hours_set(mode: str) -> None:
    """Force the lines open or closed, or follow the schedule again (auto)."""
    from tickets.availability import set_hours_override

    settings = settings_or_exit()
    session = open_database(settings)
    set_hours_override(session, mode=mode, set_by=cli_actor())
    click.echo(f"hours override: {mode}")
