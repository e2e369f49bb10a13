"""Shared fixtures: settings, a fresh database per test, a frozen clock and signed Twilio calls.

Fixtures only: plain helpers (signing, TwiML parsing, test secrets) live in helpers.py.
"""

from __future__ import annotations

import os

import pytest
from helpers import (
    AUTH_TOKEN,
    MONDAY_MORNING,
    OFFICE_NUMBER,
    PUBLIC_URL,
    SECRET_KEY,
    Call,
    Clock,
    build_settings,
)
from sqlalchemy import delete
from twilio_helpers import ACCOUNT_SID

from app import create_app
from app.schema import register_models, upgrade_database
from bench.standin import TwilioStandIn
from core.db import Base, db

register_models()  # every table, for the clean-up between tests


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """Return the migrated test database: IVR_TEST_DATABASE_URL (PostgreSQL) or SQLite."""
    url = os.environ.get("IVR_TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    upgrade_database(url)
    return url


@pytest.fixture
def settings_overrides() -> dict:
    """Override in a test module to change settings: {'emergency.ring_strategy': 'sequential'}."""
    return {}


@pytest.fixture
def settings(database_url, tmp_path, settings_overrides):
    """Return the settings of the app under test."""
    return build_settings(database_url, tmp_path, **settings_overrides)


def _empty_all_tables() -> None:
    with db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))


@pytest.fixture
def app(settings):
    """Return the app on an empty database; every table is emptied again afterwards."""
    application = create_app(settings)
    application.config["TESTING"] = True
    _empty_all_tables()
    # The `session` fixture's registry: an `ivr` command run by the test configures a new one,
    # and what the test left open in the first must not hold the next test's clean-up.
    registry = db.session
    yield application
    registry.remove()
    db.session.remove()
    _empty_all_tables()


@pytest.fixture
def clock(app) -> Clock:
    """Freeze the app's one clock (`app.config["CLOCK"]`) on a working Monday morning.

    Set `clock.now` to move it. Every test whose outcome depends on the date, the hour or the
    time zone takes this fixture, so it passes at any hour on any host (see .ci/run).
    """
    frozen = Clock(MONDAY_MORNING)
    app.config["CLOCK"] = frozen
    return frozen


@pytest.fixture
def client(app):
    """Return a Flask test client."""
    return app.test_client()


@pytest.fixture
def session(app):
    """Return the database session the app uses."""
    return db.session


@pytest.fixture
def phone(client):
    """Return a factory of simulated calls: phone(to=..., from_=...)."""

    def make(*, to: str = OFFICE_NUMBER, from_: str | None = "+31612345678", sid=None) -> Call:
        return Call(client, to=to, from_=from_, sid=sid)

    return make


@pytest.fixture
def cli(app, database_url, monkeypatch):
    """Return a runner of the `ivr` command on the test database: cli("staff", "token", email)."""
    from click.testing import CliRunner

    from app.cli import main

    environ = {
        "IVR_DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_SECRET_KEY": SECRET_KEY,
        "IVR_PUBLIC_URL": PUBLIC_URL,
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    for name in ("IVR_CONFIG", "IVR_DEMO_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict | None = None):
        return runner.invoke(main, list(args), input=input, env=env, catch_exceptions=False)

    return run


@pytest.fixture(scope="module")
def twilio_account():
    """Return a stand-in of Twilio's REST API holding the test account (twilio_helpers)."""
    standin = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield standin
    standin.stop()
