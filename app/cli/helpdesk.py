"""`ivr helpdesk`: check the helpdesk receivers by hand, and make a signing secret."""

from __future__ import annotations

import base64
import secrets
import sys
import time

import click

from app.cli.common import settings_or_exit


@click.group()
def helpdesk() -> None:
    """Helpdesk events: every ticket change, signed, to the helpdesk support uses."""


@helpdesk.command("test")
@click.option("--receiver", "name", default=None, help="Only this receiver (default: all).")
def helpdesk_test(name: str | None) -> None:
    """Send each receiver a helpdesk.test event now; exit 1 when one did not take it."""
    from core.clock import utcnow
    from ivr.messaging.helpdesk import send_test

    settings = settings_or_exit()
    receivers = [hook for hook in settings.helpdesk.receivers if name in (None, hook.name)]
    if not receivers:
        known = ", ".join(hook.name for hook in settings.helpdesk.receivers) or "none configured"
        click.echo(
            f"error: no helpdesk receiver {name or ''} ({known})".replace("  ", " "), err=True
        )
        sys.exit(1)
    failed = False
    for hook in receivers:
        started = time.monotonic()
        outcome = send_test(settings, hook, now=utcnow())
        took = time.monotonic() - started
        if outcome.delivered:
            click.echo(
                f"{hook.name} ({hook.address}): delivered, HTTP {outcome.status} in {took:.2f} s"
            )
        else:
            failed = True
            click.echo(f"{hook.name} ({hook.address}): not delivered: {outcome.error}", err=True)
    sys.exit(1 if failed else 0)


@helpdesk.command("secret")
def helpdesk_secret() -> None:
    """Print a new signing secret (whsec_ and 32 random bytes in base64) for a receiver."""
    click.echo("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
