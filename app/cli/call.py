"""`ivr call`: the terminal telephone, a tool for people placing simulated calls."""

from __future__ import annotations

import sys

import click

from app.cli.common import settings_or_exit

# Where `make run` keeps the development secrets the server was started with.
DEV_ENV = "var/dev.env"


@click.command("call")
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
    from ivr.phone.numbers import called_number, calling_number, is_valid_caller
    from ivr.phone.telephone import place_call

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("must start with http:// or https://", param_hint="--url")
    settings = settings_or_exit(
        hint=f"ivr call signs its requests with the server's own secrets: load them first, "
        f"e.g. `set -a; . ./{DEV_ENV}; set +a` (the file `make run` made), or set "
        "TWILIO_AUTH_TOKEN and IVR_SECRET_KEY as the server has them"
    )
    try:
        called = called_number(settings, to)
        caller = calling_number(from_)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not is_valid_caller(caller):
        click.echo(
            f"note: --from {caller} is not a valid phone number: the service will treat the "
            "caller as withheld (no caller ID), as it would a real call from it",
            err=True,
        )
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
