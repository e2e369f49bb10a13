"""The `ivr` command: serve, manage the directory, staff and hours, and place test calls."""

from __future__ import annotations

import getpass
import importlib.metadata
import logging
import sys
from pathlib import Path

import click

from ivr.settings import PROJECT_ROOT, ConfigError, Settings, load_settings

log = logging.getLogger(__name__)

# The installed distribution: its metadata is the one source of the version.
DISTRIBUTION = "otys-ivr"


def installed_version() -> str:
    """Return the version of the installed package (pyproject.toml's, as pip installed it)."""
    return importlib.metadata.version(DISTRIBUTION)


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


@click.group()
@click.version_option(package_name=DISTRIBUTION, prog_name="ivr")
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
    try:
        run_server(settings, host=host, port=port, workers=workers)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


@main.group()
def directory() -> None:
    """The client directory: organisations and their contacts."""


@directory.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def directory_import(file: Path) -> None:
    """Add or update contacts from a CSV file: organization,name,email,role,phone,pin."""
    from tickets.directory import DirectoryFileError, decode_directory_file, import_directory

    settings = settings_or_exit()
    try:
        text = decode_directory_file(file.read_bytes())
    except OSError as exc:
        click.echo(f"error: cannot read {file}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    except DirectoryFileError as exc:
        click.echo(f"error: {file}: {exc}", err=True)
        sys.exit(1)
    session = open_database(settings)
    try:
        result = import_directory(session, text, secret=settings.secret_key.get_secret_value())
    except DirectoryFileError as exc:
        click.echo(f"error: {file}: {exc}", err=True)
        sys.exit(1)
    echo_import(file.name, result)


def echo_import(label: str, result) -> None:
    """Print an import's counts and every rejected row with its line number and reasons."""
    click.echo(
        f"{label}: {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged, {len(result.rejected)} rejected"
    )
    for row in result.rejected:
        click.echo(f"  rejected line {row.line} ({row.email or 'no e-mail'}): {row.reason}")


@main.group()
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


DEMO_DIRECTORY = PROJECT_ROOT / "config" / "demo-directory.csv"
DEMO_STAFF_EMAIL = "demo@otys.example"


@main.command()
@click.option("--password", "password", envvar="IVR_DEMO_PASSWORD", default=None, hidden=True)
def demo(password: str | None) -> None:
    """Load the demo directory and staff account (IVR_DEMO_PASSWORD), and say how to try it."""
    from tickets.directory import decode_directory_file, import_directory
    from tickets.staff import StaffError, check_password, create_staff, find_staff

    settings = settings_or_exit()
    session = open_database(settings)
    text = decode_directory_file(DEMO_DIRECTORY.read_bytes())
    result = import_directory(session, text, secret=settings.secret_key.get_secret_value())
    echo_import("demo directory", result)
    if password:
        account = find_staff(session, DEMO_STAFF_EMAIL)
        if account is None:
            try:
                create_staff(
                    session,
                    email=DEMO_STAFF_EMAIL,
                    name="Demo Support",
                    password=password,
                    role="admin",
                    actor=cli_actor(),
                )
            except StaffError as exc:
                click.echo(f"error: demo staff account: {exc}", err=True)
                sys.exit(1)
            click.echo(f"demo staff account {DEMO_STAFF_EMAIL} created")
        elif not check_password(account, password):
            click.echo(
                f"note: {DEMO_STAFF_EMAIL} exists with another password than IVR_DEMO_PASSWORD",
                err=True,
            )
    url = f"http://{settings.server.host}:{settings.server.port}"
    click.echo(
        f"""
OTYS support lines demo
  Service:    {url}
  Dashboard:  {url}/support
              log in as {DEMO_STAFF_EMAIL}; the password is IVR_DEMO_PASSWORD in var/dev.env
  Simulated calls, from another terminal in this directory:
              set -a; . ./var/dev.env; set +a     (the same secrets as the server)
              .venv/bin/ivr call --to office
              .venv/bin/ivr call --to emergency
                (calls from +31612345678, a super user of Demo Uitzendbureau)
              .venv/bin/ivr call --to emergency --from +31687654321
                (a normal user: turned away politely)
              .venv/bin/ivr call --to emergency --from anonymous
                (then key in PIN 246810# of a key user without a phone number)
"""
    )


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
    set_hours_override(session, mode=mode, set_by=cli_actor())
    click.echo(f"hours override: {mode}")


@main.group()
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


@main.command("call")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="Running service.")
@click.option(
    "--to", "to", default="office", show_default=True, help="A number, office or emergency."
)
@click.option(
    "--from", "from_", default="+31612345678", show_default=True, help="A number, or anonymous."
)
@click.option(
    "--keys",
    default="",
    help="Scripted answers, comma-separated, one per question: keys (1, 201#), - (silence), "
    "say:words, y/n/b (does a dialled number answer), rec:words (a voicemail), hangup.",
)
def call(url: str, to: str, from_: str, keys: str) -> None:
    """Place a simulated Twilio call against a running service: a terminal telephone."""
    from ivr.phone.numbers import called_number, calling_number
    from ivr.phone.telephone import place_call

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("must start with http:// or https://", param_hint="--url")
    settings = settings_or_exit()
    try:
        called = called_number(settings, to)
        caller = calling_number(from_)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    code = place_call(
        settings,
        url=url,
        to=called,
        from_=caller,
        keys=keys,
        interactive=sys.stdin.isatty(),
        echo=click.echo,
    )
    sys.exit(code)


def _register_command_groups() -> None:
    """Attach the command groups that live beside their feature."""
    from ivr.doctor import doctor
    from ivr.oncall_commands import oncall
    from ivr.privacy_commands import privacy
    from ivr.twilio_commands import twilio

    main.add_command(oncall)
    main.add_command(privacy)
    main.add_command(twilio)
    main.add_command(doctor)


_register_command_groups()
