"""Engine and sessions: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL via asyncpg."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
import itertools
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

# How long a writer waits for SQLite's lock before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 15_000


def sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry, *,
                    busy_timeout_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Reports scan large indexes: a 64 MB page cache, temporary b-trees in memory.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for the configured URL, with SQLite tuned for one process (WAL,
    foreign keys, a busy timeout) on aiosqlite."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            # Updates of different chats are handled at the same time; SQLite still writes
            # one at a time (WAL), readers do not wait.
            pool_size=20, max_overflow=20,
        )
        event.listen(engine.sync_engine, "connect", functools.partial(
            sqlite_pragmas, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS))
        return engine
    return create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=20,
                               max_overflow=20)


# The priority of the work in progress (lower first); the runner sets 0 for urgent updates.
work_priority: contextvars.ContextVar[int] = contextvars.ContextVar("work_priority", default=1)


class PriorityLock:
    """A lock whose waiters are served most urgent first, then first come first served."""

    def __init__(self) -> None:
        self._locked = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._sequence = itertools.count()

    async def acquire(self) -> None:
        if not self._locked and not self._waiters:
            self._locked = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (work_priority.get(), next(self._sequence), waiter)
        heapq.heappush(self._waiters, entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # it was handed over just as we were cancelled
            else:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)  # ownership passes on; stays locked
                return
        self._locked = False


class _SerializedTransaction:
    """A write transaction that waits its turn in this process instead of in SQLite."""

    def __init__(self, transaction: AsyncSessionTransaction, lock: PriorityLock) -> None:
        self._transaction = transaction
        self._lock = lock

    async def __aenter__(self) -> AsyncSessionTransaction:
        await self._lock.acquire()
        try:
            return await self._transaction.__aenter__()
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self._transaction.__aexit__(*exc)
        finally:
            self._lock.release()


class SezimSession(AsyncSession):
    """On SQLite, write transactions (`session.begin()`) take turns on an asyncio lock.

    SQLite lets one writer in at a time; the others would wait in its busy handler, which
    sleeps in steps of up to 100 ms and made the slowest updates ten times slower than the
    median under load (bench/load.py). Taking turns here costs nothing. Transactions must
    not wait on Telegram while they hold the turn; none do.
    """

    def begin(self) -> Any:
        lock = self.info.get("write_lock")
        transaction = super().begin()
        return transaction if lock is None else _SerializedTransaction(transaction, lock)


def sessionmaker(engine: AsyncEngine, *,
                 write_lock: PriorityLock | None = None) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`; on SQLite, their writes take turns on `write_lock` (one of
    its own unless given: engines on the same file must share theirs)."""
    info: dict[str, Any] = {}
    if engine.dialect.name == "sqlite":
        info["write_lock"] = write_lock or PriorityLock()
    return async_sessionmaker(engine, expire_on_commit=False, info=info,
                              class_=SezimSession)
