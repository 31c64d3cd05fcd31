"""SQLite on the event loop's thread (bot/sqlite_inloop.py): a busy database is waited for
without blocking the loop, only where a retry is safe, and not forever."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import sqlite_inloop
from tests.helpers import LockHolder


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "t.db")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def holder(db: str) -> Iterator[LockHolder]:
    h = LockHolder(db, then="INSERT INTO t VALUES (99)")
    h.start()
    yield h
    h.join()


async def test_a_write_waits_for_the_lock_then_succeeds_once(db: str, holder: LockHolder) -> None:
    conn = await sqlite_inloop.connect(db, timeout=10)
    writing = asyncio.create_task(conn.execute("INSERT INTO t VALUES (1)"))
    await asyncio.sleep(0.2)
    assert not writing.done()
    holder.release()
    await asyncio.wait_for(writing, 10)
    await conn.commit()
    cursor = await conn.execute("SELECT x FROM t ORDER BY x")
    assert [r[0] for r in await cursor.fetchall()] == [1, 99]  # hers once, the other's kept
    await conn.close()


async def test_a_lock_held_past_the_timeout_is_an_error_not_a_hang(
    db: str, holder: LockHolder
) -> None:
    conn = await sqlite_inloop.connect(db, timeout=0.3)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await asyncio.wait_for(conn.execute("INSERT INTO t VALUES (1)"), 5)
    assert not conn.in_transaction  # nothing half-done left behind
    await conn.close()


async def test_a_transaction_that_already_wrote_is_never_replayed(db: str) -> None:
    """Once a transaction holds the write lock, a later failure is raised, not retried:
    replaying one statement of a transaction could apply it twice."""
    conn = await sqlite_inloop.connect(db, timeout=5)
    await conn.execute("INSERT INTO t VALUES (1)")
    assert conn.in_transaction
    calls = 0

    def busy() -> None:
        nonlocal calls
        calls += 1
        error = sqlite3.OperationalError("database is locked")
        error.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
        raise error

    with pytest.raises(sqlite3.OperationalError):
        await conn._run(busy)
    assert calls == 1
    await conn.rollback()
    await conn.close()
