"""The `ivr twilio` commands: point our numbers at this service through Twilio's REST API."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import click


@click.group()
def twilio() -> None:
    """Our phone numbers at Twilio."""


@dataclass
class WireReport:
    """What `ivr twilio wire` did, number by number."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def summary(self, public_url: str, *, dry_run: bool) -> str:
        """Return the closing line for people."""
        verb = "would change" if dry_run else "changed"
        if self.failed:
            done = f"{len(self.changed)} {verb}, {len(self.unchanged)} already right"
            return f"{len(self.failed)} number(s) not wired ({done}); see the errors above"
        if not self.changed:
            return f"nothing changed: every number already points at {public_url}"
        return (
            f"{verb} {len(self.changed)} number(s), {len(self.unchanged)} already right; "
            f"all point at {public_url}"
        )


def wire_number(settings, plan, resource, report: WireReport, *, dry_run: bool) -> None:
    """Bring one number's settings at Twilio to the plan, and say what changed."""
    from app.wiring import ChangeRefused, apply_differences, differences, trunk_in_the_way

    if resource is None:
        report.failed.append(plan.number)
        click.echo(
            f"error: {plan.label}: not found on Twilio account {settings.twilio_account_sid}; "
            "buy or port it into this account, or correct the number in the configuration",
            err=True,
        )
        return
    trunk = trunk_in_the_way(plan, resource)
    if trunk:
        report.failed.append(plan.number)
        click.echo(f"error: {plan.label}: {trunk}", err=True)
        return
    found = differences(plan, resource)
    if not found:
        report.unchanged.append(plan.number)
        click.echo(f"{plan.label}: already wired, unchanged")
        return
    if not dry_run:
        try:
            apply_differences(settings, resource.sid, found)
        except ChangeRefused as exc:
            report.failed.append(plan.number)
            click.echo(f"error: {plan.label}: not changed: {exc}", err=True)
            return
    report.changed.append(plan.number)
    prefix = "would set " if dry_run else ""
    click.echo(f"{plan.label}: {prefix}" + "; ".join(d.change() for d in found))


@twilio.command("wire")
@click.option("--dry-run", is_flag=True, help="Say what would change, change nothing.")
def twilio_wire(dry_run: bool) -> None:
    """Point every configured number at this service's public_url, through Twilio's REST API.

    Each line's number gets VoiceUrl, VoiceFallbackUrl and StatusCallback (POST), the SMS
    number (paging.sms_from) SmsUrl. A number not on the account is an error; the others are
    wired all the same. Running it again changes nothing.
    """
    from app.cli.common import settings_or_exit
    from app.wiring import TwilioUnavailable, find_number, number_plans, unusable_setup

    settings = settings_or_exit()
    refusal = unusable_setup(settings)
    if refusal:
        click.echo(f"error: {refusal}; nothing changed", err=True)
        sys.exit(2)
    report = WireReport()
    try:
        # Every number is looked up first: a Twilio that refuses us changes nothing at all.
        found = [(plan, find_number(settings, plan.number)) for plan in number_plans(settings)]
        for plan, resource in found:
            wire_number(settings, plan, resource, report, dry_run=dry_run)
    except TwilioUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        if report.changed:
            click.echo(f"changed before that: {', '.join(report.changed)}", err=True)
        sys.exit(1)
    click.echo(report.summary(settings.public_url, dry_run=dry_run))
    if report.failed:
        sys.exit(1)
