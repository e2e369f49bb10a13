"""`ivr incident open|update|resolve|list`: major incidents from the command line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from app.cli.common import cli_actor, open_database, settings_or_exit
from core.db import work


@contextmanager
def _service() -> Iterator:
    """Yield a session inside the service's app, so paging, texts and events are configured."""
    from app import create_app

    settings = settings_or_exit()
    app = create_app(settings)
    # After the app: commands get the schema brought up to date and people's patience.
    session = open_database(settings)
    with app.app_context(), work():
        yield session


def _refuse(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _on_incident(number: int, change: Callable) -> None:
    """Apply `change(session, incident)` to incident `number`, one unit of work, or say why not."""
    from core.clock import utcnow
    from tickets.incidents import Incident
    from tickets.incidents.pages import NotOpen

    with _service() as session:
        incident = session.get(Incident, number)
        if incident is None:
            _refuse(f"there is no incident {number}")
        try:
            said = change(session, incident, utcnow())
        except (NotOpen, ValueError) as exc:
            session.rollback()
            _refuse(str(exc))
        click.echo(said)


@click.group()
def incident() -> None:
    """Major incidents: open one by hand, post updates, resolve, list."""


@incident.command("open")
@click.argument("text")
def incident_open(text: str) -> None:
    """Open an incident with this summary (recent outage reports join it)."""
    from core.clock import utcnow
    from tickets.incidents import grouping

    with _service() as session:
        try:
            opened = grouping.open_by_hand(
                session, summary=text, opened_by=cli_actor(), now=utcnow()
            )
        except (grouping.AlreadyOpen, ValueError) as exc:
            session.rollback()
            _refuse(str(exc))
        count = len(opened.tickets)
        click.echo(f"incident {opened.number} opened; {count} ticket(s) in it")


@incident.command("update")
@click.argument("number", type=click.IntRange(1, 2**31 - 1))
@click.argument("text")
def incident_update(number: int, text: str) -> None:
    """Post an update: texted to every caller who may be texted, heard by new callers."""
    from tickets.incidents import telling

    def change(session, incident, now) -> str:
        told = telling.post_update(
            session, incident=incident, text=text, author=cli_actor(), now=now
        )
        return f"incident {incident.number}: update posted, {told.texted} caller(s) texted"

    _on_incident(number, change)


@incident.command("resolve")
@click.argument("number", type=click.IntRange(1, 2**31 - 1))
@click.argument("text", required=False, default="")
@click.option(
    "--resolve-tickets",
    is_flag=True,
    help="Resolve its open tickets too (default: they stay open).",
)
def incident_resolve(number: int, text: str, resolve_tickets: bool) -> None:
    """Resolve the incident and tell its callers; its tickets stay open unless asked."""
    from tickets.incidents import telling

    def change(session, incident, now) -> str:
        told = telling.resolve(
            session,
            incident=incident,
            text=text,
            author=cli_actor(),
            resolve_tickets=resolve_tickets,
            now=now,
        )
        return f"incident {incident.number} resolved, {told.texted} caller(s) texted"

    _on_incident(number, change)


@incident.command("list")
@click.option("--status", type=click.Choice(["open", "resolved"]), default=None)
def incident_list(status: str | None) -> None:
    """List incidents, newest first: number, status, opened, tickets, organisations, summary."""
    from sqlalchemy import select

    from tickets.incidents import Incident
    from tickets.incidents.documents import incident_to_dict

    with _service() as session:
        statement = select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc())
        if status:
            statement = statement.where(Incident.status == status)
        for found in session.scalars(statement.limit(100)):
            data = incident_to_dict(session, found)
            click.echo(
                f"{data['number']}\t{data['status']}\t{data['opened_at']}\t"
                f"{len(data['tickets'])} ticket(s)\t{len(data['organizations'])} organisation(s)\t"
                f"{data['summary'] or '(opened by itself)'}"
            )
