import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from app.schema import alembic_config, register_models, upgrade_database
from core.db import Base

register_models()  # every table, for the clean-up between tests


def latest_migration() -> str:
    """Return the one head of the migrations this version ships."""
    [head] = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    return head


@pytest.fixture
def migrated_engine(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def test_migrations_build_exactly_the_schema_the_models_describe(migrated_engine):
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrading_an_up_to_date_database_changes_nothing(database_url, migrated_engine):
    upgrade_database(database_url)
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(connection)
        heads = set(context.get_current_heads())
    assert heads == {latest_migration()}


def test_upgrading_a_database_that_holds_data_keeps_it(tmp_path):
    """Each migration must work on a live database, not only on an empty one."""
    from alembic import command
    from sqlalchemy import text

    from app.schema import alembic_config

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    config = alembic_config(url)
    command.upgrade(config, "0004_call_contact")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("PRAGMA foreign_keys=ON"))
        connection.execute(
            text(
                "INSERT INTO staff_users (id, email, name, role, password_hash, active,"
                " failed_logins, created_at) VALUES (1, 'a@otys.test', 'A', 'agent', 'x', 1, 0,"
                " '2026-11-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO api_tokens (staff_id, token_hash, created_at)"
                " VALUES (1, 'h', '2026-11-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO organizations (id, name, created_at) VALUES (1, 'Acme', '2026-11-01')"
            )
        )
    engine.dispose()
    upgrade_database(url)  # the service's own upgrade, with foreign keys on
    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT email, phone FROM staff_users")).all() == [
            ("a@otys.test", None)
        ]
        assert connection.execute(text("SELECT count(*) FROM api_tokens")).scalar() == 1
        context = MigrationContext.configure(connection)
        assert set(context.get_current_heads()) == {latest_migration()}
    engine.dispose()
