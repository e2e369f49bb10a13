"""Database wiring shared by both sides: the declarative base, time columns and sessions."""

from __future__ import annotations

from collections.abc import Callable
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
    """Return the row `find` finds, else add one with `add` and commit it; once per unique key.

    Twilio retries webhooks, at times to another worker at the same moment. When a concurrent
    request commits the same unique key (a CallSid) first, our commit fails on the unique
    constraint: roll back and return the row that won. Without `look_first` (the caller knows
    the row is new), only that constraint finds an existing row.
    """
    existing = find() if look_first else None
    if existing is not None:
        return existing
    row = add()
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = find()
        if existing is None:
            raise
        return existing
    return row


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


def is_database_unreachable(exc: BaseException) -> bool:
    """Return whether an error means the database itself is away, not that one statement failed."""
    if isinstance(exc, PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return False


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


def make_engine(url: str, *, timeout_seconds: float = 2.0, limit_statements: bool = True) -> Engine:
    """Create an engine that fails fast when the database is unreachable.

    With `limit_statements`, PostgreSQL also cancels any statement running longer than twice
    the timeout; migrations turn that off, since building an index on a big table takes longer.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": 15, "check_same_thread": False},
            hide_parameters=True,
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
        pool_size=5,
        max_overflow=5,
        pool_timeout=timeout_seconds,
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


class Database:
    """Engine and request-scoped session, bound to a Flask app with `init_app`."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session_factory: sessionmaker[Session] | None = None
        self.session: scoped_session[Session] | None = None

    def configure(
        self, url: str, *, timeout_seconds: float = 2.0, limit_statements: bool = True
    ) -> None:
        """Create the engine and session registry for a database URL."""
        if self.engine is not None:
            self.engine.dispose()
        self.engine = make_engine(
            url, timeout_seconds=timeout_seconds, limit_statements=limit_statements
        )
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        self.session = scoped_session(self.session_factory)

    def init_app(self, app, url: str, *, timeout_seconds: float = 2.0) -> None:
        """Bind to a Flask app: configure, and drop the session at the end of each request."""
        self.configure(url, timeout_seconds=timeout_seconds)
        app.extensions["database"] = self

        @app.teardown_appcontext
        def _remove_session(_exc) -> None:
            if self.session is not None:
                self.session.remove()

    def dispose(self) -> None:
        """Close every pooled connection."""
        if self.session is not None:
            self.session.remove()
        if self.engine is not None:
            self.engine.dispose()


db = Database()
