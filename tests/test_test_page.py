"""Test pages: an engineer proves their phone and mailbox before a shift.

`ivr staff test-page EMAIL` and the buttons on the Staff and On call pages send through the
real clients (the twilio REST client, smtplib) to the Twilio stand-in and a local SMTP server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import AUTH_TOKEN
from message_servers import MailServer
from sqlalchemy import select
from support_helpers import csrf_token, make_staff, sign_in

from bench.standin import TwilioStandIn
from tickets.models import OutboxMessage, StaffUser
from tickets.rota import add_override

ACCOUNT_SID = "AC" + "8" * 32
SMS_FROM = "+31612340000"
ANNA = "+31620000001"


@pytest.fixture(scope="module")
def twilio():
    standin = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def mail():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def channels(twilio, mail) -> dict[str, str]:
    twilio.sent.clear()
    twilio.fail_next = 0
    mail.messages.clear()
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_API_URL": twilio.url,
        "IVR_SMS_FROM": SMS_FROM,
        "IVR_SMTP_URL": mail.url,
    }


@pytest.fixture
def settings_overrides(channels):
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_url": channels["TWILIO_API_URL"],
        "paging.sms_from": SMS_FROM,
        "paging.smtp_url": channels["IVR_SMTP_URL"],
    }


def test_pages(session) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


test_pages.__test__ = False  # a helper, not a test


def test_the_command_sends_both_and_exits_0_once_the_providers_accepted(
    cli, session, channels, twilio, mail
):
    make_staff(session, email="anna@otys.test", name="Anna Jansen", phone=ANNA)
    result = cli("staff", "test-page", "anna@otys.test", env=channels)
    assert result.exit_code == 0, result.output
    [sms] = twilio.to(ANNA)
    assert sms.from_ == SMS_FROM and "testbericht voor Anna Jansen" in sms.body
    [email] = mail.to("anna@otys.test")
    assert email["Subject"] == "Testbericht van de OTYS noodlijn"
    assert "SMS to +31620000001: accepted by the provider" in result.output
    assert "E-mail to anna@otys.test: accepted by the provider" in result.output
    rows = test_pages(session)
    assert {(row.kind, row.channel, row.status) for row in rows} == {
        ("test_page", "sms", "sent"),
        ("test_page", "email", "sent"),
    }
    assert {row.provider_id for row in rows if row.channel == "sms"} == {sms.sid}


def test_a_refusing_provider_exits_1_naming_the_channel(cli, session, channels, twilio, mail):
    make_staff(session, email="anna@otys.test", name="Anna Jansen", phone=ANNA)
    twilio.fail_next = 1
    result = cli("staff", "test-page", "anna@otys.test", env=channels)
    assert result.exit_code == 1
    assert "SMS to +31620000001 failed: Twilio 500" in result.output
    assert "E-mail to anna@otys.test: accepted" in result.output
    assert len(mail.to("anna@otys.test")) == 1
    statuses = {row.channel: row.status for row in test_pages(session)}
    assert statuses == {"sms": "failed", "email": "sent"}


def test_an_unreachable_mail_server_exits_1(cli, session, channels):
    make_staff(session, email="anna@otys.test", name="Anna Jansen", phone=ANNA)
    result = cli(
        "staff",
        "test-page",
        "anna@otys.test",
        env={**channels, "IVR_SMTP_URL": "smtp://127.0.0.1:9"},
    )
    assert result.exit_code == 1
    assert "E-mail to anna@otys.test failed: mail server not reachable" in result.output


def test_no_phone_and_no_sms_sender_are_said_plainly(cli, session, channels, twilio):
    make_staff(session, email="bas@otys.test", name="Bas de Vries")
    result = cli("staff", "test-page", "bas@otys.test", env=channels)
    assert result.exit_code == 1
    assert "the account has no phone number" in result.output
    make_staff(session, email="anna@otys.test", name="Anna Jansen", phone=ANNA)
    result = cli("staff", "test-page", "anna@otys.test", env={**channels, "IVR_SMS_FROM": ""})
    assert result.exit_code == 1
    assert "SMS needs IVR_SMS_FROM and TWILIO_ACCOUNT_SID" in result.output
    assert twilio.to(ANNA) == []


def test_an_unknown_account_exits_1(cli, channels):
    result = cli("staff", "test-page", "nobody@otys.test", env=channels)
    assert result.exit_code == 1
    assert "no active staff account nobody@otys.test" in result.output


def post_button(client, page: str, action: str, back: str):
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, "back": back})


def test_the_on_call_page_sends_my_test_page_and_shows_the_result(client, session, twilio, mail):
    anna = make_staff(session, email="anna@otys.test", name="Anna Jansen", phone=ANNA)
    sign_in(client, "anna@otys.test")
    response = post_button(
        client, "/support/oncall", f"/support/staff/{anna.id}/test-page", "oncall"
    )
    assert response.status_code == 303 and response.location.endswith("/support/oncall")
    page = client.get("/support/oncall").get_data(as_text=True)
    assert "SMS to +31620000001: accepted by the provider" in page
    assert len(twilio.to(ANNA)) == 1 and len(mail.to("anna@otys.test")) == 1
    own = page[page.index('id="my-test-page"') :]
    assert "SMS ✓" in own and "E-mail ✓" in own


def test_an_agent_may_not_test_someone_else(client, session):
    make_staff(session, email="agent@otys.test", name="Agent Smith")
    bas = make_staff(session, email="bas@otys.test", name="Bas de Vries", phone="+31620000002")
    sign_in(client)
    action = f"/support/staff/{bas.id}/test-page"
    response = post_button(client, "/support/oncall", action, "oncall")
    assert response.status_code == 403


def test_the_staff_page_has_a_button_for_every_account(client, session, twilio):
    make_staff(session, email="admin@otys.test", name="Ada Admin", role="admin")
    anna = make_staff(session, email="anna@otys.test", name="Anna Jansen", phone=ANNA)
    sign_in(client, "admin@otys.test")
    page = client.get("/support/staff").get_data(as_text=True)
    assert f'action="/support/staff/{anna.id}/test-page"' in page
    response = post_button(client, "/support/staff", f"/support/staff/{anna.id}/test-page", "staff")
    assert response.location.endswith("/support/staff")
    assert len(twilio.to(ANNA)) == 1


def test_the_on_call_page_warns_about_the_week_s_shifts_that_would_not_reach(
    client, session, clock, twilio
):
    make_staff(session, email="admin@otys.test", name="Ada Admin", role="admin")
    anna = make_staff(session, email="anna@otys.test", name="Anna Jansen", phone=ANNA)
    bas = make_staff(session, email="bas@otys.test", name="Bas de Vries", phone="+31620000002")
    carla = make_staff(session, email="carla@otys.test", name="Carla Smit", phone="+31620000003")
    for level, who in ((1, anna), (2, bas), (3, carla)):
        add_override(
            session,
            level=level,
            staff=who,
            starts_at=clock.now + timedelta(days=1),
            ends_at=clock.now + timedelta(days=2),
            added_by="test",
        )
    session.get(StaffUser, bas.id).phone = None  # phone removed after the shift was planned
    session.commit()
    sign_in(client, "admin@otys.test")
    twilio.fail_next = 1
    post_button(client, "/support/oncall", f"/support/staff/{carla.id}/test-page", "oncall")
    page = client.get("/support/oncall").get_data(as_text=True)
    warnings = page[page.index('id="rota-warnings"') : page.index('id="now"')]
    assert "Bas de Vries" in warnings and "no phone number" in warnings
    assert "Carla Smit" in warnings and "the last test page failed" in warnings
    assert "Twilio 500" in warnings
    assert "Anna Jansen" not in warnings
