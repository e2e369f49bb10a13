"""Plain helpers for every test module: test secrets, signed webhooks, TwiML and the clock."""

from __future__ import annotations

import itertools
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from twilio.request_validator import RequestValidator

from core.settings import load_settings

AUTH_TOKEN = "test-twilio-auth-token-0123456789"
SECRET_KEY = "test-secret-key-0123456789abcdef"
PUBLIC_URL = "https://ivr.example.test"
OFFICE_NUMBER = "+31318584900"
EMERGENCY_NUMBER = "+31318584918"
EMERGENCY_0900 = "+319006666669"

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# The `clock` fixture's default moment: a working Monday morning, far from any DST change.
MONDAY_MORNING = datetime(2026, 12, 7, 10, 0, tzinfo=AMSTERDAM)


class Clock:
    """A frozen, settable clock the app reads through `app.config["CLOCK"]`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def build_settings(database_url: str, data_dir: Path, **overrides):
    """Return validated settings for tests, with dotted-key overrides.

    The database deadline is 2 s here, not the shipped 0.5 s: on a shared CI machine a stall of
    more than a second now and then would otherwise cut a healthy statement mid-test. The tests
    of the deadlines themselves set their own.
    """
    environ = {
        "IVR_DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_SECRET_KEY": SECRET_KEY,
        "IVR_PUBLIC_URL": PUBLIC_URL,
    }
    values = {"data_dir": str(data_dir), "database_timeout_seconds": 2.0}
    values.update(overrides)
    return load_settings(environ=environ, overrides=values)


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
        # Twilio sends Digits only to a <Gather> that listens to the keypad (the default).
        assert "dtmf" in (gather.get("input") or "dtmf").split(), gather.get("input")
        return self.post(gather.get("action"), Digits=digits)

    def speak(self, root: ET.Element, text: str, confidence: str = "0.9") -> ET.Element:
        """Say `text` at the first <Gather> of `root`, which must listen for speech."""
        gather = root.find("Gather")
        assert gather is not None, ET.tostring(root, encoding="unicode")
        # Twilio sends a SpeechResult only to a <Gather> with speech among its inputs.
        assert "speech" in (gather.get("input") or "dtmf").split(), gather.get("input")
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
