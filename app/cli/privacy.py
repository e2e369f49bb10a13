"""The `ivr privacy` commands: a person's data exported or erased, the retention purge by hand."""

from __future__ import annotations

import json
import sys

import click

from app.cli.common import cli_actor, open_database, settings_or_exit
from core.clock import utcnow
from core.db import unit_of_work


@click.group()
def privacy() -> None:
    """Personal data: a person's export or erasure, and the retention purge."""


def _person_or_exit(session, settings, who: str):
    """Return the person asked for, or stop with one line saying why not; nothing changes."""
    from ivr.outage.journal import Journal
    from ivr.privacy.journal_files import entries_about
    from ivr.privacy.people import PersonNotFound, find_person, holds_anything

    try:
        person = find_person(session, who)
    except PersonNotFound as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    journal = Journal(settings.resolved_journal_path)
    if not (
        holds_anything(session, person)
        or entries_about(journal, numbers=person.numbers, call_sids=())
    ):
        click.echo(f"error: nothing is held about {person.asked}", err=True)
        sys.exit(1)
    return person


@privacy.command("export")
@click.argument("who", metavar="EMAIL_OR_PHONE")
@unit_of_work
def privacy_export(who: str) -> None:
    """Print everything held about a person as JSON."""
    from ivr.privacy.export import export_person

    settings = settings_or_exit()
    session = open_database(settings)
    person = _person_or_exit(session, settings, who)
    document = export_person(session, settings, person, actor=cli_actor(), now=utcnow())
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@privacy.command("erase")
@click.argument("who", metavar="EMAIL_OR_PHONE")
@unit_of_work
def privacy_erase(who: str) -> None:
    """Remove or anonymise everything held about a person; their tickets stay, without them."""
    from ivr.privacy.erase import erase_person

    settings = settings_or_exit()
    session = open_database(settings)
    person = _person_or_exit(session, settings, who)
    report = erase_person(session, settings, person, actor=cli_actor(), now=utcnow())
    click.echo(f"erased {person.asked}:")
    for line in report.lines():
        click.echo(f"  {line}")


@privacy.command("purge")
def privacy_purge() -> None:
    """Apply the retention settings now (the service also does this once a day)."""
    report = _purge()
    click.echo(report.summary())
    if report.deletions.waiting:
        click.echo(
            f"{report.deletions.waiting} recording(s) not yet deleted at Twilio; "
            "the next purge tries again",
            err=True,
        )
        sys.exit(1)


@unit_of_work
def _purge():
    """Purge, as one unit of work: what is done stands, also when recordings still wait."""
    from ivr.privacy.retention import apply_retention

    settings = settings_or_exit()
    session = open_database(settings)
    return apply_retention(session, settings, actor=cli_actor(), now=utcnow())
