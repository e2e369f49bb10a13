"""The `ivr` command: a module per command group, shared helpers in `common`.

`serve`, `directory`, `staff`, `oncall`, `hours`, `journal`, `privacy`, `helpdesk`, `call`
and `demo`; each
module imports what its commands need when they run, so `ivr --help` stays quick.
"""

from __future__ import annotations

import click

from app.cli import (
    call,
    demo,
    directory,
    helpdesk,
    hours,
    journal,
    oncall,
    privacy,
    serve,
    staff,
)


@click.group()
def main() -> None:
    """OTYS support phone lines."""


for command in (
    serve.serve,
    directory.directory,
    staff.staff,
    oncall.oncall,
    hours.hours,
    journal.journal,
    privacy.privacy,
    helpdesk.helpdesk,
    call.call,
    demo.demo,
):
    main.add_command(command)
