"""Shared fixtures: settings, a fresh database per test, and a signed Twilio test client."""

from __future__ import annotations

import itertools
import os
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import delete
from twilio.request_validator import RequestValidator

import ivr.models  # noqa: F401
import tickets.models  # noqa: F401
from ivr import create_app
from ivr.schema import upgrade_database
from ivr.settings import load_settings
from tickets.db import Base, db

AUTH_TOKEN = "test-twilio-auth-token-0123456789"
SECRET_KEY = "test-secret-key-0123456789abcdef"
PUBLIC_URL = "https://ivr.example.test"
OFFICE_NUMBER = "+31318584900"
EMERGENCY_NUMBER = "+31318584918"
EMERGENCY_0900 = "+319006666669"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """Return the migrated test database: IVR_TEST_DATABASE_URL (PostgreSQL) or SQLite."""
    url = os.environ.get("IVR_TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    upgrade_database(url)
    return url


def build_settings(database_url: str, data_dir: Path, **overrides):
    """Return validated settings for tests, with dotted-key overrides."""
    environ = {
        "IVR_DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_SECRET_KEY": SECRET_KEY,
        "IVR_PUBLIC_URL": PUBLIC_URL,
    }
    values = {"data_dir": str(data_dir)}
    values.update(overrides)
    return load_settings(environ=environ, overrides=values)


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
    yield application
    db.session.remove()
    _empty_all_tables()


@pytest.fixture
def client(app):
    """Return a Flask test client."""
    return app.test_client()


@pytest.fixture
def session(app):
    """Return the database session the app uses."""
    return db.session


def parse_twiml(response) -> ET.Element:
    """Assert a webhook answered TwiML and return its parsed <Response> element."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    body = response.get_data(as_text=True)
    assert body.startswith("<?xml"), body[:80]
    root = ET.fromstring(body)
    assert root.tag == "Response"
    return root


def spoken(root: ET.Element) -> str:
    """Return everything <Say> says in the TwiML, in order, joined by spaces."""
    return " ".join((say.text or "") for say in root.iter("Say"))


def dialled(root: ET.Element) -> list[str]:
    """Return every number, client or SIP address a <Dial> in the TwiML would ring."""
    numbers = []
    for dial in root.iter("Dial"):
        if dial.text and dial.text.strip():
            numbers.append(dial.text.strip())
        for child in dial:
            numbers.append((child.text or "").strip())
    return numbers


def sign(url: str, params: dict) -> str:
    """Return the X-Twilio-Signature Twilio would send for `url` and `params`."""
    return RequestValidator(AUTH_TOKEN).compute_signature(url, params)


class Call:
    """One simulated inbound call, posting signed webhooks like Twilio does."""

    _counter = itertools.count(1)

    def __init__(self, client, *, to: str, from_: str | None, sid: str | None = None):
        self.client = client
        self.sid = sid or f"CA{uuid.uuid4().hex}"
        self.base = {
            "CallSid": self.sid,
            "AccountSid": "AC" + "0" * 32,
            "To": to,
            "Called": to,
            "CallStatus": "ringing",
            "ApiVersion": "2010-04-01",
            "Direction": "inbound",
        }
        if from_ is not None:
            self.base["From"] = from_
            self.base["Caller"] = from_

    def post(self, path: str, **params) -> ET.Element:
        """Post a signed webhook to `path` (which may carry a query) and parse the TwiML."""
        return parse_twiml(self.post_raw(path, **params))

    def post_raw(self, path: str, **params):
        """Post a signed webhook and return the raw Flask response."""
        data = {**self.base, **{k: v for k, v in params.items() if v is not None}}
        signature = sign(PUBLIC_URL + path, data)
        return self.client.post(path, data=data, headers={"X-Twilio-Signature": signature})

    def start(self) -> ET.Element:
        """Place the call: Twilio's first request to /voice/incoming."""
        root = self.post("/voice/incoming")
        self.base["CallStatus"] = "in-progress"
        return root

    def press(self, root: ET.Element, digits: str) -> ET.Element:
        """Press keys at the first <Gather> of `root`, posting to its action."""
        gather = root.find("Gather")
        assert gather is not None, ET.tostring(root, encoding="unicode")
        return self.post(gather.get("action"), Digits=digits)

    def speak(self, root: ET.Element, text: str, confidence: str = "0.9") -> ET.Element:
        """Say `text` at the first speech <Gather> of `root`."""
        gather = root.find("Gather")
        assert gather is not None, ET.tostring(root, encoding="unicode")
        return self.post(gather.get("action"), SpeechResult=text, Confidence=confidence)

    def silence(self, root: ET.Element) -> ET.Element:
        """Let a <Gather> time out: Twilio runs the next verb, usually a <Redirect>."""
        gather = root.find("Gather")
        assert gather is not None
        if gather.get("actionOnEmptyResult") == "true":
            return self.post(gather.get("action"))
        redirect = root.find("Redirect")
        assert redirect is not None, "no <Redirect> after the <Gather>: the call would hang up"
        return self.post(redirect.text.strip())

    def dial_result(self, root: ET.Element, status: str, **params) -> ET.Element:
        """Finish the <Dial> of `root` with DialCallStatus `status`, posting to its action."""
        dial = root.find("Dial")
        assert dial is not None, ET.tostring(root, encoding="unicode")
        return self.post(dial.get("action"), DialCallStatus=status, **params)

    def hang_up(self, duration: str = "12") -> None:
        """Send the final status callback of the call."""
        response = self.post_raw(
            "/voice/status", CallStatus="completed", CallDuration=duration, SequenceNumber="9"
        )
        assert response.status_code in (200, 204)


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

    from ivr.cli import main

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
