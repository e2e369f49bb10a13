"""`ivr demo`: the demo directory and staff account that `make run` loads."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from app.cli.common import cli_actor, echo_import, open_database, settings_or_exit
from core.db import unit_of_work
from core.settings import DEFAULTS, Settings

DEMO_DIRECTORY = DEFAULTS / "demo-directory.csv"
DEMO_STAFF_EMAIL = "demo@otys.example"


@click.command()
@click.option("--password", "password", envvar="IVR_DEMO_PASSWORD", default=None, hidden=True)
@unit_of_work
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
    from core.clock import utcnow
    from tickets.availability import get_hours_override

    hours_now = describe_hours_now(settings, now=utcnow(), override=get_hours_override(session))
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
{hours_now}
"""
    )


def describe_hours_now(settings: Settings, *, now: datetime, override: str) -> str:
    """Say whether the emergency line is open now, and how to force both lines open to try it.

    Out of hours an emergency call takes a voicemail instead of ringing an engineer, which
    surprises whoever tries the demo at night or at the weekend.
    """
    from ivr.hours import is_open, next_opening

    schedule = settings.schedule_for(settings.emergency.schedule)
    zone, country = settings.zone, settings.holiday_country
    local = now.astimezone(zone)
    moment = f"{local:%a %H:%M} in {settings.timezone}"
    force = ".venv/bin/ivr hours set open"
    auto = ".venv/bin/ivr hours set auto"
    if override != "auto":
        state = "OPEN" if override == "open" else "CLOSED"
        return (
            f"  Hours now:  emergency line {state} ({moment}), forced with"
            f" `ivr hours set {override}`\n              {auto}   (follow the schedule again)"
        )
    if is_open(schedule, now, zone=zone, country=country):
        return (
            f"  Hours now:  emergency line open ({moment}, until {schedule.closes:%H:%M})\n"
            "              out of hours it takes a voicemail instead of ringing an engineer;\n"
            f"              {force}   keeps both lines open ({auto}: the schedule again)"
        )
    opening = next_opening(schedule, now, zone=zone, country=country)
    opens = ""
    if opening is not None:
        day = "today" if opening.date() == local.date() else f"{opening:%a %d %b}"
        opens = f"; it opens {day} {opening:%H:%M}"
    return (
        f"  Hours now:  emergency line CLOSED ({moment}{opens}):\n"
        "              an emergency call takes a voicemail instead of ringing an engineer.\n"
        "              To try every path now, force both lines open:\n"
        f"              {force}   (and {auto} to follow the schedule again)"
    )
