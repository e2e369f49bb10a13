import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import ivr.models  # noqa: F401  (registers the telephone side's tables)
import tickets.models  # noqa: F401
from ivr.schema import upgrade_database
from tickets.db import Base


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
    assert heads == {"0007_urgent_lock"}
