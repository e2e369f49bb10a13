"""A bad day, for real: support traffic and sign-in floods never take the line into outage mode.

A real `ivr serve` (gunicorn, gevent workers, the shipped 0.5 s database deadline) on a
PostgreSQL server of this module's own, while a known super user keeps calling the emergency
line. The database stays healthy throughout, so every call must be recognised and none served
through the outage path. A modest load: `python -m bench.badday` is the heavy version.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter

import pytest
import real_servers
import requests
from helpers import AUTH_TOKEN, EMERGENCY_NUMBER
from real_servers import IvrServer, write_config
from resilience_helpers import SUPER_PHONE, make_directory
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.schema import upgrade_database
from bench import loads
from bench.flows import Plan
from bench.seed import grow_database
from tickets.availability import set_hours_override
from tickets.staff import create_staff, issue_token

pytestmark = pytest.mark.wall_clock

STAFF_EMAIL = "agent@otys.test"
STAFF_PASSWORD = "a long and right password"
PHASE_SECONDS = 6.0
MIN_CALLS = 4
MOST_SECONDS = 60.0


# A PostgreSQL server of this module's own (real_servers.postgres).
postgres = real_servers.postgres


@pytest.fixture(scope="module")
def line(postgres, tmp_path_factory):
    """The served line: a migrated database with tickets, a directory, an account, a server."""
    url = postgres.create_database("ivr_bad_day")
    upgrade_database(url)
    engine = create_engine(url)
    with Session(engine) as session:
        make_directory(session)
        set_hours_override(session, mode="open", set_by="test")
        staff = create_staff(session, email=STAFF_EMAIL, name="Agent", password=STAFF_PASSWORD)
        token = issue_token(session, staff=staff)
        session.commit()
    grow_database(
        engine, tickets=5000, contacts=500, organizations=50, call_logs=500, report=lambda _: None
    )
    engine.dispose()
    workdir = tmp_path_factory.mktemp("bad-day")
    # 127.0.0.1 is a trusted proxy: the flood's sign-ins come "from" many addresses.
    config = write_config(workdir, data_dir=f'"{workdir / "var"}"', trusted_proxies='["127.0.0.1"]')
    server = IvrServer(workdir / "serve", url, config=config)
    # Its own plain-http address: the dashboard's cookies are then not https-only.
    server.env["IVR_PUBLIC_URL"] = server.base_url
    server.start()
    try:
        yield server, postgres.url("ivr_bad_day"), token
    finally:
        server.stop()


def calls_meanwhile(server: IvrServer, load) -> loads.Calls:
    """Keep a known super user calling the emergency line while `load` runs; return the calls.

    The load runs PHASE_SECONDS, and on a slow machine longer, until MIN_CALLS calls are done.
    """
    calls = loads.Calls()
    plan = Plan("emergency-accept", EMERGENCY_NUMBER, ("1",), caller_kind="entitled")
    caller = loads.Line(server.port, server.base_url, AUTH_TOKEN, plan, [SUPER_PHONE], ())
    stop = threading.Event()
    threads = [threading.Thread(target=loads.call_back_to_back, args=(caller, calls, stop, 0.05))]
    threads += [threading.Thread(target=work, args=(stop,)) for work in load]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    while time.monotonic() - started < MOST_SECONDS:
        stop.wait(0.5)
        if time.monotonic() - started >= PHASE_SECONDS and len(calls.results) >= MIN_CALLS:
            break
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    return calls


def assert_every_call_recognised(calls: loads.Calls, server: IvrServer) -> None:
    assert len(calls.results) >= MIN_CALLS, "too few calls to tell"

    def described(results) -> list:
        return [(result.error, [path for path, _ in result.samples]) for result in results]

    assert described(calls.outage) == []
    assert described(calls.failed) == []
    assert len(calls.recognised) == len(calls.results)
    log = server.log()
    assert "database unavailable" not in log
    assert "past its deadline" not in log


def test_sign_ins_that_wait_for_a_lock_fail_alone_and_every_caller_is_recognised(line):
    server, url, _token = line
    tally = loads.Tally()
    held = threading.Event()

    def lock(stop: threading.Event) -> None:
        loads.hold_sign_in_lock(url.replace("+psycopg", ""), held, stop)

    def sign_ins(stop: threading.Event) -> None:
        held.wait(10)
        loads.sign_in_flood(server.base_url, tally, stop, many_sources=True, pause=0.1)

    calls = calls_meanwhile(server, [lock, sign_ins, sign_ins])
    assert held.is_set()
    assert tally.statuses[("sign-in", 503)] > 0  # they did wait for the lock, and gave up
    # (the last ones may come after the lock, and fail the ordinary way)
    assert set(status for _kind, status in tally.statuses) <= {401, 503}
    assert_every_call_recognised(calls, server)


def test_a_sign_in_flood_and_heavy_api_reads_leave_every_caller_recognised(line):
    server, _url, token = line
    tally = loads.Tally()

    def flood(stop: threading.Event) -> None:
        loads.sign_in_flood(server.base_url, tally, stop, many_sources=True)

    def one_source(stop: threading.Event) -> None:
        loads.sign_in_flood(server.base_url, tally, stop, many_sources=False)

    def reads(stop: threading.Event) -> None:
        loads.api_reads(server.base_url, token, tally, stop)

    calls = calls_meanwhile(server, [flood, flood, one_source, reads])
    statuses = Counter({status: n for (kind, status), n in tally.statuses.items()})
    assert statuses[401] > 0  # hashed (one source's 20th failure on is refused unheard, 429)
    assert statuses[200] > 0 and statuses[400] > 0  # pages of 500, and a too deep one
    assert set(statuses) <= {200, 400, 401, 429}
    assert_every_call_recognised(calls, server)


def test_the_dashboard_signs_in_and_pages_deep_meanwhile(line):
    server, _url, _token = line
    session = loads.signed_in(server.base_url, email=STAFF_EMAIL, password=STAFF_PASSWORD)
    tally = loads.Tally()

    def pages(stop: threading.Event) -> None:
        loads.dashboard_pages(session, server.base_url, tally, stop)

    calls = calls_meanwhile(server, [pages, pages])
    assert set(status for _kind, status in tally.statuses) == {200}
    assert_every_call_recognised(calls, server)


def test_a_made_up_address_from_a_new_source_still_gets_the_polite_answer(line):
    server, _url, _token = line
    session = requests.Session()
    page = session.get(server.base_url + "/support/login", timeout=10)
    token = loads.CSRF_TOKEN.search(page.text).group(1)
    source = f"10.200.{random.randrange(256)}.{random.randrange(1, 255)}"
    answer = session.post(
        server.base_url + "/support/login",
        data={"csrf_token": token, "email": "x@y.example", "password": secrets.token_hex(8)},
        headers={"X-Forwarded-For": source},
        timeout=10,
    )
    assert answer.status_code == 401
    assert "not right" in answer.text
