"""Migrations: an empty database upgrades to head, and the models match the migrations,
on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

from bot.core import migrate
from bot.core.db import create_engine
from models import Base


def _diff(connection: Connection, metadata: MetaData = Base.metadata) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _check(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            tables = await conn.run_sync(_tables)
            diff = await conn.run_sync(_diff)
        assert set(Base.metadata.tables) <= tables
        assert diff == [], f"models and migrations differ: {diff}"
        # Upgrading again is a no-op (run does it at every start).
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


async def test_sqlite_upgrades_from_empty_and_matches_models(db_url: str) -> None:
    await _check(db_url)


@pytest.mark.postgres
async def test_postgres_upgrades_from_empty_and_matches_models(pg_url: str) -> None:
    await _check(pg_url)


async def test_a_model_change_without_migration_is_caught(db_url: str) -> None:
    """The check above can fail: a column added to the models alone shows up as a diff."""
    from sqlalchemy import Column, Integer

    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine)
        models = MetaData()  # a copy of the models, with one column more
        for table in Base.metadata.sorted_tables:
            table.to_metadata(models)
        models.tables["appeals"].append_column(Column("extra_for_test", Integer))
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff, models)
        assert any("extra_for_test" in str(d) for d in diff)
    finally:
        await engine.dispose()
