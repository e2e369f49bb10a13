"""Bring the database schema up to date with the Alembic migrations."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def register_models() -> None:
    """Import every module that declares tables, so the metadata knows all of them.

    The migrations and everything that walks every table (the privacy scrub, the tests'
    clean-up) rely on it; a feature's tables live beside the feature.
    """
    import ivr.models  # noqa: F401
    import tickets.callback_queue.models  # noqa: F401
    import tickets.helpdesk.models  # noqa: F401
    import tickets.incidents.models  # noqa: F401
    import tickets.models  # noqa: F401


def alembic_config(url: str) -> Config:
    """Return an Alembic configuration for the given database URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def keep_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (SQLite gives its WAL the same mode).

    It holds password and PIN hashes and the client directory.
    """
    if str(path) in ("", ":memory:"):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        # An older installation's files are tightened too; one we may not change stays as it is.
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(file, 0o600)


def upgrade_database(url: str) -> None:
    """Apply every migration that the database at `url` has not had yet."""
    if url.startswith("sqlite:///"):
        keep_private(Path(url.removeprefix("sqlite:///")))
    command.upgrade(alembic_config(url), "heads")
