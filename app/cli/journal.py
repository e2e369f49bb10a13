"""`ivr journal`: the outage journal's state, and replaying it by hand."""

from __future__ import annotations

import sys

import click

from app.cli.common import open_database, settings_or_exit


@click.group()
def journal() -> None:
    """The outage journal: calls served while the database was unreachable."""


@journal.command("status")
def journal_status() -> None:
    """Show how many journal entries wait for the database."""
    from ivr.outage.replay import journal_status_lines

    for line in journal_status_lines(settings_or_exit()):
        click.echo(line)


@journal.command("replay")
def journal_replay() -> None:
    """Replay the journal into the database now (the service also does this by itself)."""
    from ivr.outage.replay import replay_journal

    settings = settings_or_exit()
    open_database(settings)
    report = replay_journal(settings)
    click.echo(
        f"applied {report.applied}, already in {report.already}, waiting {report.deferred}, "
        f"failed {report.failed}, unknown {report.unknown}, "
        f"unreadable lines {report.skipped_lines}"
    )
    if report.archived:
        click.echo(f"journal complete; archived as {report.archived}")
    if not report.complete:
        click.echo("journal not complete: see the log; it is tried again later", err=True)
        sys.exit(1)
