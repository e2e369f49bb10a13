"""`ivr staff`: support-staff accounts, their phones and API tokens."""

from __future__ import annotations

import getpass
import sys

import click

from app.cli.common import active_staff_or_exit, cli_actor, open_database, settings_or_exit
from core.db import unit_of_work


@click.group()
def staff() -> None:
    """Support-staff accounts for the dashboard and the API."""


def stdin_is_terminal() -> bool:
    """Return whether standard input is a terminal someone types at."""
    return sys.stdin is not None and sys.stdin.isatty()


def read_new_password() -> str:
    """Ask twice on a terminal; otherwise read one line from standard input."""
    if stdin_is_terminal():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            click.echo("error: the two passwords differ", err=True)
            sys.exit(1)
        return first
    return sys.stdin.readline().rstrip("\r\n") if sys.stdin is not None else ""


@staff.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Name shown in the dashboard and on tickets.")
@click.option("--role", type=click.Choice(["agent", "admin"]), default="agent", show_default=True)
@click.option("--phone", default=None, help="Makes the account an engineer the rota can ring.")
@unit_of_work
def staff_add(email: str, name: str, role: str, phone: str | None) -> None:
    """Create a staff account; the password is read from standard input."""
    from tickets.staff import StaffError, create_staff, find_staff

    settings = settings_or_exit()
    session = open_database(settings)
    if find_staff(session, email) is not None:
        click.echo(f"error: {email.strip().lower()} already has an account", err=True)
        sys.exit(1)
    password = read_new_password()
    try:
        account = create_staff(
            session,
            email=email,
            name=name,
            password=password,
            role=role,
            phone=phone,
            actor=cli_actor(),
        )
    except StaffError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    engineer = f", engineer on {account.phone}" if account.phone else ""
    click.echo(f"created {account.role} account {account.email}{engineer}")


@staff.command("phone")
@click.argument("email")
@click.argument("number", required=False)
@click.option("--remove", is_flag=True, help="The account is no longer an engineer to ring.")
@unit_of_work
def staff_phone(email: str, number: str | None, remove: bool) -> None:
    """Set the phone number the rota rings for a staff account, or remove it."""
    from tickets.staff import StaffError, set_phone

    if bool(number) == remove:
        raise click.UsageError("give a NUMBER, or --remove")
    settings = settings_or_exit()
    session = open_database(settings)
    account = active_staff_or_exit(session, email)
    try:
        set_phone(session, staff=account, phone=number, actor=cli_actor())
    except StaffError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"{account.email}: " + (f"engineer on {account.phone}" if account.phone else "no phone")
    )


@staff.command("token")
@click.argument("email")
@click.option("--revoke", is_flag=True, help="Revoke every API token of the account instead.")
@click.option(
    "--days", type=click.IntRange(1, 730), default=365, show_default=True, help="Validity."
)
@unit_of_work
def staff_token(email: str, revoke: bool, days: int) -> None:
    """Print a new API bearer token for a staff account, alone on its line (or revoke them)."""
    from tickets.staff import find_staff, issue_token, revoke_tokens

    settings = settings_or_exit()
    session = open_database(settings)
    if revoke:
        account = find_staff(session, email)
        if account is None:
            click.echo(f"error: no staff account {email.strip().lower()}", err=True)
            sys.exit(1)
        count = revoke_tokens(session, staff=account, actor=cli_actor())
        click.echo(f"revoked {count} API token(s) of {account.email}")
        return
    account = active_staff_or_exit(session, email)
    click.echo(issue_token(session, staff=account, days=days, actor=cli_actor()))


@staff.command("deactivate")
@click.argument("email")
@unit_of_work
def staff_deactivate(email: str) -> None:
    """Close an account: it cannot sign in, its sessions and tokens stop working."""
    from tickets.staff import StaffError, deactivate

    settings = settings_or_exit()
    session = open_database(settings)
    account = active_staff_or_exit(session, email)
    try:
        deactivate(session, staff=account, actor=cli_actor())
    except StaffError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"deactivated {account.email}: its sessions and API tokens no longer work")


@staff.command("test-page")
@click.argument("email")
def staff_test_page(email: str) -> None:
    """Send an engineer a test SMS and e-mail through the real channels, as paging does.

    Exit status 0 once the providers accepted both; 1 with a line per channel that failed.
    """
    from app import create_app
    from core.db import db
    from ivr.messaging.testpage import send_test_page

    settings = settings_or_exit()
    open_database(settings)
    app = create_app(settings)
    with app.app_context():
        account = active_staff_or_exit(db.session, email)
        results = unit_of_work(send_test_page)(settings, db.session, account)
    for result in results:
        click.echo(result.describe(), err=not result.accepted)
    if not all(result.accepted for result in results):
        sys.exit(1)
