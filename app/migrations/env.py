"""Alembic environment: migrate the database the caller configured, one process at a time."""

from alembic import context
from sqlalchemy import text

from app.schema import register_models
from core.db import Base, make_engine

register_models()

# Any fixed number; PostgreSQL serialises concurrent upgrades from several instances on it.
MIGRATION_LOCK = 720_184_900


def run_migrations() -> None:
    """Run the migrations online against the configured URL or connection."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = make_engine(
        config.get_main_option("sqlalchemy.url"), timeout_seconds=10, limit_statements=False
    )
    with engine.connect() as connection:
        _migrate(connection)
    engine.dispose()


def _migrate(connection) -> None:
    is_postgres = connection.dialect.name == "postgresql"
    if is_postgres:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if is_postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()


run_migrations()
