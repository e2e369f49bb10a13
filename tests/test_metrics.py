"""Metrics: `/metrics` parses with prometheus-client's parser and moves with what happens.

Metric objects live as long as the test process, so the `metrics` fixture empties ours and takes
a mark at the test's start (`Scraper.mark`); the real-server tests (`test_metrics_served.py`) start
at 0 in their own processes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import AUTH_TOKEN, EMERGENCY_NUMBER, OFFICE_NUMBER, spoken
from metrics_helpers import Scraper, parse_samples, value
from prometheus_client.parser import text_string_to_metric_families
from resilience_helpers import SUPER_PHONE, USER_PHONE, DatabaseOutage, make_directory
from sqlalchemy import select
from support_helpers import make_staff, make_ticket

from bench.standin import TwilioStandIn
from ivr.calls import call_outcome
from ivr.messaging.sender import tick
from ivr.outage.journal import Journal
from tickets import lifecycle
from tickets.metrics import TIME_TO_ACKNOWLEDGE, observe_acknowledgement
from tickets.models import Ticket

ACCOUNT_SID = "AC" + "7" * 32
SMS_FROM = "+31612340000"
ENGINEERS = ["+31318584941", "+31318584942"]


@pytest.fixture
def metrics(client) -> Scraper:
    return Scraper(client).mark()


@pytest.fixture
def directory(session, clock):
    return make_directory(session)


def engineer_leg(phone, call, number):
    """Return the engineer's leg Twilio makes for a <Number>, and its screening TwiML."""
    leg = phone(to=number.text.strip(), from_=call.base.get("From"))
    leg.base.update(Direction="outbound-dial", ParentCallSid=call.sid, CallStatus="in-progress")
    return leg, leg.post(number.get("url"))


# ------------------------------------------------------------------ the format


def test_metrics_parse_with_the_clients_own_parser(client, clock):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    expected = {
        "ivr_calls": "counter",
        "ivr_urgent_tickets_opened": "counter",
        "ivr_webhook_duration_seconds": "histogram",
        "ivr_engineers_rung": "counter",
        "ivr_engineer_answers": "counter",
        "ivr_messages_sent": "counter",
        "ivr_messages_failed": "counter",
        "ivr_time_to_acknowledge_seconds": "histogram",
        "ivr_journal_entries_waiting": "gauge",
        "ivr_journal_oldest_entry_age_seconds": "gauge",
        "ivr_database_up": "gauge",
        "ivr_outbox_waiting_messages": "gauge",
        "ivr_outbox_oldest_waiting_seconds": "gauge",
        "ivr_urgent_tickets_unacknowledged": "gauge",
    }
    assert {name: families[name].type for name in expected} == expected
    samples = parse_samples(response.get_data(as_text=True))
    assert value(samples, "ivr_database_up") == 1


# ------------------------------------------------------------------ calls


def test_an_office_call_is_counted_once_when_it_ends(phone, metrics, clock):
    call = phone(to=OFFICE_NUMBER)
    root = call.press(call.start(), "1")
    call.dial_result(root, "completed", DialCallDuration="60")
    call.hang_up()
    call.hang_up()  # Twilio retrying the status callback
    assert metrics.moved("ivr_calls_total", line="office", outcome="answered") == 1


def test_an_office_caller_nobody_answered_who_left_a_message_counts_as_voicemail(
    phone, metrics, clock
):
    call = phone(to=OFFICE_NUMBER)
    root = call.dial_result(call.press(call.start(), "1"), "no-answer")
    call.post(
        root.find("Record").get("action"),
        RecordingUrl="https://api.twilio.com/rec/RE1",
        RecordingDuration="9",
    )
    call.hang_up()
    assert metrics.moved("ivr_calls_total", line="office", outcome="voicemail") == 1
    assert metrics.moved("ivr_calls_total", line="office", outcome="answered") == 0


def test_progress_callbacks_count_nothing(phone, metrics, clock):
    call = phone(to=OFFICE_NUMBER)
    call.start()
    call.post_raw("/voice/status", CallStatus="in-progress", SequenceNumber="1")
    samples = metrics.scrape()
    assert all(
        value(samples, "ivr_calls_total", line="office", outcome=o)
        == value(metrics.before, "ivr_calls_total", line="office", outcome=o)
        for o in ("abandoned", "answered", "failed")
    )


def test_an_answered_emergency_call_counts_its_ticket_engineers_and_outcome(
    phone, metrics, directory
):
    call = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    root = call.press(call.start(), "1")
    numbers = list(root.iter("Number"))
    assert [n.text for n in numbers] == ENGINEERS
    leg, screen = engineer_leg(phone, call, numbers[1])
    leg.press(screen, "1")
    first, screen = engineer_leg(phone, call, numbers[0])
    first.silence(screen)
    call.dial_result(root, "completed", DialCallDuration="300", DialBridged="true")
    call.hang_up(duration="330")
    assert metrics.moved("ivr_urgent_tickets_opened_total", how="caller_id") == 1
    assert metrics.moved("ivr_engineers_rung_total", level="configured") == 2
    answers = "ivr_engineer_answers_total"
    assert metrics.moved(answers, level="configured", answer="accepted") == 1
    assert metrics.moved(answers, level="configured", answer="silent") == 1
    assert metrics.moved("ivr_calls_total", line="emergency", outcome="answered") == 1


def test_a_call_joining_the_open_ticket_and_a_retried_webhook_open_no_ticket(
    phone, metrics, directory
):
    call = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    call.start()
    call.post("/voice/incoming")  # Twilio retrying the first webhook
    phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE).start()  # a colleague calls too: joins
    assert metrics.moved("ivr_urgent_tickets_opened_total", how="caller_id") == 1


def test_a_normal_user_turned_away_counts_as_not_entitled(phone, metrics, directory):
    call = phone(to=EMERGENCY_NUMBER, from_=USER_PHONE)
    assert "hoofdgebruikers" in spoken(call.start())
    call.hang_up()
    assert metrics.moved("ivr_calls_total", line="emergency", outcome="not_entitled") == 1
    assert metrics.moved("ivr_urgent_tickets_opened_total", how="caller_id") == 0


def test_an_office_caller_sent_to_the_emergency_line_counts_on_the_office_line(
    phone, metrics, directory
):
    call = phone(to=OFFICE_NUMBER, from_=SUPER_PHONE)
    root = call.press(call.start(), "3")
    root = call.post(root.find("Redirect").text)
    call.press(root, "2")
    call.hang_up()  # while the engineers' phones ring
    outcome = "abandoned_while_ringing"
    assert metrics.moved("ivr_calls_total", line="office", outcome=outcome) == 1
    assert metrics.moved("ivr_calls_total", line="emergency", outcome=outcome) == 0


def test_a_call_ending_while_the_database_is_down_is_counted_as_outage(app, phone, metrics, clock):
    call = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    outage = DatabaseOutage().start()
    try:
        call.start()
        call.hang_up()
        response = metrics.client.get("/metrics")
    finally:
        outage.end()
    assert response.status_code == 200
    samples = parse_samples(response.get_data(as_text=True))
    assert value(samples, "ivr_database_up") == 0
    assert ("ivr_outbox_waiting_messages", frozenset()) not in samples
    moved = value(samples, "ivr_calls_total", line="emergency", outcome="outage")
    assert moved - value(metrics.before, "ivr_calls_total", line="emergency", outcome="outage") == 1


def test_engineers_rung_and_answering_while_the_database_is_down_are_counted(
    app, phone, metrics, clock
):
    call = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    outage = DatabaseOutage().start()
    try:
        root = call.start()
        leg, screen = engineer_leg(phone, call, root.find("Dial/Number"))
        leg.press(screen, "1")
    finally:
        outage.end()
    assert metrics.moved("ivr_engineers_rung_total", level="configured") == 2
    answers = "ivr_engineer_answers_total"
    assert metrics.moved(answers, level="configured", answer="accepted") == 1


@pytest.mark.parametrize(
    ("status", "trail", "ticket_outcome", "outcome"),
    [
        ("completed", "menu:1 dial:finance:completed", None, "answered"),
        ("completed", "menu:1 dial:finance:no-answer dial:reception:answered", None, "answered"),
        ("completed", "menu:1 dial:finance:no-answer voicemail:finance", None, "voicemail"),
        ("completed", "menu:1 dial:finance:busy voicemail:finance:empty", None, "missed"),
        ("completed", "menu:2 closed:sales voicemail:sales:empty", None, "closed"),
        ("completed", "reception:closed", None, "closed"),
        ("completed", "menu:none menu:invalid", None, "abandoned"),
        ("completed", "", None, "abandoned"),
        ("no-answer", "", None, "failed"),
        ("busy", "", None, "failed"),
        ("completed", "not_entitled:caller_id", None, "not_entitled"),
        ("completed", "pin:wrong pin:wrong", None, "unidentified"),
        ("completed", "pin:failed unverified:declined", None, "declined"),
        ("completed", "recognised:pin ticket:100001 triage:outage", "voicemail", "voicemail"),
        ("completed", "menu:3 recognised:caller_id", "no_answer", "no_answer"),
        ("completed", "menu:3 recognised:caller_id", "in_progress", "abandoned"),
    ],
)
def test_call_outcome(status, trail, ticket_outcome, outcome):
    assert call_outcome(status, trail, ticket_outcome) == outcome


# ------------------------------------------------------------------ webhooks and labels


def test_webhooks_are_timed_by_endpoint_and_no_label_names_a_caller(
    app, phone, client, metrics, directory, session
):
    call = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
    call.press(call.start(), "1")
    call.hang_up()
    count = "ivr_webhook_duration_seconds_count"
    assert metrics.moved(count, webhook="voice.incoming") == 1
    assert metrics.moved(count, webhook="emergency.triage") == 1
    assert metrics.moved(count, webhook="voice.status") == 1
    text = client.get("/metrics").get_data(as_text=True)
    ticket = session.scalars(select(Ticket)).one()
    # Every word the output carries besides the numbers: names, help texts, label values. (The
    # numbers themselves are counts and timestamps; a timestamp may well hold "100001".)
    words = " ".join(
        " ".join([family.name, family.documentation, *sample.labels, *sample.labels.values()])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    )
    for secret in (call.sid, SUPER_PHONE, SUPER_PHONE[1:], ticket.number, "Sanne", "Acme"):
        assert secret not in words
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "webhook" in sample.labels:
                assert sample.labels["webhook"] in endpoints
                assert sample.labels["webhook"].split(".")[0] != "metrics"


def test_pages_and_the_dashboard_are_not_timed_as_webhooks(client, metrics, clock):
    client.get("/health")
    client.get("/support")
    text = client.get("/metrics").get_data(as_text=True)
    webhooks = {
        sample.labels.get("webhook")
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert not webhooks & {"health.health", "dashboard.queue", "auth.login", "metrics.metrics"}


# ------------------------------------------------------------------ tickets


@pytest.fixture(params=["nothing", "a_wall_clock_wait"])
def left_behind(request):
    """What an earlier test may leave in the process-wide histogram.

    A ticket made at the real time and acknowledged at the frozen clock left a wait with
    microseconds in it; from a sum just under a power of two, like this one, `sum + 300 - sum`
    is not 300 in floating point (300.0000000000018), so a difference against a mark is not exact.
    """
    if request.param == "a_wall_clock_wait":
        TIME_TO_ACKNOWLEDGE.clear()
        waited = timedelta(seconds=16350, microseconds=594251)
        observe_acknowledgement(priority="urgent", via="api", waited=waited)


def test_time_to_acknowledge_is_observed_once_when_staff_first_acknowledge(
    app, left_behind, session, metrics, clock
):
    ticket = make_ticket(session, created_at=clock.now)
    anna = make_staff(session, email="anna@otys.test", name="Anna")
    bas = make_staff(session, email="bas@otys.test", name="Bas")
    clock.now += timedelta(minutes=5)
    with app.app_context():  # the service's clock
        lifecycle.acknowledge_ticket(session, ticket=ticket, staff=anna, via="api")
        lifecycle.acknowledge_ticket(session, ticket=ticket, staff=bas, via="dashboard")
    name = "ivr_time_to_acknowledge_seconds"
    labels = {"priority": "urgent", "via": "api"}
    assert metrics.moved(f"{name}_count", **labels) == 1
    assert metrics.moved(f"{name}_sum", **labels) == 300
    assert metrics.moved(f"{name}_bucket", le="300.0", **labels) == 1
    assert metrics.moved(f"{name}_bucket", le="120.0", **labels) == 0
    assert metrics.moved(f"{name}_count", priority="urgent", via="dashboard") == 0


def test_a_status_change_that_acknowledges_is_observed(app, session, metrics, clock):
    ticket = make_ticket(session, created_at=clock.now - timedelta(hours=1), priority="normal")
    with app.app_context():
        lifecycle.change_status(
            session, ticket=ticket, staff=make_staff(session), status="with_product_team"
        )
    name = "ivr_time_to_acknowledge_seconds_sum"
    assert metrics.moved(name, priority="normal", via="dashboard") == 3600


# ------------------------------------------------------------------ messages and the outbox


@pytest.fixture(scope="module")
def twilio():
    standin = TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield standin
    standin.stop()


class TestMessages:
    @pytest.fixture
    def settings_overrides(self, twilio):
        twilio.sent.clear()
        twilio.fail_next = twilio.requests = 0
        return {
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_api_url": twilio.url,
            "paging.sms_from": SMS_FROM,
            "paging.channels": ["sms"],
        }

    @staticmethod
    def missed_call(phone):
        call = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE)
        assert call.press(call.start(), "1").find("Dial") is not None
        call.hang_up(duration="40")

    def test_pages_sent_and_failed_are_counted_by_channel_and_kind(
        self, app, phone, metrics, directory, twilio
    ):
        self.missed_call(phone)
        twilio.fail_next = 1
        report = tick(app)
        assert report.retrying and report.sent
        failed = metrics.moved(
            "ivr_messages_failed_total", channel="sms", kind="page", final="false"
        )
        failed += metrics.moved(
            "ivr_messages_failed_total", channel="sms", kind="caller_ticket", final="false"
        )
        assert failed == 1
        sent = metrics.moved("ivr_messages_sent_total", channel="sms", kind="page")
        sent += metrics.moved("ivr_messages_sent_total", channel="sms", kind="caller_ticket")
        assert sent == len(report.sent) == len(twilio.sent)

    def test_the_outbox_backlog_and_unacknowledged_tickets_are_read_at_scrape_time(
        self, app, phone, metrics, directory, clock, session
    ):
        self.missed_call(phone)
        clock.now += timedelta(seconds=90)
        samples = metrics.scrape()
        # Two engineers paged by SMS, and the caller's SMS.
        assert value(samples, "ivr_outbox_waiting_messages") == 3
        assert value(samples, "ivr_outbox_oldest_waiting_seconds") == 90
        unacknowledged = "ivr_urgent_tickets_unacknowledged"
        assert value(samples, unacknowledged, paging="active") == 1
        tick(app)
        assert value(metrics.scrape(), "ivr_outbox_waiting_messages") == 0
        for _ in range(3):  # level 1 in round 2, then paging gives up
            clock.now += timedelta(minutes=6)
            tick(app)
        samples = metrics.scrape()
        assert value(samples, unacknowledged, paging="active") == 0
        assert value(samples, unacknowledged, paging="exhausted") == 1
        ticket = session.scalars(select(Ticket)).one()
        lifecycle.acknowledge_ticket(session, ticket=ticket, staff=make_staff(session))
        assert value(metrics.scrape(), unacknowledged, paging="exhausted") == 0


# ------------------------------------------------------------------ the outage journal


def test_the_journal_waiting_is_read_at_scrape_time(metrics, settings, clock):
    journal = Journal(settings.resolved_journal_path)
    samples = metrics.scrape()
    assert value(samples, "ivr_journal_entries_waiting") == 0
    written = clock.now - timedelta(minutes=3)
    journal.record("call", call_sid="CA" + "1" * 32, step="call", data={}, at=written)
    journal.record("status", call_sid="CA" + "1" * 32, step="status:completed", at=written)
    journal.record("call", call_sid="CA" + "1" * 32, step="call", data={}, at=clock.now)
    samples = metrics.scrape()
    assert value(samples, "ivr_journal_entries_waiting") == 2  # the same entry twice is one
    assert value(samples, "ivr_journal_oldest_entry_age_seconds") == 180


# ------------------------------------------------------------------ who may read it


OUTSIDE = {"REMOTE_ADDR": "192.0.2.7"}
TOKEN = "metrics-token-0123456789abcdef"


def test_loopback_may_read_it_and_others_may_not(client, clock):
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 403
    # Without a configured token, no token opens it.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/metrics", environ_base=OUTSIDE, headers=headers).status_code == 403


FORWARDING_HEADERS = ["X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Client-IP", "True-Client-IP"]


@pytest.mark.parametrize("header", FORWARDING_HEADERS)
def test_a_request_forwarded_by_an_unlisted_proxy_on_loopback_is_refused(client, clock, header):
    said = "for=127.0.0.1" if header == "Forwarded" else "127.0.0.1"
    assert client.get("/metrics", headers={header: said}).status_code == 403


class TestTrustedProxyOnLoopback:
    @pytest.fixture
    def settings_overrides(self):
        return {"trusted_proxies": ["127.0.0.1"]}

    @pytest.mark.parametrize("header", FORWARDING_HEADERS[1:])
    def test_an_outside_client_it_names_in_another_header_is_refused(self, client, clock, header):
        said = "for=203.0.113.9" if header == "Forwarded" else "203.0.113.9"
        assert client.get("/metrics", headers={header: said}).status_code == 403

    def test_its_x_forwarded_for_names_the_client(self, client, clock):
        def get(forwarded_for):
            return client.get("/metrics", headers={"X-Forwarded-For": forwarded_for})

        assert get("203.0.113.9").status_code == 403
        assert get("127.0.0.1").status_code == 200
        assert get("127.0.0.1, 203.0.113.9").status_code == 403  # the last hop is believed
        assert get("203.0.113.9, ").status_code == 403  # an empty last hop names nobody


class TestConfiguredAccess:
    @pytest.fixture
    def settings_overrides(self):
        return {
            "metrics.allow": ["10.20.0.0/16"],
            "metrics.token": TOKEN,
            "trusted_proxies": ["192.0.2.1"],
        }

    def test_configured_networks_may_read_it(self, client, clock):
        assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.3.4"}).status_code == 200
        assert client.get("/metrics").status_code == 401  # loopback is no longer listed

    def test_the_bearer_token_opens_it_from_anywhere(self, client, clock):
        def get(authorization):
            headers = {"Authorization": authorization} if authorization else {}
            return client.get("/metrics", environ_base=OUTSIDE, headers=headers)

        assert get(f"Bearer {TOKEN}").status_code == 200
        refused = get(None)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert get(f"Bearer {TOKEN[:-1]}x").status_code == 401
        assert get(f"Basic {TOKEN}").status_code == 401
        assert get("Bearer ").status_code == 401

    def test_a_trusted_proxy_forwards_the_clients_address(self, client, clock):
        proxy = {"REMOTE_ADDR": "192.0.2.1"}
        inside = client.get(
            "/metrics", environ_base=proxy, headers={"X-Forwarded-For": "10.20.9.9"}
        )
        assert inside.status_code == 200
        outside = client.get("/metrics", environ_base=proxy, headers={"X-Forwarded-For": "1.2.3.4"})
        assert outside.status_code == 401
