"""Alembic environment for SQLite (batch mode) and PostgreSQL, async engines.

`bot.core.migrate` hands in a live connection through `config.attributes["connection"]`; the
`alembic` command line builds its own engine from the bot's configuration loader.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from bot.core import config as bot_config
from bot.core.db import create_engine
from models import Base

target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    settings = bot_config.load()
    engine = create_engine(settings.database.url)
    async with engine.connect() as conn:
        await conn.run_sync(_configure)
        await conn.commit()
    await engine.dispose()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `sezim-bot db upgrade`")
run_migrations_online()
