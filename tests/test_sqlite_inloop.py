"""SQLite on the event loop's thread (bot/sqlite_inloop.py, and the sessions of
bot/sqlite_session.py): a busy database is waited for without blocking the loop, only where
a retry is safe, and not forever."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import sqlite_inloop
from bot.db import create_engine, sessionmaker
from bot.migrate import upgrade
from models import ProcessedUpdate
from tests.helpers import LockHolder, longest_stall


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


# ---------------------------------------------------------------- the sessions on it
# bot/sqlite_session.py: the bot's sessions run SQLAlchemy synchronously on the loop's
# thread; the same promises hold for them.


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    await upgrade(engine)
    yield sessionmaker(engine)
    await engine.dispose()


def _path(sessions: async_sessionmaker[AsyncSession]) -> str:
    bind = sessions.kw["sync_engine"]
    return str(bind.url.database)


async def _handled(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    async with sessions() as session:
        return list((await session.scalars(select(ProcessedUpdate.update_id)
                                           .order_by(ProcessedUpdate.update_id))).all())


async def _record(sessions: async_sessionmaker[AsyncSession], update_id: int) -> None:
    async with sessions() as session, session.begin():
        session.add(ProcessedUpdate(update_id=update_id, at=datetime(2026, 1, 1)))


async def test_a_session_waiting_for_the_lock_keeps_the_loop_going_and_writes_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    holder = LockHolder(_path(sessions), then="INSERT INTO processed_updates (update_id, at) "
                                            "VALUES (99, '2026-01-01 00:00:00')")
    await asyncio.to_thread(holder.start)
    try:
        writing = asyncio.create_task(_record(sessions, 1))
        assert await longest_stall(30) < 0.2
        assert not writing.done()  # waiting, not failed
        assert await _handled(sessions) == []  # readers go on meanwhile
        holder.release()
        await asyncio.wait_for(writing, 10)
    finally:
        await asyncio.to_thread(holder.join)
    assert await _handled(sessions) == [1, 99]  # hers once, the other's kept


async def test_a_session_gives_up_after_the_timeout_and_frees_the_turn(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    holder = LockHolder(_path(sessions))
    await asyncio.to_thread(holder.start)
    try:
        writing = sessions()
        writing.busy_timeout = 0.3  # type: ignore[attr-defined]
        with pytest.raises(OperationalError, match="locked"):
            async with writing, writing.begin():
                writing.add(ProcessedUpdate(update_id=1, at=datetime(2026, 1, 1)))
    finally:
        await asyncio.to_thread(holder.join)
    # Nothing half-begun: the next write of this process gets its turn and SQLite's lock.
    await asyncio.wait_for(_record(sessions, 2), 5)
    assert await _handled(sessions) == [2]


async def test_a_failed_transaction_writes_nothing_and_frees_the_turn(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            session.add(ProcessedUpdate(update_id=1, at=datetime(2026, 1, 1)))
            await session.flush()
            session.add(ProcessedUpdate(update_id=1, at=datetime(2026, 1, 1)))
    await asyncio.wait_for(_record(sessions, 2), 5)
    assert await _handled(sessions) == [2]


async def test_statements_on_the_tables_run_in_the_sessions_own_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    table = cast(Table, ProcessedUpdate.__table__)
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            await session.execute(insert(table).values(update_id=1, at=datetime(2026, 1, 1)))
            raise RuntimeError("after the write")
    assert await _handled(sessions) == []  # undone with its transaction
    async with sessions() as session:
        for update_id in (2, 3):  # one session, one transaction after another
            async with session.begin():
                await session.execute(insert(table).values(update_id=update_id,
                                                           at=datetime(2026, 1, 1)))
        found = await session.execute(select(table.c.update_id).order_by(table.c.update_id))
        assert found.scalars().all() == [2, 3]
