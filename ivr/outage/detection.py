"""Notice that the database is unreachable: fail connections fast, remember it a moment.

Connections to PostgreSQL are guarded so an unreachable server fails within
`database_timeout_seconds` (a protocol-level probe before each new connection, a TCP user
timeout on open ones, the deadline watchdog for a server that keeps the connection but never
answers). A per-process hint remembers for `database_retry_seconds` that the database just
failed, so the next webhooks do not wait for it again; it holds no call state.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ivr.outage.watchdog import watch_engine

# PostgreSQL's SSLRequest: any live server answers it with one byte, before authentication.
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


class DatabaseHealth:
    """This process's hint that the database failed a moment ago; holds no call state."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        self._down_until = 0.0
        self._lock = threading.Lock()

    def looks_down(self) -> bool:
        """Return whether the database failed less than `retry_after` seconds ago."""
        return time.monotonic() < self._down_until

    def mark_down(self) -> None:
        """Remember that the database just failed."""
        with self._lock:
            self._down_until = time.monotonic() + self.retry_after

    def mark_up(self) -> None:
        """Forget an earlier failure: the database answered."""
        with self._lock:
            self._down_until = 0.0


def probe_postgres(host: str, port: int, timeout: float) -> None:
    """Raise OSError unless a PostgreSQL server answers at host:port within `timeout`."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        sock.sendall(_SSL_REQUEST)
        try:
            answer = sock.recv(1)
        except TimeoutError:
            # Under gevent the time-out can fire first when CPU work held the event loop
            # while the answer arrived: look once more, without waiting.
            sock.setblocking(False)
            try:
                answer = sock.recv(1)
            except BlockingIOError:
                raise TimeoutError(f"no PostgreSQL answer from {host}:{port}") from None
    if answer not in (b"S", b"N"):
        raise OSError(f"no PostgreSQL answer from {host}:{port}")


def guard_connections(engine: Engine, timeout: float) -> None:
    """Make new and open PostgreSQL connections fail within `timeout` when the server is gone.

    psycopg never waits less than 2 s to connect; the probe answers first. An open connection
    whose peer vanished would wait for TCP retransmissions; `tcp_user_timeout` cuts that short.
    A server that keeps the connection but never answers is cut off by the deadline watchdog
    (`ivr.outage.watchdog`): pings after 0.25 s, statements shortly after the server's own
    statement_timeout (twice `timeout`).
    """
    if engine.dialect.name != "postgresql":
        return
    watch_engine(engine, statement_seconds=2 * timeout)
    host = engine.url.host
    port = engine.url.port or 5432
    probe = bool(host) and not host.startswith("/") and "," not in host

    @event.listens_for(engine, "do_connect")
    def _fail_fast(_dialect, _record, _cargs, cparams) -> None:
        cparams.setdefault("tcp_user_timeout", int(timeout * 1000))
        cparams.setdefault("keepalives", 1)
        cparams.setdefault("keepalives_idle", 5)
        cparams.setdefault("keepalives_interval", 1)
        cparams.setdefault("keepalives_count", 3)
        if probe:
            try:
                probe_postgres(host, port, timeout)
            except OSError as exc:
                raise psycopg.OperationalError(f"database unreachable ({exc})") from None
