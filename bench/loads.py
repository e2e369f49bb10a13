"""What a bad day sends the service besides calls: support reads, deep pages, a sign-in flood.

Each load is a loop that runs in threads of its own until its `stop` event is set, and notes
every answer it gets in a `Tally` (status codes per kind, latencies). The callers themselves
(known super users on the emergency line) and a probe of the database run the same way.
"""

from __future__ import annotations

import random
import re
import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import psycopg
import requests

from bench.flows import HttpTransport, Plan, Twilio, place_call
from bench.reads import Unavailable, login

# Deep pages as the review sent them, and the deepest pages a client may still ask for.
API_PATHS = (
    "/api/tickets?page=1000000&per_page=500",
    "/api/tickets?page=20&per_page=500",
    "/api/tickets?per_page=500",
    "/api/tickets?status=closed&page=10&per_page=500",
)
DASHBOARD_PATHS = (
    "/support?page=100000",
    "/support?page=200",
    "/support?status=closed&page=150",
    "/support",
)
# Webhook paths that only the outage machinery answers (TwiML from the configuration).
OUTAGE_PATHS = ("/voice/fallback", "/voice/outage")
TRIAGE_PATH = "/voice/emergency/triage"
CSRF_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass
class Tally:
    """Answers one kind of load got: status codes and latencies, safe to add to from threads."""

    statuses: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str, status: int, seconds: float) -> None:
        """Note one answer."""
        with self.lock:
            self.statuses[(kind, status)] += 1
            self.latencies[kind].append(seconds)

    def failed(self, kind: str, error: Exception) -> None:
        """Note a request that got no answer at all."""
        with self.lock:
            self.errors[(kind, type(error).__name__)] += 1


def _get(session: requests.Session, url: str, tally: Tally, kind: str, **kwargs) -> None:
    started = time.perf_counter()
    try:
        response = session.get(url, timeout=30, **kwargs)
    except requests.RequestException as exc:
        tally.failed(kind, exc)
        return
    tally.note(kind, response.status_code, time.perf_counter() - started)


def api_reads(base: str, token: str, tally: Tally, stop: threading.Event) -> None:
    """Read the API's ticket list 500 at a time, deep pages included, back to back."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    paths = list(API_PATHS)
    random.shuffle(paths)
    while not stop.is_set():
        for path in paths:
            if stop.is_set():
                break
            _get(session, base + path, tally, "api")
    session.close()


def dashboard_pages(session: requests.Session, base: str, tally: Tally, stop: threading.Event):
    """Page deep through the dashboard's ticket list with a signed-in session, back to back."""
    while not stop.is_set():
        for path in DASHBOARD_PATHS:
            if stop.is_set():
                break
            _get(session, base + path, tally, "dashboard")


def signed_in(base: str, *, email: str, password: str) -> requests.Session:
    """Return a session signed in to the dashboard through its own form."""
    session = requests.Session()
    try:
        login(session, base, email=email, password=password)
    except Unavailable as exc:
        raise SystemExit(f"the bench could not sign in to the dashboard: {exc}") from None
    return session


def _login_form(session: requests.Session, base: str) -> str:
    """Return the sign-in form's CSRF token (the session cookie keeps it valid)."""
    page = session.get(base + "/support/login", timeout=30)
    match = CSRF_TOKEN.search(page.text)
    if match is None:
        raise SystemExit("no CSRF token on the sign-in page")
    return match.group(1)


def sign_in_flood(
    base: str, tally: Tally, stop: threading.Event, *, many_sources: bool, pause: float = 0.0
) -> None:
    """Post failed sign-ins with random e-mail addresses, back to back.

    With `many_sources` each comes from another address (X-Forwarded-For, believed from the
    trusted proxy 127.0.0.1), as a botnet's would; otherwise all from one.
    """
    session = requests.Session()
    token = _login_form(session, base)
    source = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    while not stop.is_set():
        if many_sources:
            source = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(255)}"
        data = {
            "csrf_token": token,
            "email": f"{secrets.token_hex(6)}@flood.example",
            "password": secrets.token_urlsafe(9),
        }
        started = time.perf_counter()
        try:
            response = session.post(
                base + "/support/login",
                data=data,
                headers={"X-Forwarded-For": source},
                timeout=30,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            tally.failed("sign-in", exc)
            continue
        tally.note("sign-in", response.status_code, time.perf_counter() - started)
        if pause:
            stop.wait(pause)
    session.close()


def hold_sign_in_lock(dsn: str, held: threading.Event, stop: threading.Event) -> None:
    """Hold a lock on the sign-in table in one long transaction until `stop`."""
    with psycopg.connect(dsn) as connection:
        connection.execute("LOCK TABLE login_failures IN ACCESS EXCLUSIVE MODE")
        held.set()
        stop.wait()
        connection.rollback()


@dataclass
class Probe:
    """A database probe's findings: how long `SELECT 1` took at most, and how often it failed."""

    answers: int = 0
    failures: int = 0
    slowest: float = 0.0


def probe_database(dsn: str, probe: Probe, stop: threading.Event, every: float = 0.2) -> None:
    """Ask the database `SELECT 1` on a connection of its own every `every` seconds."""
    connection = None
    while not stop.is_set():
        started = time.perf_counter()
        try:
            if connection is None:
                connection = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
            connection.execute("SELECT 1").fetchone()
            probe.answers += 1
            probe.slowest = max(probe.slowest, time.perf_counter() - started)
        except psycopg.Error:
            probe.failures += 1
            connection = None
        stop.wait(every)
    if connection is not None:
        connection.close()


@dataclass
class Calls:
    """What happened to the known super users' calls of one phase."""

    results: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, result) -> None:
        """Keep one call's result."""
        with self.lock:
            self.results.append(result)

    @property
    def outage(self) -> list:
        """Return the calls any step of which was served without the database."""
        return [result for result in self.results if served_without_database(result)]

    @property
    def recognised(self) -> list:
        """Return the calls whose caller was recognised (offered triage)."""
        return [
            result
            for result in self.results
            if any(path.startswith(TRIAGE_PATH) for path, _ in result.samples)
        ]

    @property
    def failed(self) -> list:
        """Return the calls that did not go as planned for another reason than the outage path."""
        return [
            result
            for result in self.results
            if result.error and not served_without_database(result)
        ]

    def webhook_seconds(self) -> list[float]:
        """Return every webhook's answer time, sorted."""
        return sorted(seconds for result in self.results for _, seconds in result.samples)


def served_without_database(result) -> bool:
    """Return whether any webhook of a call was answered by the outage machinery."""
    if result.error and "fallback" in result.error:
        return True
    return any(path.startswith(OUTAGE_PATHS) for path, _ in result.samples)


@dataclass
class Line:
    """Where and how the bench calls: the service, Twilio's signing token, who calls."""

    port: int
    public_url: str
    auth_token: str
    plan: Plan
    callers: list[str]
    alarms: tuple[str, ...]


def call_back_to_back(line: Line, calls: Calls, stop: threading.Event, think: float) -> None:
    """Place known super users' emergency calls one after another until `stop`."""
    transport = HttpTransport("127.0.0.1", line.port, timeout=30)
    twilio = Twilio(transport, public_url=line.public_url, auth_token=line.auth_token)
    try:
        while not stop.is_set():
            caller = random.choice(line.callers)
            calls.add(place_call(twilio, line.plan, caller=caller, think=think, alarms=line.alarms))
    finally:
        transport.close()
