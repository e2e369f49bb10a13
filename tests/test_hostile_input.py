"""Property tests: every webhook, signed random input, never a 5xx and never a stranger dialled."""

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from helpers import MONDAY_MORNING, PUBLIC_URL, sign
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from resilience_helpers import (
    SUPER_PHONE,
    SUPER_PIN,
    USER_PHONE,
    USER_PIN,
    DatabaseOutage,
    assert_safe_twiml,
    make_directory,
)

from core.db import db

SATURDAY = MONDAY_MORNING.replace(day=5)
EVENING = MONDAY_MORNING.replace(hour=22)

characters = st.characters(blacklist_categories=("Cs",))
junk = st.one_of(
    st.text(characters, max_size=30),
    # Long enough to overflow any number, short enough that a whole form stays under the
    # webhook size cap (16 KB), which answers 413 by design.
    st.sampled_from(["", " ", "\x00", "null", "-1", "1e309", "NaN", "0" * 400, "9" * 500]),
)
phone_numbers = st.one_of(
    st.sampled_from(
        [
            SUPER_PHONE,
            USER_PHONE,
            "+31318584900",
            "+31318584918",
            "+319006666669",
            "+31622222222",
            "anonymous",
            "+266696687",
            "Restricted",
            "Unknown",
            "sip:alice@example.com",
            "client:bob",
            "0031612345678",
            "+999",
        ]
    ),
    st.text("0123456789", min_size=1, max_size=20).map(lambda digits: "+" + digits),
    junk,
)
keys = st.one_of(
    st.sampled_from(["1", "2", "3", "4", "9", "*", "#", "201", "202", SUPER_PIN, USER_PIN]),
    st.text("0123456789*#", max_size=24),
    st.sampled_from(["0031900123456#", "+31612345678", "00441234567890"]),
    junk,
)
statuses = st.one_of(
    st.sampled_from(
        ["completed", "busy", "no-answer", "failed", "canceled", "in-progress", "ringing"]
    ),
    junk,
)
numbers_text = st.one_of(st.integers(-(10**12), 10**12).map(str), junk)
call_sids = st.one_of(
    st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda hex_: "CA" + hex_), junk
)

forms = st.fixed_dictionaries(
    {"CallSid": call_sids},
    optional={
        "AccountSid": st.just("AC" + "0" * 32),
        "From": phone_numbers,
        "To": phone_numbers,
        "Caller": phone_numbers,
        "CallStatus": statuses,
        "Direction": st.one_of(st.sampled_from(["inbound", "outbound-dial", "outbound-api"]), junk),
        "ParentCallSid": call_sids,
        "Digits": keys,
        "SpeechResult": junk,
        "Confidence": st.one_of(st.floats(allow_nan=True).map(str), junk),
        "DialCallStatus": statuses,
        "DialCallSid": call_sids,
        "DialCallDuration": numbers_text,
        "DialBridged": st.sampled_from(["true", "false", "", "yes"]),
        "RecordingUrl": st.one_of(st.just("https://api.twilio.com/rec/RE1"), junk),
        "RecordingSid": junk,
        "RecordingDuration": numbers_text,
        "RecordingStatus": statuses,
        "CallDuration": numbers_text,
        "SequenceNumber": numbers_text,
        "ErrorCode": junk,
        "ErrorUrl": junk,
        "StirVerstat": junk,
    },
)
queries = st.fixed_dictionaries(
    {},
    optional={
        name: st.one_of(numbers_text, junk)
        for name in (
            "lang",
            "misses",
            "ticket",
            "tries",
            "eng",
            "via",
            "dept",
            "hours",
            "reason",
            "caller",
            "line",
            "call",
            "ext",
            "round",
            "level",
            "prev",
            "staff",
            "request",
        )
    },
).map(lambda query: f"?{urlencode(query)}" if query else "")
moments = st.sampled_from([MONDAY_MORNING, SATURDAY, EVENING])

# Modest counts keep the suite fast; each example posts to every webhook.
PROPERTY = hypothesis_settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# The property tests post to every webhook in each example; in this many shares, so that one
# example's random data stays within what Hypothesis generates well.
SHARES = 3


def voice_routes(app, share: int | None = None) -> list[str]:
    """Return every webhook path (or every SHARES-th from `share`), so a new route is covered
    without touching this test."""
    routes = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/voice") and "POST" in rule.methods
    )
    return routes if share is None else routes[share::SHARES]


def post_signed(client, url: str, form: dict):
    return client.post(url, data=form, headers={"X-Twilio-Signature": sign(PUBLIC_URL + url, form)})


def check_answer(response, path: str, settings) -> None:
    """Assert an answer Twilio can use: TwiML that parses and dials only configured numbers."""
    assert response.status_code < 500, (path, response.status_code)
    if response.status_code == 204:
        assert path == "/voice/status", path
        return
    assert response.status_code == 200, (path, response.status_code)
    assert response.mimetype == "text/xml", path
    body = response.get_data(as_text=True)
    assert body.startswith("<?xml"), (path, body[:60])
    root = ET.fromstring(body)
    assert root.tag == "Response"
    assert_safe_twiml(root, settings)


@pytest.fixture
def directory(app, session):
    return make_directory(session)


def test_the_route_list_covers_the_webhooks_twilio_is_configured_with(app):
    routes = voice_routes(app)
    assert {"/voice/incoming", "/voice/status", "/voice/fallback"} <= set(routes)
    assert all("<" not in route for route in routes), "a converter needs a strategy here"


@pytest.mark.parametrize("share", range(SHARES))
@PROPERTY
@given(data=st.data())
def test_every_webhook_survives_signed_random_input(
    app, clock, client, settings, directory, share, data
):
    clock.now = data.draw(moments, label="now")
    for path in voice_routes(app, share):
        url = path + data.draw(queries, label=f"query {path}")
        form = data.draw(forms, label=f"form {path}")
        check_answer(post_signed(client, url, form), path, settings)


@pytest.mark.parametrize("share", range(SHARES))
@hypothesis_settings(PROPERTY, max_examples=8)
@given(data=st.data())
def test_every_webhook_survives_signed_random_input_while_the_database_is_down(
    app, clock, client, settings, directory, share, data
):
    clock.now = data.draw(moments, label="now")
    outage = DatabaseOutage().start()
    try:
        for path in voice_routes(app, share):
            url = path + data.draw(queries, label=f"query {path}")
            form = data.draw(forms, label=f"form {path}")
            check_answer(post_signed(client, url, form), path, settings)
    finally:
        outage.end()
        db.session.remove()


@hypothesis_settings(PROPERTY, max_examples=5)
@given(form=forms, query=queries)
def test_unsigned_random_input_is_refused_everywhere(app, client, form, query):
    for path in voice_routes(app):
        response = client.post(path + query, data=form, headers={"X-Twilio-Signature": "x"})
        assert response.status_code == 403, path


def test_oversized_requests_are_refused_without_a_5xx(app, client):
    form = {"CallSid": "CA" + "1" * 32, "Digits": "1" * (300 * 1024)}
    response = post_signed(client, "/voice/incoming", form)
    assert response.status_code == 413


def test_a_webhook_with_thousands_of_fields_is_refused_before_parsing(client):
    form = {f"f{n}": "x" for n in range(5000)}
    response = client.post("/voice/incoming", data=form, headers={"X-Twilio-Signature": "x"})
    assert response.status_code == 413


def test_a_webhook_body_over_sixteen_kilobytes_is_refused(client):
    form = {"CallSid": "CA" + "1" * 32, "Junk": "x" * (20 * 1024)}
    response = post_signed(client, "/voice/status", form)
    assert response.status_code == 413


def test_a_real_sized_webhook_still_gets_through(client, settings, directory):
    # Twilio's first request carries some forty parameters, a few kilobytes.
    form = {"CallSid": "CA" + "2" * 32, "From": "+31612345678", "To": "+31318584900"}
    form |= {f"Caller{part}": "Nederland" * 3 for part in ("City", "State", "Zip", "Country")}
    form |= {f"X{n}": "v" * 40 for n in range(30)}
    response = post_signed(client, "/voice/incoming", form)
    assert response.status_code == 200


def test_a_five_thousand_character_call_sid_gets_a_clean_answer(client):
    form = {"CallSid": "CA" + "9" * 5000, "CallStatus": "completed", "To": "+31318584900"}
    assert post_signed(client, "/voice/status", form).status_code == 204
    assert post_signed(client, "/voice/incoming", form).status_code == 200
