"""A busy database is not an unreachable one: a cancelled statement fails its own request alone.

PostgreSQL cancels a statement that runs past `statement_timeout` (SQLSTATE 57014), or one that
waits too long for a lock; SQLite gives up on a locked database after its busy timeout. Neither
means the database is away: the request fails (the dashboard and the API answer 503 "busy, try
again"), and the line goes on recognising callers. Support traffic has its own connections and
its own places in the server, so it can never take the webhooks' share.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3

import gevent
import psycopg
import pytest
from helpers import EMERGENCY_NUMBER
from resilience_helpers import SUPER_PHONE, make_directory
from sqlalchemy import create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from support_helpers import IsolatedClient, make_staff, make_ticket, sign_in, token_for

from app.admission import WholeRequests
from core.db import db, is_database_unreachable

# Statements are cancelled after twice this (the shipped deadline), so a lock costs a second.
SHIPPED = {"database_timeout_seconds": 0.5}


@pytest.fixture
def settings_overrides():
    return dict(SHIPPED)


@pytest.fixture
def client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def directory(session, clock):  # a working Monday morning: the emergency line is open
    return make_directory(session)


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def app_engines():
    """Return every engine the app talks to the database through."""
    return [engine for engine in (db.engine, getattr(db, "support_engine", None)) if engine]


@contextlib.contextmanager
def table_locked(database_url: str, table: str):
    """Hold a lock on `table` in a long transaction of another connection.

    PostgreSQL: ACCESS EXCLUSIVE, so even reads wait (until `statement_timeout` cancels them).
    SQLite: the database's write lock (readers go on in WAL mode); the app's busy timeout is
    cut to 0.2 s so a blocked write gives up within the test.
    """
    if is_postgres(database_url):
        engine = create_engine(database_url)
        connection = engine.connect()
        try:
            connection.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            yield
        finally:
            connection.rollback()
            connection.close()
            engine.dispose()
        return

    def short_busy_timeout(dbapi_connection, _record) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=200")

    for engine in app_engines():
        event.listen(engine, "connect", short_busy_timeout)
        engine.dispose()
    holder = sqlite3.connect(make_url(database_url).database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.rollback()
        holder.close()
        for engine in app_engines():
            event.remove(engine, "connect", short_busy_timeout)
            engine.dispose()


def assert_recognised(phone) -> None:
    """Assert a known super user on the emergency line is recognised (not served from config)."""
    root = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE).start()
    gather = root.find("Gather")
    assert gather is not None, "served without the database"
    assert gather.get("action").startswith("/voice/emergency/triage")


def looks_down(app) -> bool:
    return app.extensions["outage"].health.looks_down()


# ---------------------------------------------------------------- which errors mean "away"


def _wrapped(orig: Exception) -> OperationalError:
    return OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.errors.LockNotAvailable("could not obtain lock"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_a_failed_statement_is_not_an_unreachable_database(orig):
    assert not is_database_unreachable(_wrapped(orig))


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.OperationalError("connection failed: Connection refused"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.CrashShutdown("terminating connection because of crash"),
        psycopg.errors.CannotConnectNow("the database system is starting up"),
        psycopg.errors.ConnectionFailure("connection failure"),
        psycopg.errors.TooManyConnections("too many clients already"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_a_failure_to_reach_the_server_is_an_unreachable_database(orig):
    assert is_database_unreachable(_wrapped(orig))


def test_an_invalidated_connection_and_a_pool_timeout_are_an_unreachable_database():
    cut = OperationalError("SELECT 1", {}, psycopg.errors.QueryCanceled("x"))
    cut.connection_invalidated = True
    assert is_database_unreachable(cut)
    assert is_database_unreachable(PoolTimeoutError("QueuePool limit reached"))


def test_sqlite_busy_is_a_failed_statement_and_a_missing_file_is_away(tmp_path):
    holder = sqlite3.connect(tmp_path / "locked.sqlite3", isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    waiting = sqlite3.connect(tmp_path / "locked.sqlite3", timeout=0.05)
    with pytest.raises(sqlite3.OperationalError) as busy:
        waiting.execute("INSERT INTO t VALUES (1)")
    assert not is_database_unreachable(_wrapped(busy.value))
    with pytest.raises(sqlite3.OperationalError) as missing:
        sqlite3.connect(tmp_path / "no" / "such" / "dir.sqlite3")
    assert is_database_unreachable(_wrapped(missing.value))
    # What a refused connection looks like from the driver (no SQLite error code at all).
    assert is_database_unreachable(_wrapped(sqlite3.OperationalError("connection refused")))
    holder.rollback()


# ---------------------------------------------------------------- a lock on the sign-in table


def test_a_sign_in_held_up_by_a_lock_fails_alone_and_the_line_keeps_recognising_callers(
    app, client, phone, session, directory, database_url
):
    make_staff(session)
    with table_locked(database_url, "login_failures"):
        response = sign_in(client, password="wrong guess")
    assert response.status_code == 503
    assert "try again" in response.get_data(as_text=True).lower()
    assert response.headers.get("Retry-After")
    assert not looks_down(app)
    assert_recognised(phone)


def test_an_api_request_whose_statement_is_cancelled_answers_busy_in_json(
    app, client, phone, session, directory, database_url
):
    staff = make_staff(session)
    ticket = make_ticket(session)
    headers = {"Authorization": f"Bearer {token_for(session, staff)}"}
    if is_postgres(database_url):
        with table_locked(database_url, "tickets"):  # reads wait, then are cancelled
            response = client.get("/api/tickets", headers=headers)
    else:  # SQLite readers never wait: a write does
        with table_locked(database_url, "tickets"):
            response = client.post(
                f"/api/tickets/{ticket.number}/status", json={"status": "in_progress"},
                headers=headers,
            )  # fmt: skip
    assert response.status_code == 503
    assert response.get_json() == {"error": "database busy; try again", "code": "busy"}
    assert response.headers.get("Retry-After")
    assert not looks_down(app)
    assert_recognised(phone)


def test_a_webhook_whose_statement_is_cancelled_leaves_the_line_up(
    app, phone, directory, database_url
):
    with table_locked(database_url, "call_logs"):
        root = phone(to=EMERGENCY_NUMBER, from_=SUPER_PHONE).start()
    assert root.find("Gather") is not None or root.find("Dial") is not None  # served somehow
    assert not looks_down(app)
    assert_recognised(phone)


# ---------------------------------------------------------------- support has its own budget


def test_support_requests_have_their_own_connections(app, client, phone, session, directory):
    staff = make_staff(session)
    headers = {"Authorization": f"Bearer {token_for(session, staff)}"}
    support = db.support_engine
    assert support is not db.engine
    used = []
    event.listen(support, "checkout", lambda *_: used.append("support"))
    event.listen(db.engine, "checkout", lambda *_: used.append("webhooks"))
    assert client.get("/api/tickets", headers=headers).status_code == 200
    assert set(used) == {"support"}
    used.clear()
    assert_recognised(phone)
    assert set(used) == {"webhooks"}


def test_support_requests_that_take_every_connection_of_theirs_leave_the_webhooks_theirs(
    app, client, phone, session, directory
):
    staff = make_staff(session)
    headers = {"Authorization": f"Bearer {token_for(session, staff)}"}
    support = db.support_engine
    held = []
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(PoolTimeoutError):
            while len(held) < 50:  # every connection the support pool will lend
                held.append(stack.enter_context(support.connect()))
        assert 0 < len(held) < 50
        response = client.get("/api/tickets", headers=headers)
        assert response.status_code == 503
        assert response.get_json()["code"] == "busy"
        assert not looks_down(app)
        assert_recognised(phone)


def _slow_app(environ, start_response):
    gevent.sleep(0.2)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["PATH_INFO"].encode()]


def _request(middleware, path: str, finished: list[str]) -> None:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "CONTENT_LENGTH": "0",
        "wsgi.input": io.BytesIO(b""),
    }
    middleware(environ, lambda *_: None)
    finished.append(path)


@pytest.mark.wall_clock
def test_support_requests_wait_for_their_own_places_not_the_webhooks():
    served = WholeRequests(_slow_app, places=1, support_places=1, read_seconds=5, max_bytes=1000)
    finished: list[str] = []
    support = [gevent.spawn(_request, served, "/api/tickets", finished) for _ in range(3)]
    gevent.sleep(0.01)  # the first support request holds its place, two wait
    webhook = gevent.spawn(_request, served, "/voice/incoming", finished)
    gevent.joinall([*support, webhook], timeout=5)
    # The webhook took its own place at once: done with the first support request, not after
    # the three of them.
    assert finished.index("/voice/incoming") <= 1, finished


# ---------------------------------------------------------------- deep pages are bounded


def test_the_api_lists_only_the_first_ten_thousand_tickets_of_a_list(client, session):
    staff = make_staff(session)
    make_ticket(session)
    headers = {"Authorization": f"Bearer {token_for(session, staff)}"}
    for deepest in ("page=20&per_page=500", "page=10000&per_page=1", "page=200&per_page=50"):
        assert client.get(f"/api/tickets?{deepest}", headers=headers).status_code == 200
    for too_deep in ("page=21&per_page=500", "page=1000000&per_page=500", "page=10001"):
        response = client.get(f"/api/tickets?{too_deep}", headers=headers)
        assert response.status_code == 400, too_deep
        assert "10000" in response.get_json()["error"]


def test_the_dashboard_pages_no_deeper_than_the_ten_thousandth_ticket(client, session):
    make_staff(session)
    make_ticket(session)
    assert sign_in(client).status_code == 303
    page = client.get("/support?page=100000&status=closed")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Page 200" in html
    assert "narrow the list" in html
