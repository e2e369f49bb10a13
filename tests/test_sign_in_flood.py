"""A flood of sign-ins: limited per source, cheap to refuse, hashed off the event loop.

Anyone can post the sign-in form, no account needed. Each failure costs a password hash
(about 0.1 s of CPU); under `ivr serve` that used to run on the gevent worker's one event loop,
where it held up every webhook of the worker, and the database watchdog counted the time the
loop stood still as time the database took to answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, make_url, select
from support_helpers import IsolatedClient, make_staff, sign_in

from ivr.outage.watchdog import arm_connection, watchdog
from ivr.privacy.retention import apply_retention
from tickets.models import LoginFailure

PROJECT = Path(__file__).resolve().parent.parent
NEEDS_POSTGRES = pytest.mark.skipif(
    not os.environ.get("IVR_TEST_DATABASE_URL"), reason="needs PostgreSQL (IVR_TEST_DATABASE_URL)"
)


@pytest.fixture
def client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def agent(session):
    return make_staff(session)


def from_address(client, address: str):
    client.environ_base["REMOTE_ADDR"] = address
    return client


def failures(session, **where) -> int:
    statement = select(func.count()).select_from(LoginFailure)
    for name, value in where.items():
        statement = statement.where(getattr(LoginFailure, name) == value)
    session.rollback()
    return session.scalar(statement)


# ---------------------------------------------------------------- a limit per source


def test_twenty_failures_from_one_source_refuse_it_whatever_the_address(
    app, clock, client, session, agent, monkeypatch
):
    import tickets.passwords

    hashes = []
    real = tickets.passwords.check_password_hash
    monkeypatch.setattr(
        tickets.passwords,
        "check_password_hash",
        lambda hashed, password: hashes.append(password) or real(hashed, password),
    )
    flood = from_address(client, "198.51.100.7")
    for index in range(20):
        assert sign_in(flood, email=f"random{index}@example.com", password="x").status_code == 401
    assert len(hashes) == 20
    refused = sign_in(flood, email="random20@example.com", password="x")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(15 * 60)
    assert "too many failed sign-ins" in refused.get_data(as_text=True).lower()
    assert sign_in(flood).status_code == 429  # the right password too, while it lasts
    assert len(hashes) == 20  # refusing costs no hash
    assert failures(session) == 20  # and adds no row

    # The agent at their own desk is not kept out by someone else's flood.
    desk = from_address(app.test_client(), "203.0.113.20")
    assert sign_in(desk).status_code == 303

    clock.now += timedelta(minutes=15, seconds=1)
    assert sign_in(flood).status_code == 303


def test_an_ipv6_source_is_limited_by_its_slash_64(app, clock, client, session, agent):
    for index in range(20):
        flood = from_address(client, f"2001:db8:1:2::{index + 1:x}")
        assert sign_in(flood, email=f"r{index}@example.com", password="x").status_code == 401
    assert failures(session, source="2001:db8:1:2::/64") == 20
    assert sign_in(from_address(client, "2001:db8:1:2:ffff::1")).status_code == 429
    assert sign_in(from_address(app.test_client(), "2001:db8:1:3::1")).status_code == 303


def test_a_locked_address_is_refused_without_a_hash(client, clock, agent, monkeypatch):
    import tickets.passwords

    hashes = []
    real = tickets.passwords.check_password_hash
    monkeypatch.setattr(
        tickets.passwords,
        "check_password_hash",
        lambda hashed, password: hashes.append(password) or real(hashed, password),
    )
    for _ in range(5):
        assert sign_in(client, password="guess").status_code == 401
    assert sign_in(client, password="guess").status_code == 401  # locked: same answer
    assert len(hashes) == 5


# ---------------------------------------------------------------- failures do not pile up


def test_failures_older_than_the_lock_window_are_purged(app, clock, client, session, agent):
    for index in range(3):
        sign_in(from_address(client, "198.51.100.7"), email=f"old{index}@example.com")
        sign_in(from_address(client, "198.51.100.8"), email=f"old{index}@example.com")
    assert failures(session) == 6
    clock.now += timedelta(minutes=15, seconds=1)
    sign_in(from_address(client, "198.51.100.7"), email="new@example.com")
    # The failing source's own old rows go at once; another source's with the daily purge.
    assert failures(session, source="198.51.100.7") == 1
    assert failures(session, source="198.51.100.8") == 3
    apply_retention(session, app.config["SETTINGS"], actor="test", now=clock.now)
    session.commit()
    assert failures(session, source="198.51.100.8") == 0
    assert failures(session) == 1


# ---------------------------------------------------------------- the event loop keeps running


def run_under_gevent(script: str, *, env: dict | None = None) -> dict:
    """Run a script in a fresh interpreter patched by gevent, as `ivr serve`'s workers are."""
    code = "from gevent import monkey\nmonkey.patch_all()\n" + textwrap.dedent(script)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.wall_clock
def test_a_password_is_checked_while_the_worker_serves_other_requests():
    outcome = run_under_gevent(
        """
        import json
        import gevent
        from werkzeug.security import generate_password_hash
        from tickets.models import StaffUser
        from tickets.staff import check_password

        hashed = generate_password_hash("pw")
        staff = StaffUser(email="a@example.com", name="A", password_hash=hashed)
        ticks = []

        def other_requests():
            while True:
                ticks.append(1)
                gevent.sleep(0.001)

        gevent.spawn(other_requests)
        gevent.sleep(0.01)
        before = len(ticks)
        wrong = check_password(staff, "guess")
        during = len(ticks) - before
        right = check_password(staff, "pw")
        print(json.dumps({"wrong": wrong, "right": right, "during": during}))
        """
    )
    assert (outcome["wrong"], outcome["right"]) == (False, True)
    assert outcome["during"] > 0  # the loop ran while the hash was worked out


@pytest.mark.wall_clock
@NEEDS_POSTGRES
def test_the_watchdog_leaves_an_answer_that_waits_only_for_its_reader(database_url):
    url = make_url(database_url).set(drivername="postgresql")
    connection = psycopg.connect(url.render_as_string(hide_password=False))
    try:
        token = arm_connection(connection, 0.1)
        pgconn = connection.pgconn
        pgconn.send_query(b"SELECT 42")
        pgconn.flush()
        time.sleep(0.4)  # the reader is held up past the deadline; the answer is there
        pgconn.consume_input()
        while pgconn.is_busy():
            time.sleep(0.01)
            pgconn.consume_input()
        result = pgconn.get_result()
        assert pgconn.get_result() is None  # the whole answer is read
        watchdog.disarm(token)
        assert result.status == psycopg.pq.ExecStatus.TUPLES_OK
        assert result.get_value(0, 0) == b"42"
        assert connection.execute("SELECT 1").fetchone() == (1,)  # still connected
    finally:
        connection.close()


@pytest.mark.wall_clock
@NEEDS_POSTGRES
def test_a_blocked_event_loop_does_not_make_a_healthy_database_look_hung(database_url):
    outcome = run_under_gevent(
        """
        import json, os
        import gevent
        from gevent import monkey
        from sqlalchemy.exc import OperationalError
        from core.db import is_database_unreachable, make_engine
        from ivr.outage.detection import guard_connections

        engine = make_engine(os.environ["URL"], timeout_seconds=0.5)
        guard_connections(engine, 0.5)
        hash_a_password = monkey.get_original("time", "sleep")  # holds the loop, as CPU work does
        cut = []

        def query() -> None:
            try:
                with engine.connect() as connection:  # pinged before it is lent
                    connection.exec_driver_sql("SELECT 1")
            except OperationalError as exc:
                cut.append(is_database_unreachable(exc))

        def sign_ins():
            for _ in range(8):
                hash_a_password(0.15)
                query()

        flood = [gevent.spawn(sign_ins) for _ in range(4)]
        while not all(greenlet.dead for greenlet in flood):  # the webhooks meanwhile
            query()
        gevent.joinall(flood)
        print(json.dumps({"cut": len(cut)}))
        """,
        env={"URL": database_url},
    )
    assert outcome["cut"] == 0
