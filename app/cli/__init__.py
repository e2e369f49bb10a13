"""The `ivr` command: a module per command group, shared helpers in `common`.

`serve`, `directory`, `staff`, `oncall`, `hours`, `incident`, `journal`, `privacy`, `helpdesk`,
`twilio`, `doctor`, `call` and `demo`; each
module imports what its commands need when they run, so `ivr --help` stays quick.
"""

from __future__ import annotations

import importlib.metadata

import click

from app.cli import (
    call,
    demo,
    directory,
    doctor,
    helpdesk,
    hours,
    incident,
    journal,
    oncall,
    privacy,
    serve,
    staff,
    twilio,
)

# The installed distribution: its metadata is the one source of the version.
DISTRIBUTION = "otys-ivr"


def installed_version() -> str:
    """Return the version of the installed package (pyproject.toml's, as pip installed it)."""
    return importlib.metadata.version(DISTRIBUTION)


@click.group()
@click.version_option(package_name=DISTRIBUTION, prog_name="ivr")
def main() -> None:
    """OTYS support phone lines."""


for command in (
    serve.serve,
    directory.directory,
    staff.staff,
    oncall.oncall,
    hours.hours,
    incident.incident,
    journal.journal,
    privacy.privacy,
    helpdesk.helpdesk,
    twilio.twilio,
    doctor.doctor,
    call.call,
    demo.demo,
):
    main.add_command(command)
