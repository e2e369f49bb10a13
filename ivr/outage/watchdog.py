"""Cut off database calls that outlive their deadline, so a hung server cannot hold a caller.

PostgreSQL's `statement_timeout` is enforced by the server, and a TCP user timeout only fires
when the network stops acknowledging. A server that is alive for TCP but does not answer
(stopped, swapped out, a stalled proxy in between) would keep a webhook waiting forever. The
watchdog here shuts down the socket of any statement or ping that runs past its deadline:
the driver then fails at once with a disconnect, and the outage handling serves the caller.
It holds connections' deadlines only, never call state.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import socket
import threading
import time

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

# Extra time the server's own statement_timeout gets to cancel a slow statement cleanly first.
SERVER_GRACE_SECONDS = 0.25
# A ping is one round trip; a healthy server answers in milliseconds.
PING_SECONDS = 0.25


def _cut(fd: int) -> None:
    """Shut down the socket behind `fd` (without closing the descriptor its owner holds)."""
    try:
        duplicate = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    with duplicate, contextlib.suppress(OSError):
        duplicate.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """One thread per process that cuts the sockets of database calls past their deadline."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._armed: dict[int, int] = {}  # token -> socket descriptor
        self._queue: list[tuple[float, int]] = []  # (deadline, token)
        self._tokens = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def arm(self, fd: int, seconds: float) -> int:
        """Watch `fd` for `seconds`; return the token that disarms it."""
        with self._condition:
            self._ensure_thread()
            token = next(self._tokens)
            self._armed[token] = fd
            heapq.heappush(self._queue, (time.monotonic() + seconds, token))
            # The thread sleeps until the earliest deadline; waking it for every statement
            # (each one a GIL hand-off) is only needed when this one is now the earliest.
            if self._queue[0][1] == token:
                self._condition.notify()
            return token

    def disarm(self, token: int | None) -> None:
        """Stop watching; the call finished in time."""
        if token is None:
            return
        with self._condition:
            self._armed.pop(token, None)

    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():  # forked: the parent's thread did not come along
            self._pid, self._thread = os.getpid(), None
            self._armed.clear()
            self._queue.clear()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._condition:
            while True:
                while self._queue and self._queue[0][1] not in self._armed:
                    heapq.heappop(self._queue)  # finished in time
                if not self._queue:
                    self._condition.wait()
                    continue
                deadline, token = self._queue[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                heapq.heappop(self._queue)
                fd = self._armed.pop(token)
                log.error("database call past its deadline: cutting the connection")
                _cut(fd)


watchdog = Watchdog()


def _socket_of(dbapi_connection) -> int | None:
    """Return the socket descriptor of a psycopg connection, None when there is none."""
    try:
        return dbapi_connection.pgconn.socket
    except Exception:  # noqa: BLE001 - a closed or odd connection simply is not watched
        return None


def watch_engine(engine: Engine, *, statement_seconds: float) -> None:
    """Give every statement and ping of a PostgreSQL engine a deadline."""
    if engine.dialect.name != "postgresql":
        return
    statement_deadline = statement_seconds + SERVER_GRACE_SECONDS

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn, _cursor, _statement, _parameters, _context, _executemany) -> None:
        fd = _socket_of(conn.connection.dbapi_connection)
        if fd is not None:
            conn.info["deadline_token"] = watchdog.arm(fd, statement_deadline)

    @event.listens_for(engine, "after_cursor_execute")
    def _disarm(conn, _cursor, _statement, _parameters, _context, _executemany) -> None:
        watchdog.disarm(conn.info.pop("deadline_token", None))

    @event.listens_for(engine, "handle_error")
    def _disarm_on_error(context) -> None:
        if context.connection is not None:
            watchdog.disarm(context.connection.info.pop("deadline_token", None))

    dialect = engine.dialect
    ping = dialect.do_ping

    def do_ping_with_deadline(dbapi_connection) -> bool:
        fd = _socket_of(dbapi_connection)
        token = watchdog.arm(fd, PING_SECONDS) if fd is not None else None
        try:
            return ping(dbapi_connection)
        finally:
            watchdog.disarm(token)

    # The pool pings a connection before lending it; SQLAlchemy has no event around that.
    dialect.do_ping = do_ping_with_deadline
