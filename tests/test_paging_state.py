"""Whether paging can send, said the same way everywhere: /health, the banner, the Pages page.

"off" when the configuration switches it off, "cannot_send" when it is on but no channel is set
up or every channel's recent attempts failed, "ok" otherwise (`tickets.paging_state`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from helpers import AUTH_TOKEN, EMERGENCY_NUMBER
from sqlalchemy import select
from support_helpers import make_staff, sign_in

from bench.standin import TwilioStandIn
from ivr.messaging.policy import announce_paging, paging_policy
from tickets.models import (
    Contact,
    ContactPhone,
    Organization,
    OutboxMessage,
    TicketEvent,
)
from tickets.paging import new_key
from tickets.paging_state import paging_state

ACCOUNT_SID = "AC" + "7" * 32
SMS_FROM = "+31612340000"
CALLER = "+31611110000"


@pytest.fixture(scope="module")
def twilio():
    standin = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield standin
    standin.stop()


def health(client) -> dict:
    response = client.get("/health")
    assert response.status_code == 200
    return response.get_json()


def attempt(session, channel: str, status: str, *, at, error: str | None = None) -> None:
    session.add(
        OutboxMessage(
            kind="page",
            channel=channel,
            recipient="+31620000001" if channel == "sms" else "anna@otys.test",
            idempotency_key=new_key(),
            status=status,
            attempts=1,
            last_error=error,
            created_at=at,
            updated_at=at,
        )
    )
    session.commit()


class TestSwitchedOff:
    @pytest.fixture
    def settings_overrides(self):
        return {"paging.enabled": False}

    def test_health_says_off_and_no_banner_shows(self, client, session):
        assert health(client)["paging"] == "off"
        make_staff(session)
        sign_in(client)
        page = client.get("/support").get_data(as_text=True)
        assert "Paging cannot send" not in page
        messages = client.get("/support/messages").get_data(as_text=True)
        assert "paging.enabled = false" in messages
        assert "Nothing failed and nothing is waiting" not in messages


class TestOnWithoutAChannel:
    """The default test settings: paging on, no SMS sender, no mail server, no chat."""

    def test_health_says_cannot_send(self, client):
        body = health(client)
        assert body["paging"] == "cannot_send"
        assert body["status"] == "ok"  # an instance that answers calls stays in the pool
        assert body["messages"]["sender"] == "ok"

    def test_every_dashboard_page_says_what_to_set(self, client, session):
        make_staff(session)
        sign_in(client)
        for path in ("/support", "/support/oncall", "/support/statistics", "/support/messages"):
            page = client.get(path).get_data(as_text=True)
            assert 'id="paging-notice"' in page, path
            assert "IVR_SMS_FROM and TWILIO_ACCOUNT_SID" in page and "IVR_SMTP_URL" in page

    def test_the_pages_page_does_not_say_all_is_well(self, client, session):
        make_staff(session)
        sign_in(client)
        page = client.get("/support/messages").get_data(as_text=True)
        assert "Nothing failed and nothing is waiting" not in page
        assert "Cannot send" in page
        assert "nothing can be sent" in page

    def test_a_missed_call_says_nobody_was_paged(self, client, session, phone, clock):
        acme = Organization(name="Acme")
        sanne = Contact(organization=acme, name="Sanne", email="s@acme.test", role="super_user")
        sanne.phones.append(ContactPhone(number=CALLER))
        session.add(acme)
        session.commit()
        call = phone(to=EMERGENCY_NUMBER, from_=CALLER)
        call.press(call.start(), "1")
        call.hang_up(duration="30")
        session.expire_all()
        kinds = session.scalars(select(TicketEvent.kind)).all()
        assert "not_paged" in kinds

    def test_the_start_up_line_says_cannot_send(self, settings, caplog):
        with caplog.at_level(logging.INFO):
            announce_paging(settings)
        assert any(m.startswith("paging cannot send: paging is on") for m in caplog.messages)

    def test_recordings_cannot_be_played_without_the_account_sid(self, client, session):
        assert health(client)["recordings"] == "cannot_play"
        make_staff(session)
        sign_in(client)
        page = client.get("/support/callbacks").get_data(as_text=True)
        assert 'id="recordings-notice"' in page and "TWILIO_ACCOUNT_SID" in page


class TestWithChannels:
    @pytest.fixture
    def settings_overrides(self, twilio):
        return {
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_api_url": twilio.url,
            "paging.sms_from": SMS_FROM,
            "paging.smtp_url": "smtp://127.0.0.1:9",
        }

    def test_health_says_ok_with_nothing_tried_yet(self, client, settings, caplog):
        assert health(client)["paging"] == "ok"
        assert health(client)["recordings"] == "ok"
        with caplog.at_level(logging.INFO):
            announce_paging(settings)
        assert not any("cannot send" in message for message in caplog.messages)

    def test_every_recent_attempt_failing_is_cannot_send(self, client, session, clock):
        for _ in range(3):
            attempt(session, "sms", "failed", at=clock.now, error="Twilio 401 20003: Authenticate")
        attempt(session, "email", "pending", at=clock.now, error="mail server not reachable")
        body = health(client)
        assert body["paging"] == "cannot_send"
        make_staff(session)
        sign_in(client)
        page = client.get("/support").get_data(as_text=True)
        assert "Every recent page failed" in page and "Twilio 401" in page

    def test_one_channel_still_sending_is_ok(self, client, session, clock):
        attempt(session, "sms", "failed", at=clock.now, error="Twilio 401")
        attempt(session, "email", "sent", at=clock.now)
        assert health(client)["paging"] == "ok"

    def test_a_success_after_the_failures_is_ok_again(self, client, session, clock):
        for channel in ("sms", "email"):
            attempt(session, channel, "failed", at=clock.now - timedelta(minutes=5), error="x")
        assert health(client)["paging"] == "cannot_send"
        attempt(session, "sms", "delivered", at=clock.now)
        assert health(client)["paging"] == "ok"

    def test_failures_older_than_a_day_are_not_recent(self, client, session, clock):
        for channel in ("sms", "email"):
            attempt(session, channel, "failed", at=clock.now - timedelta(hours=25), error="x")
        assert health(client)["paging"] == "ok"

    def test_failed_texts_to_callers_do_not_count(self, client, session, clock):
        for channel in ("sms", "email"):
            attempt(session, channel, "failed", at=clock.now, error="x")
        rows = session.scalars(select(OutboxMessage)).all()
        for row in rows:
            row.kind = "caller_ticket"
        session.commit()
        assert health(client)["paging"] == "ok"

    def test_the_rule_is_one_function_any_instance_can_ask(self, app, settings, session, clock):
        for channel in ("sms", "email"):
            attempt(session, channel, "failed", at=clock.now, error="refused")
        state = paging_state(session, paging_policy(settings), clock.now)
        assert state.state == "cannot_send"
        assert set(state.failing) == {"sms", "email"}
        # Without the database (start-up, doctor without one) only the configuration counts.
        assert paging_state(None, paging_policy(settings), clock.now).state == "ok"
