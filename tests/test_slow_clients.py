"""Slow and idle connections cannot keep a real `ivr serve` from answering Twilio.

A slowloris client opens a connection and sends a request's headers one line at a time, its
body a byte at a time, or nothing at all. No signature is needed to do that. Twilio gives up on
a webhook after 15 s; the promise here is that signed webhooks still answer within a second
while more than 200 such connections are open, and that the server cuts each of them off
instead of waiting for it for ever.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
import time
import uuid

import gevent
import pytest
import requests
from helpers import EMERGENCY_NUMBER, PUBLIC_URL, sign
from real_servers import IvrServer, empty_tables, write_config
from werkzeug.test import Client, EnvironBuilder, run_wsgi_app

from app.admission import WholeRequests

# A real server, real sockets and a second of waiting between header lines.
pytestmark = pytest.mark.wall_clock

SLOW_HEADERS = 100  # send a header line a second
SLOW_BODIES = 50  # send whole headers, then a byte of the body a second
IDLE = 100  # send nothing
ANSWER_SECONDS = 1.0
# Long enough for a connection that was never cut off to show (gunicorn's gthread waits 5 s
# for a first byte before it parks a connection), short enough for the suite.
ATTACK_SECONDS = 12
# Beyond this a request that has not answered counts as not answered at all.
GIVE_UP_SECONDS = 12


class Slowloris:
    """Keep connections open that send their request slowly or not at all.

    A connection the server closes (or answers: a 400 or 408 counts) is counted as cut off and
    opened again at once, so the number of open connections never drops.
    """

    def __init__(self, port: int, *, headers: int, bodies: int, idle: int) -> None:
        self.port = port
        self.kinds = ["headers"] * headers + ["body"] * bodies + ["idle"] * idle
        self.slots: list[socket.socket | None] = [None] * len(self.kinds)
        self.sent = [0] * len(self.kinds)
        self.cut_off = [0] * len(self.kinds)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="slowloris", daemon=True)

    def __enter__(self) -> Slowloris:
        for slot in range(len(self.slots)):
            self._open(slot)
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        for connection in self.slots:
            if connection is not None:
                connection.close()

    def _open(self, slot: int) -> None:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        connection.setblocking(False)
        self.slots[slot] = connection
        self.sent[slot] = 0

    @staticmethod
    def _closed_by_server(connection: socket.socket) -> bool:
        try:
            connection.recv(1, socket.MSG_PEEK)  # an answer, or b"" for a closed connection
        except BlockingIOError:
            return False
        except OSError:
            return True
        return True

    def _next_bytes(self, slot: int) -> bytes:
        if self.kinds[slot] == "body":
            if self.sent[slot] == 0:
                return (
                    b"POST /voice/incoming HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    b"Content-Length: 1000\r\n\r\n"
                )
            return b"a"
        if self.sent[slot] == 0:
            return b"POST /voice/incoming HTTP/1.1\r\n"
        return f"X-Slow-{self.sent[slot]}: {'a' * 20}\r\n".encode()

    def _tick(self) -> None:
        for slot, connection in enumerate(self.slots):
            if self._closed_by_server(connection):
                connection.close()
                self.cut_off[slot] += 1
                self._open(slot)
            elif self.kinds[slot] != "idle":
                with contextlib.suppress(OSError):  # seen as closed on the next tick
                    connection.send(self._next_bytes(slot))
                    self.sent[slot] += 1

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            self._tick()

    def never_cut_off(self) -> dict[str, int]:
        """Return, per kind, how many connections the server has never cut off."""
        never: dict[str, int] = {}
        for kind, count in zip(self.kinds, self.cut_off, strict=True):
            never[kind] = never.get(kind, 0) + (count == 0)
        return never


def timed(send) -> float:
    """Return how long a request took to answer 200; GIVE_UP_SECONDS when it did not."""
    started = time.monotonic()
    try:
        response = send()
    except requests.RequestException:
        return GIVE_UP_SECONDS
    assert response.status_code == 200, response.text[:200]
    return time.monotonic() - started


def signed_incoming_call(server: IvrServer) -> requests.Response:
    """Post `/voice/incoming` for a new emergency call, signed as Twilio signs it."""
    form = {
        "CallSid": "CA" + uuid.uuid4().hex,
        "AccountSid": "AC" + "0" * 32,
        "To": EMERGENCY_NUMBER,
        "From": "+31622222222",
        "CallStatus": "ringing",
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
    }
    headers = {"X-Twilio-Signature": sign(PUBLIC_URL + "/voice/incoming", form)}
    # A new connection each time, as a new call's first webhook may come on.
    return requests.post(
        server.base_url + "/voice/incoming", data=form, headers=headers, timeout=GIVE_UP_SECONDS
    )


def health(server: IvrServer) -> requests.Response:
    return requests.get(server.base_url + "/health", timeout=GIVE_UP_SECONDS)


def answer_times(server: IvrServer, seconds: float) -> dict[str, list[float]]:
    """Time a signed webhook and a health check, in turn, for `seconds`."""
    times: dict[str, list[float]] = {"/voice/incoming": [], "/health": []}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        times["/voice/incoming"].append(timed(lambda: signed_incoming_call(server)))
        times["/health"].append(timed(lambda: health(server)))
        time.sleep(0.25)
    return times


def report(label: str, times: dict[str, list[float]]) -> None:
    """Print the answer times (pytest -s shows them; the README quotes them)."""
    for path, values in times.items():
        values = sorted(values)
        print(
            f"\n{label}: {path} x{len(values)}, median {values[len(values) // 2] * 1000:.0f} ms, "
            f"slowest {values[-1] * 1000:.0f} ms"
        )


@pytest.fixture
def server(tmp_path):
    database_url = os.environ.get("IVR_TEST_DATABASE_URL") or (
        f"sqlite:///{tmp_path / 'slow.sqlite3'}"
    )
    config = write_config(tmp_path, data_dir=f'"{tmp_path / "var"}"')
    running = IvrServer(tmp_path / "serve", database_url, config=config)
    try:
        yield running.start()
    finally:
        running.stop()
        empty_tables(database_url)


def test_signed_webhooks_answer_within_a_second_while_250_slow_clients_hang_on(server):
    quiet = answer_times(server, 3)
    report("no slow clients", quiet)
    with Slowloris(server.port, headers=SLOW_HEADERS, bodies=SLOW_BODIES, idle=IDLE) as attack:
        time.sleep(2)  # every connection accepted, the slow ones a few lines in
        under_attack = answer_times(server, ATTACK_SECONDS)
    report(f"{len(attack.kinds)} slow or idle connections", under_attack)
    for path, values in under_attack.items():
        assert max(values) < ANSWER_SECONDS, (path, [round(value, 2) for value in values])
    # Nobody holds a connection for ever: each one was cut off and had to be opened again.
    assert attack.never_cut_off() == {"headers": 0, "body": 0, "idle": 0}


# ---------------------------------------------------------------- the admission, on its own


def echo_form(environ, start_response):
    """A WSGI app that answers with the body it was given."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


class TrickledBody(io.RawIOBase):
    """A request body that arrives a byte a second."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        gevent.sleep(1)
        buffer[0] = ord("a")
        return 1


def test_a_whole_body_reaches_the_app():
    client = Client(
        WholeRequests(echo_form, places=2, support_places=1, read_seconds=1, max_bytes=1024)
    )
    response = client.post("/voice/incoming", data={"CallSid": "CA1", "Digits": "1"})
    assert response.status_code == 200
    assert response.get_data() == b"CallSid=CA1&Digits=1"


def test_a_body_that_does_not_arrive_in_time_is_answered_408_without_the_app():
    called = []

    def app(environ, start_response):
        called.append(environ)
        return echo_form(environ, start_response)

    admission = WholeRequests(app, places=2, support_places=1, read_seconds=0.2, max_bytes=1024)
    environ = EnvironBuilder(method="POST", content_length=100).get_environ()
    environ["wsgi.input"] = TrickledBody()
    started = time.monotonic()
    _body, status, _headers = run_wsgi_app(admission, environ)
    assert status.startswith("408")
    assert time.monotonic() - started < 1
    assert called == []


def test_a_body_over_the_limit_is_refused_413():
    client = Client(
        WholeRequests(echo_form, places=2, support_places=1, read_seconds=1, max_bytes=1024)
    )
    assert client.post("/voice/incoming", data=b"a" * 2000).status_code == 413


def test_only_a_few_requests_are_inside_the_app_at_once():
    inside = []
    most = []

    def app(environ, start_response):
        inside.append(1)
        most.append(len(inside))
        gevent.sleep(0.01)  # the database, say: other greenlets run meanwhile
        inside.pop()
        return echo_form(environ, start_response)

    admission = WholeRequests(app, places=3, support_places=1, read_seconds=1, max_bytes=1024)
    requests_ = [gevent.spawn(Client(admission).get, "/health") for _ in range(12)]
    gevent.joinall(requests_, raise_error=True)
    assert all(request.value.status_code == 200 for request in requests_)
    assert max(most) == 3
