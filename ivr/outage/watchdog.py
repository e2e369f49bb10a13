"""Cut off database calls that outlive their deadline, so a hung server cannot hold a caller.

PostgreSQL's `statement_timeout` is enforced by the server, and a TCP user timeout only fires
when the network stops acknowledging. A server that is alive for TCP but does not answer
(stopped, swapped out, a stalled proxy in between) would keep a webhook waiting forever. The
watchdog here shuts down the socket of any statement or ping that runs past its deadline:
the driver then fails at once with a disconnect, and the outage handling serves the caller.
It holds connections' deadlines only, never call state.

Under `ivr serve` the watchdog is a greenlet on the worker's event loop, and so is the reader
of each answer: when CPU work holds the loop (a page of 500 tickets being rendered, say), an
answer can arrive in time and still wait to be read past its deadline. Such a server is not
hung, so before cutting, the watchdog looks whether the answer is there and, if so, gives its
reader more time.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable

from gevent.monkey import get_original
from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

# Extra time the server's own statement_timeout gets to cancel a slow statement cleanly first.
SERVER_GRACE_SECONDS = 0.25
# A ping is one round trip; a healthy server answers in milliseconds.
PING_SECONDS = 0.25
# An answer that arrived but was not read yet is looked at again this often, for at most this
# long past its deadline (a reader held up that long is no longer waiting for the database).
RECHECK_SECONDS = 0.05
MOST_EXTRA_SECONDS = 10.0
# The operating system's poll(), not the cooperative one gevent puts in its place: the
# watchdog asks without waiting, and poll() takes any descriptor number (select() not >1023).
_poll = get_original("select", "poll")


def _answer_waiting(fd: int) -> bool:
    """Return whether `fd` has something to read: the server answered (or hung up)."""
    try:
        poller = _poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return False


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
        # token -> (socket descriptor, whether it still belongs to the watched connection,
        # the latest moment an unread answer may wait until)
        self._armed: dict[int, tuple[int, Callable[[], bool] | None, float]] = {}
        self._queue: list[tuple[float, int]] = []  # (deadline, token)
        self._tokens = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def arm(self, fd: int, seconds: float, *, still_ours: Callable[[], bool] | None = None) -> int:
        """Watch `fd` for `seconds`; return the token that disarms it.

        `still_ours` answers, at the deadline, whether `fd` is still the watched connection's
        socket: once that connection is closed, the number may belong to another socket.
        """
        with self._condition:
            self._ensure_thread()
            token = next(self._tokens)
            deadline = time.monotonic() + seconds
            self._armed[token] = (fd, still_ours, deadline + MOST_EXTRA_SECONDS)
            heapq.heappush(self._queue, (deadline, token))
            # The thread sleeps until the earliest deadline; waking it for every statement
            # (each one a GIL hand-off) is only needed when this one is now the earliest.
            if self._queue[0][1] == token:
                self._condition.notify()
            return token

    def disarm(self, token: int | None) -> None:
        """Stop watching; the call finished in time.

        Without the lock (one dict operation needs none): a reader that got its answer must
        never wait for the watchdog, which may be about to look at this very call. Under
        gevent, a disarm waiting for the lock let the watchdog cut a call already answered.
        """
        if token is not None:
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
                self._expire(token)

    def _expire(self, token: int) -> None:
        """Act on a call past its deadline: cut it, unless its answer only waits to be read."""
        entry = self._armed.get(token)
        if entry is None:
            return  # disarmed a moment ago
        fd, still_ours, latest = entry
        if still_ours is not None and not still_ours():
            self._armed.pop(token, None)
            log.warning("database call past its deadline on a closed connection")
            return
        now = time.monotonic()
        if now < latest and _answer_waiting(fd):
            heapq.heappush(self._queue, (now + RECHECK_SECONDS, token))
            return
        if self._armed.pop(token, None) is None:
            return
        log.error("database call past its deadline: cutting the connection")
        _cut(fd)


watchdog = Watchdog()


def _socket_of(dbapi_connection) -> int | None:
    """Return the socket descriptor of a psycopg connection, None when there is none."""
    try:
        return dbapi_connection.pgconn.socket
    except Exception:  # noqa: BLE001 - a closed or odd connection simply is not watched
        return None


def arm_connection(dbapi_connection, seconds: float) -> int | None:
    """Watch a psycopg connection's socket for `seconds`; None when it has none."""
    fd = _socket_of(dbapi_connection)
    if fd is None:
        return None

    def still_ours() -> bool:
        return not dbapi_connection.closed and _socket_of(dbapi_connection) == fd

    return watchdog.arm(fd, seconds, still_ours=still_ours)


def watch_engine(engine: Engine, *, statement_seconds: float) -> None:
    """Give every statement and ping of a PostgreSQL engine a deadline."""
    if engine.dialect.name != "postgresql":
        return
    statement_deadline = statement_seconds + SERVER_GRACE_SECONDS

    @event.listens_for(engine, "before_cursor_execute")
    def _arm_statement(conn, _cursor, _statement, _parameters, _context, _executemany) -> None:
        token = arm_connection(conn.connection.dbapi_connection, statement_deadline)
        if token is not None:
            conn.info["deadline_token"] = token

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
        token = arm_connection(dbapi_connection, PING_SECONDS)
        try:
            return ping(dbapi_connection)
        finally:
            watchdog.disarm(token)

    # The pool pings a connection before lending it; SQLAlchemy has no event around that.
    dialect.do_ping = do_ping_with_deadline
