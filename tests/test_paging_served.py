"""Paging in production shape: two `ivr serve` instances (two workers each) over one database.

Every worker runs a sender; missed calls go to either instance; the local Twilio and mail
servers must each receive every message exactly once.
"""

from __future__ import annotations

import os
import time
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from helpers import AUTH_TOKEN, EMERGENCY_NUMBER
from message_servers import MailServer
from real_servers import IvrServer, empty_tables, wait_until
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.schema import upgrade_database
from bench.standin import TwilioStandIn
from core.settings import DEFAULT_CONFIG
from tickets.models import Contact, ContactPhone, OnCallShift, Organization, StaffUser

pytestmark = pytest.mark.wall_clock

ACCOUNT_SID = "AC" + "6" * 32
ENGINEER = "+31620000011"
CALLERS = ("+31611110001", "+31611110002", "+31611110003")


def _config(directory) -> str:
    """The default configuration, paging also outside working hours (the test runs any time)."""
    text = DEFAULT_CONFIG.read_text().replace("out_of_hours = false", "out_of_hours = true", 1)
    text = text.replace("send_interval_seconds = 2", "send_interval_seconds = 0.5", 1)
    path = directory / "config.toml"
    path.write_text(text)
    return path


def _people(url: str) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    with Session(engine) as session:
        engineer = StaffUser(
            email="eva@otys.test", name="Eva Engineer", password_hash="x", phone=ENGINEER
        )
        session.add(engineer)
        for index, number in enumerate(CALLERS):
            organization = Organization(name=f"Client {index}")
            contact = Contact(
                organization=organization,
                name=f"Super User {index}",
                email=f"su{index}@client.example",
                role="super_user",
            )
            contact.phones.append(ContactPhone(number=number))
            session.add(organization)
        session.flush()
        session.add(
            OnCallShift(
                level=1,
                staff_id=engineer.id,
                starts_at=now - timedelta(days=1),
                ends_at=now + timedelta(days=1),
                source="override",
                note="test",
            )
        )
        session.commit()
    engine.dispose()


def _missed_call(server: IvrServer, caller: str) -> None:
    """Call, let the engineers ring (or reach the voicemail offer), and hang up."""
    base = {
        "CallSid": "CA" + uuid.uuid4().hex,
        "To": EMERGENCY_NUMBER,
        "From": caller,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    response = server.post("/voice/incoming", base)
    assert response.status_code == 200, response.text
    assert ET.fromstring(response.content).tag == "Response"
    done = server.post("/voice/status", {**base, "CallStatus": "completed", "CallDuration": "30"})
    assert done.status_code == 204


def _unverified_call(server: IvrServer, caller: str) -> None:
    """Call, stay silent at the PIN prompts, go on unverified with 1, and hang up while it rings."""
    base = {
        "CallSid": "CA" + uuid.uuid4().hex,
        "To": EMERGENCY_NUMBER,
        "From": caller,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    root = ET.fromstring(server.post("/voice/incoming", base).content)
    base["CallStatus"] = "in-progress"
    action = root.find("Gather").get("action")
    while "/emergency/pin" in action:
        root = ET.fromstring(server.post(action, base).content)
        action = root.find("Gather").get("action")
    root = ET.fromstring(server.post(action, {**base, "Digits": "1"}).content)
    assert root.find("Dial") is not None or root.find("Record") is not None  # any hour
    done = server.post("/voice/status", {**base, "CallStatus": "completed", "CallDuration": "20"})
    assert done.status_code == 204


@pytest.fixture
def servers(tmp_path):
    url = os.environ.get("IVR_TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'paging.sqlite3'}"
    upgrade_database(url)
    empty_tables(url)
    _people(url)
    twilio = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    mail = MailServer().start()
    config = _config(tmp_path)
    started = []
    try:
        for name in ("a", "b"):
            server = IvrServer(tmp_path / name, url, config=config, workers=2)
            server.env.update(
                TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                TWILIO_API_URL=twilio.url,
                IVR_SMS_FROM="+31612340000",
                IVR_SMTP_URL=mail.url,
            )
            started.append(server.start())
        yield started, twilio, mail
    finally:
        for server in started:
            server.stop()
        twilio.stop()
        mail.stop()
        empty_tables(url)


def test_two_instances_page_every_missed_call_once(servers):
    (a, b), twilio, mail = servers
    for index, caller in enumerate(CALLERS):
        _missed_call(a if index % 2 == 0 else b, caller)
    wait_until(
        lambda: len(twilio.to(ENGINEER)) >= 3 and all(twilio.to(c) for c in CALLERS),
        timeout=30,
        what="a page per ticket and an SMS per caller",
    )
    time.sleep(3)  # four senders keep looking: nothing may go out twice
    pages = twilio.to(ENGINEER)
    assert len(pages) == 3, [sms.body for sms in pages]
    numbers = {sms.body.split("urgent ticket ")[1].split(",")[0] for sms in pages}
    assert len(numbers) == 3
    assert all(len(twilio.to(caller)) == 1 for caller in CALLERS)
    wait_until(lambda: len(mail.to("eva@otys.test")) >= 3, timeout=15, what="three e-mails")
    assert len(mail.to("eva@otys.test")) == 3


def test_two_instances_send_one_digest_for_a_burst_of_unverified_calls(servers):
    (a, b), twilio, mail = servers
    strangers = [f"+316333300{index:02d}" for index in range(12)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        calls = [
            pool.submit(_unverified_call, a if index % 2 == 0 else b, number)
            for index, number in enumerate(strangers)
        ]
        for call in calls:
            call.result()
    wait_until(lambda: twilio.to(ENGINEER), timeout=30, what="the digest of unverified calls")
    wait_until(lambda: mail.to("eva@otys.test"), timeout=15, what="the digest's e-mail")
    time.sleep(3)  # four senders keep looking: the next digest is 15 minutes away
    [digest] = twilio.to(ENGINEER)
    assert "niet geverifieerde urgente oproep" in digest.body
    assert len(mail.to("eva@otys.test")) == 1
    assert not [sms for sms in twilio.sent if sms.to in strangers]
