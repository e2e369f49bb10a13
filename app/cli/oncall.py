"""The `ivr oncall` commands: import a level's shifts, show who is on call, hand out feeds."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from app.cli.common import active_staff_or_exit, open_database, settings_or_exit
from core.clock import utcnow
from core.db import unit_of_work


@click.group()
def oncall() -> None:
    """The on-call rota of the emergency line."""


def parse_moment(text: str | None, zone) -> datetime:
    """Return an ISO 8601 moment (local time when it has no offset), or now."""
    from tickets.rota import read_moment

    if not text:
        return utcnow()
    moment = read_moment(text, zone)
    if moment is None:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint="--at")
    return moment


@oncall.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--level", type=click.IntRange(1, 3), required=True, help="1 rings first.")
@unit_of_work
def oncall_import(file: Path, level: int) -> None:
    """Replace a level's imported shifts with the events of an iCalendar file."""
    from tickets.oncall.calendar import CalendarRejected
    from tickets.oncall.imports import import_level

    settings = settings_or_exit()
    session = open_database(settings)
    try:
        count = import_level(
            session,
            file.read_bytes(),
            level=level,
            zone=settings.zone,
            now=utcnow(),
            horizon_days=settings.oncall.import_horizon_days,
        )
    except CalendarRejected as rejected:
        for problem in rejected.problems:
            click.echo(f"error: {file.name}: {problem}", err=True)
        click.echo(f"nothing imported; level {level} is unchanged", err=True)
        sys.exit(1)
    click.echo(f"level {level}: {count} shifts imported from {file.name}")


@oncall.command("show")
@click.option("--at", "at", default=None, help="ISO 8601 time (default now; local without offset).")
def oncall_show(at: str | None) -> None:
    """Say who is on call at a moment: a line per level."""
    from tickets.rota import on_call_at

    settings = settings_or_exit()
    moment = parse_moment(at, settings.zone)
    session = open_database(settings)
    levels = on_call_at(session, moment)
    click.echo(f"on call at {moment.astimezone(settings.zone).isoformat(timespec='minutes')}")
    if not levels:
        names = ", ".join(f"{e.name} {e.number}" for e in settings.emergency.engineers)
        click.echo(f"nobody on the rota; the configured engineers are rung: {names}")
        return
    for level in levels:
        people = "; ".join(f"{e.name} <{e.email}> {e.phone}" for e in level.engineers)
        click.echo(f"level {level.level}: {people}")


@oncall.command("feed")
@click.argument("email")
@click.option("--revoke", is_flag=True, help="End the engineer's feed URL.")
@unit_of_work
def oncall_feed(email: str, revoke: bool) -> None:
    """Print an engineer's secret calendar-feed URL (a new one ends the old), or revoke it."""
    from tickets.oncall.feeds import issue_feed_token, revoke_feed_token

    settings = settings_or_exit()
    session = open_database(settings)
    account = active_staff_or_exit(session, email)
    if revoke:
        revoke_feed_token(session, staff=account)
        click.echo(f"feed of {account.email} revoked")
        return
    token = issue_feed_token(session, staff=account)
    base = settings.public_url or "http://127.0.0.1:8000"
    click.echo(f"{base}/oncall/feed/{token}.ics")
