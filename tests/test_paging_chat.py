"""Paging also posts to a Teams or Slack channel's incoming webhook, when one is configured."""

import pytest
from helpers import AUTH_TOKEN
from message_servers import ChatStandIn
from test_paging import ACCOUNT_SID, SMS_FROM, missed_call, people, the_ticket  # noqa: F401

from bench.standin import TwilioStandIn
from ivr.messaging.sender import tick


@pytest.fixture(scope="module")
def chat():
    server = ChatStandIn()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def twilio():
    standin = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture(params=["slack", "teams"])
def settings_overrides(request, chat, twilio):
    chat.posts.clear()
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_url": twilio.url,
        "paging.sms_from": SMS_FROM,
        "paging.chat_webhook_url": chat.url,
        "paging.chat_format": request.param,
    }


@pytest.mark.usefixtures("people")
def test_each_paging_step_posts_one_chat_message(app, phone, session, clock, chat, settings):
    missed_call(phone)
    tick(app)
    [post] = chat.posts
    number = the_ticket(session).number
    assert number in post["text"] and "Acme Uitzendbureau" in post["text"]
    if settings.paging.chat_format == "teams":
        assert post["@type"] == "MessageCard"
    else:
        assert set(post) == {"text"}
