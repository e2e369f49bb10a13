"""Database wiring shared by both sides: the declarative base, time columns and sessions."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from flask import g, has_request_context
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


Row = TypeVar("Row")


def insert_or_get(
    session: Session,
    *,
    find: Callable[[], Row | None],
    add: Callable[[], Row],
    look_first: bool = True,
) -> Row:
    """Return the row `find` finds, else add one with `add`; once per unique key.

    Twilio retries webhooks, at times to another worker at the same moment. The new row is
    written in a savepoint: when a concurrent request wrote the same unique key (a CallSid)
    first, the savepoint is rolled back and the row that won is returned. Nothing is committed
    here; the request that owns the unit of work does that. Without `look_first` (the caller
    knows the row is new), only the unique key finds an existing row.
    """
    existing = find() if look_first else None
    if existing is not None:
        return existing
    try:
        with savepoint(session):
            row = add()
    except IntegrityError:
        existing = find()
        if existing is None:
            raise
        return existing
    return row


def savepoint(session: Session):
    """Return a savepoint of the session's transaction (a context manager, `begin_nested`).

    On SQLite, pysqlite begins no transaction for a SAVEPOINT, so SQLite would start a
    deferred one that a concurrent writer makes fail at its first write ('database is
    locked', without waiting). The transaction is made a writing one first: it then waits
    for the write lock like any other write.
    """
    connection = session.connection()
    if (
        connection.dialect.name == "sqlite"
        and not connection.connection.driver_connection.in_transaction
    ):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    return session.begin_nested()


def insert_unless_present(
    session: Session, model: type[Row], values: dict, *, key: str
) -> Row | None:
    """Insert a row unless one with the same unique `key` exists; return the new row, else None.

    One statement, `INSERT ... ON CONFLICT DO NOTHING RETURNING`, on PostgreSQL and SQLite
    alike: no look first, nothing committed, and an insert of the same key by a concurrent
    request waits for that request's transaction instead of failing this one.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(values).on_conflict_do_nothing(index_elements=[key])
    return session.scalars(statement.returning(model)).one_or_none()


@contextmanager
def work() -> Iterator[None]:
    """Make a block one unit of work: what it wrote is committed once it ends without an error.

    Services only write (flush), so a change and what goes with it (its audit row, its
    outbox messages) are committed together here; an exception commits nothing (the request's
    or command's session is rolled back and removed).
    """
    yield
    db.session.commit()


def unit_of_work(view: Callable[..., Row]) -> Callable[..., Row]:
    """Declare a view or command that owns its unit of work: it commits once it has returned,
    whatever it answers (see `work`)."""

    @functools.wraps(view)
    def done(*args, **kwargs) -> Row:
        with work():
            return view(*args, **kwargs)

    return done


# SQLSTATEs of a server that refuses or dropped the connection, not of one failed statement:
# class 08 (connection exception), 28 (authorisation), a database that is not there, too many
# connections, and the server shutting down, crashing or starting up (57P01-57P05).
CONNECTION_CLASSES = ("08", "28")
CONNECTION_STATES = frozenset({"3D000", "53300", "57P01", "57P02", "57P03", "57P04", "57P05"})
# SQLite's primary result codes for a statement that waited for a lock or was interrupted.
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_INTERRUPT = 5, 6, 9


def _statement_failed(orig: BaseException | None) -> bool:
    """Return whether a driver error is about one statement while its connection stands.

    PostgreSQL names every error a server sent with a SQLSTATE (a cancelled statement 57014, a
    lock not available 55P03, a serialization failure 40001); an error without one never
    reached a server. SQLite gives a result code; only waiting on a lock is a statement's.
    """
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED, SQLITE_INTERRUPT)
    state = getattr(orig, "sqlstate", None)
    if not state:
        return False
    return state[:2] not in CONNECTION_CLASSES and state not in CONNECTION_STATES


def is_database_unreachable(exc: BaseException) -> bool:
    """Return whether an error means the database itself is away, not that one statement failed.

    Away: connecting failed, the connection was lost or cut (also by the deadline watchdog),
    the server is shutting down, or no pooled connection came free in time. A statement the
    server cancelled (statement_timeout), or one that waited too long for a lock, fails its
    own request only.
    """
    if isinstance(exc, PoolTimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    return isinstance(exc, OperationalError) and not _statement_failed(exc.orig)


def is_database_busy(exc: BaseException) -> bool:
    """Return whether the database is there but did not serve this request: try again soon.

    A statement cancelled or refused by the server (its timeout, a lock, a conflict), a
    locked SQLite file, or no connection free in the pool.
    """
    if isinstance(exc, PoolTimeoutError):
        return True
    return (
        isinstance(exc, OperationalError)
        and not exc.connection_invalidated
        and _statement_failed(exc.orig)
    )


class UTCDateTime(TypeDecorator):
    """Store aware datetimes as UTC and always read them back aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every model, with stable constraint names for migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def make_engine(
    url: str,
    *,
    timeout_seconds: float = 2.0,
    limit_statements: bool = True,
    pool_size: int = 5,
    max_overflow: int = 5,
) -> Engine:
    """Create an engine that fails fast when the database is unreachable.

    With `limit_statements`, PostgreSQL also cancels any statement running longer than twice
    the timeout; migrations turn that off, since building an index on a big table takes longer.
    """
    pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": timeout_seconds}
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": 15, "check_same_thread": False},
            hide_parameters=True,
            **({} if _in_memory(url) else pool),
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.close()

        return engine
    connect_timeout = max(1, int(round(timeout_seconds)))
    options = {}
    if limit_statements:
        options["options"] = f"-c statement_timeout={int(timeout_seconds * 1000) * 2}"
    engine = create_engine(
        url,
        pool_pre_ping=True,
        # Error messages and logs must not carry values such as PIN hashes or phone numbers.
        hide_parameters=True,
        **pool,
        connect_args={"connect_timeout": connect_timeout, **options},
    )
    _ping_once_per_request(engine)
    return engine


def make_read_only_engine(url: str, *, timeout_seconds: float = 5.0) -> Engine:
    """Create an engine that can only read: for checks that must change nothing.

    A SQLite file is opened read-only (never created: a missing file raises
    FileNotFoundError); PostgreSQL refuses every write in its transactions.
    """
    parts = make_url(url)
    if parts.get_backend_name() == "sqlite":
        path = Path(parts.database or "")
        if not parts.database or not path.is_file():
            raise FileNotFoundError(f"no SQLite database at {path}")
        read_only = f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true"
        return create_engine(read_only, poolclass=NullPool, hide_parameters=True)
    return create_engine(
        url,
        poolclass=NullPool,
        hide_parameters=True,
        connect_args={
            "connect_timeout": max(1, int(round(timeout_seconds))),
            "options": "-c default_transaction_read_only=on",
        },
    )


def _in_memory(url: str) -> bool:
    """Return whether a URL names an in-memory SQLite database (one per connection pool)."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _ping_once_per_request(engine: Engine) -> None:
    """Ping a pooled connection before its first use in a request, not before every transaction.

    The pool pings a connection before lending it, to find one that died while it sat idle (a
    restarted or hung server). A webhook may commit more than once, and each commit hands the
    connection back; lent again within the same request, it answered a moment ago, so the
    round trip is skipped. A new request pings again, outside a request every lending does.
    """
    ping = engine.dialect.do_ping

    @event.listens_for(engine, "checkin")
    def _answered_in_this_request(dbapi_connection, _record) -> None:
        if dbapi_connection is not None and has_request_context():
            g.setdefault("database_connections_used", set()).add(dbapi_connection)

    def do_ping(dbapi_connection) -> bool:
        if has_request_context() and dbapi_connection in g.get("database_connections_used", ()):
            return True
        return ping(dbapi_connection)

    engine.dialect.do_ping = do_ping


# Whether the current request is support traffic (its own engine); per greenlet under gevent.
_serving_support: ContextVar[bool] = ContextVar("serving_support", default=False)


class Database:
    """Engines and request-scoped sessions, bound to a Flask app with `init_app`.

    A served app has two engines over the one database, each with its own pool: the webhooks'
    (also used outside requests, by the background loops and commands) and support's, for the
    requests `is_support_request` picks (dashboard, API). Support traffic can then never take
    a connection a caller's webhook needs. `session` is the current request's session.
    """

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.support_engine: Engine | None = None
        self.session_factory: sessionmaker[Session] | None = None
        self._sessions: scoped_session[Session] | None = None
        self._support_sessions: scoped_session[Session] | None = None
        self._is_support_request: Callable[[], bool] | None = None

    @property
    def session(self) -> scoped_session[Session]:
        """Return the session registry of the current request's kind (webhooks outside one)."""
        if _serving_support.get() and self._support_sessions is not None:
            return self._support_sessions
        return self._sessions

    def configure(
        self, url: str, *, timeout_seconds: float = 2.0, limit_statements: bool = True
    ) -> None:
        """Create the engine and session registry for a database URL."""
        self.dispose_engines()
        self.engine = make_engine(
            url, timeout_seconds=timeout_seconds, limit_statements=limit_statements
        )
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        self._sessions = scoped_session(self.session_factory)

    def init_app(
        self,
        app,
        url: str,
        *,
        timeout_seconds: float = 2.0,
        support_connections: int = 0,
        is_support_request: Callable[[], bool] | None = None,
    ) -> None:
        """Bind to a Flask app: configure, and drop the sessions at the end of each request.

        With `is_support_request`, the requests it picks get an engine of their own, whose
        pool lends `support_connections` (and as many again for a moment).
        """
        self.configure(url, timeout_seconds=timeout_seconds)
        if is_support_request is not None and not _in_memory(url):
            self.support_engine = make_engine(
                url,
                timeout_seconds=timeout_seconds,
                pool_size=support_connections,
                max_overflow=support_connections,
            )
            support = sessionmaker(self.support_engine, expire_on_commit=False)
            self._support_sessions = scoped_session(support)
            self._is_support_request = is_support_request

            # Decided once per request (`session` is read dozens of times in a webhook).
            @app.before_request
            def _choose_engine() -> None:
                _serving_support.set(is_support_request())

            @app.teardown_request
            def _back_to_the_webhooks(_exc) -> None:
                _serving_support.set(False)

        app.extensions["database"] = self

        @app.teardown_appcontext
        def _remove_session(_exc) -> None:
            for sessions in (self._sessions, self._support_sessions):
                if sessions is not None:
                    sessions.remove()

    def engines(self) -> list[Engine]:
        """Return every engine in use: the webhooks', then support's."""
        return [engine for engine in (self.engine, self.support_engine) if engine is not None]

    def dispose_engines(self) -> None:
        """Close every pooled connection and forget the engines (before configuring anew)."""
        for sessions in (self._sessions, self._support_sessions):
            if sessions is not None:
                sessions.remove()
        for engine in self.engines():
            engine.dispose()
        self.support_engine = None
        self._support_sessions = None
        self._is_support_request = None

    def dispose(self) -> None:
        """Close every pooled connection."""
        for sessions in (self._sessions, self._support_sessions):
            if sessions is not None:
                sessions.remove()
        for engine in self.engines():
            engine.dispose()


db = Database()
