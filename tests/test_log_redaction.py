"""Logs never hold a secret that travels in a URL: a calendar feed's token, a token in a query.

`ivr serve`'s access log is checked on the real server (`test_serve.py`); here the service's own
lines that name a path, and werkzeug's development server, which logs every request it serves.
"""

from __future__ import annotations

import logging
import threading

import pytest
import requests
from resilience_helpers import DatabaseOutage
from support_helpers import make_staff
from werkzeug.serving import make_server

from core.log_redaction import SECRET_RULES, redact
from tickets.oncall.feeds import issue_feed_token

SECRET_NAMES = ("token", "secret", "password", "key")


@pytest.fixture
def feed_token(session):
    return issue_feed_token(session, staff=make_staff(session))


def test_a_feed_asked_for_while_the_database_is_down_is_logged_without_its_token(
    client, feed_token, caplog, clock
):
    caplog.set_level(logging.INFO)
    outage = DatabaseOutage().start()
    try:
        response = client.get(f"/oncall/feed/{feed_token}.ics")
    finally:
        outage.end()
    assert response.status_code == 503
    assert "database unavailable on /oncall/feed/[redacted].ics" in caplog.text
    assert feed_token not in caplog.text


@pytest.mark.wall_clock
def test_the_development_server_logs_requests_without_their_secrets(app, feed_token, caplog):
    caplog.set_level(logging.INFO, logger="werkzeug")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    try:
        assert requests.get(f"{base}/oncall/feed/{feed_token}.ics", timeout=10).status_code == 200
        requests.get(f"{base}/api/tickets?api_key=k-0123456789&page=1", timeout=10)
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any('"GET /oncall/feed/[redacted].ics HTTP/1.1" 200' in line for line in lines)
    assert any("/api/tickets?api_key=[redacted]&page=1" in line for line in lines)
    assert feed_token not in caplog.text and "k-0123456789" not in caplog.text


def test_every_path_with_a_secret_in_it_is_redacted(app):
    def is_secret(argument: str) -> bool:
        # a row's id (`token_id`) is no secret; the token itself is
        return any(name in argument for name in SECRET_NAMES) and not argument.endswith("_id")

    secret_rules = {
        rule.rule for rule in app.url_map.iter_rules() if any(map(is_secret, rule.arguments))
    }
    assert secret_rules == set(SECRET_RULES)
    for rule in secret_rules:
        path = rule.replace("<token>", "s3cr3t-Token_value")
        assert "s3cr3t" not in redact(f'"GET {path}?a=1 HTTP/1.1" 200 "https://x{path}"')


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        ("/api/tickets?access_token=abc&page=2", "/api/tickets?access_token=[redacted]&page=2"),
        ("/x?page=2&Token=abc#frag", "/x?page=2&Token=[redacted]#frag"),
        ("/x?client_secret=abc&password=p&apikey=k", None),
        ("/support/tickets?q=token&page=2", "/support/tickets?q=token&page=2"),
        ("/voice/incoming?step=menu", "/voice/incoming?step=menu"),
        ("/oncall/feed.ics", "/oncall/feed.ics"),
    ],
)
def test_secret_query_values_are_redacted_and_other_values_kept(line, logged):
    expected = logged or "/x?client_secret=[redacted]&password=[redacted]&apikey=[redacted]"
    assert redact(line) == expected
