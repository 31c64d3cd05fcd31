"""Shared fixtures: the real bot over HTTP against the loopback emulator, real databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.clock import FakeClock
from bot.dev.harness import Harness
from tests.pg import postgres_server


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'sezim.db'}"


@pytest.fixture
def clock() -> FakeClock:
    # A fixed Tuesday, 10:00 in Bishkek: the office is open and a call in one hour or three
    # can be offered, whenever the suite runs.
    return FakeClock(datetime(2026, 12, 1, 4, 0, tzinfo=UTC))


@pytest.fixture
async def harness(db_url: str, clock: FakeClock) -> AsyncIterator[Harness]:
    h = Harness(db_url, clock=clock)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


# ---------------------------------------------------------------------- PostgreSQL

@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A real PostgreSQL server for the whole session (skipped where none is installed,
    except under CI=true, where a missing server is a failure)."""
    try:
        with postgres_server() as url:
            yield url
    except FileNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
async def pg_url(pg_server: str) -> AsyncIterator[str]:
    """A fresh, empty database on the session's server."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = pg_server.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield pg_server.rsplit("/", 1)[0] + f"/{name}"
