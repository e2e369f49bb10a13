"""`ivr directory import`: add or update the client directory from a CSV file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.cli.common import echo_import, open_database, settings_or_exit
from core.db import unit_of_work


@click.group()
def directory() -> None:
    """The client directory: organisations and their contacts."""


@directory.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@unit_of_work
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
