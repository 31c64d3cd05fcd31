"""Engine and sessions: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL via asyncpg."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

# How long a writer waits for SQLite's lock before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 15_000


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Reports scan large indexes: a 64 MB page cache, temporary b-trees in memory.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _sqlite_from_hint(self: SQLiteCompiler, table: Any, text: str | None) -> str | None:
    return text


# SQLite understands `FROM appeals INDEXED BY ix_...`, but SQLAlchemy's SQLite compiler
# drops table hints. The statistics queries name their covering index this way, because
# with ANALYZE statistics SQLite would otherwise pick a skip-scan that reads every row
# (3 s instead of 0.2 s over a million appeals; bench/stats_annual.py). Only statements
# that ask for a hint with `with_hint(..., dialect_name="sqlite")` are affected.
SQLiteCompiler.get_from_hint_text = _sqlite_from_hint  # type: ignore[method-assign,assignment]


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for the configured URL, with SQLite tuned for one process."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
