"""SQLite on the event loop's own thread, for SQLAlchemy's aiosqlite dialect.

aiosqlite runs every call (open a cursor, execute, fetch, close, commit) on a thread of
its own and hands the result back to the event loop: four or five thread hand-offs per
statement, each a wake-up of two threads. A statement on a small indexed table takes
SQLite itself a few microseconds, so the hand-offs were most of the bot's database time
(bench/load.py, docs/performance.md). This module offers the part of aiosqlite's
interface that SQLAlchemy's dialect uses, with the calls made directly on the loop's
thread: nothing waits for another thread, and the coroutines finish without suspending.

What it must not do is block the loop. SQLite's own busy handler would sleep on the
loop's thread while another process (a `sezim-bot` command, a backup) holds the write
lock, so the busy timeout is 0 here and a busy database is waited for with
`asyncio.sleep`, letting everything else go on. A statement is only retried where that
is safe: when this connection has not written anything yet in its transaction, the
transaction is rolled back (it holds nothing) and the statement run again. Long reads
(the annual report over a million rows) must not run here either: `bot.db` gives them an
engine on aiosqlite's thread (`BotData.reports`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError

__version__ = "1.0"

# The names SQLAlchemy's adapter copies from the driver module.
DatabaseError = sqlite3.DatabaseError
Error = sqlite3.Error
IntegrityError = sqlite3.IntegrityError
NotSupportedError = sqlite3.NotSupportedError
OperationalError = sqlite3.OperationalError
ProgrammingError = sqlite3.ProgrammingError
sqlite_version = sqlite3.sqlite_version
sqlite_version_info = sqlite3.sqlite_version_info

T = TypeVar("T")

# First waits are short (another writer usually holds the lock for milliseconds).
BACKOFF = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)


def busy(error: BaseException) -> bool:
    """Whether `error` (SQLite's, or SQLAlchemy's around it) says the database is locked."""
    origin = getattr(error, "orig", error)
    if not isinstance(origin, sqlite3.OperationalError):
        return False
    code = getattr(origin, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(origin)


async def wait_busy(call: Callable[[], T], *, timeout: float,
                    safe: Callable[[], bool] = lambda: True) -> T:
    """`call()`, again after an asyncio sleep while SQLite is busy and `safe()` says a new
    try cannot repeat anything; SQLite's error after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        try:
            return call()
        except (SQLAlchemyOperationalError, sqlite3.OperationalError) as error:
            if not busy(error) or not safe() or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
        attempt += 1


class _Thread:
    """SQLAlchemy marks the driver's thread a daemon; there is no thread here."""

    daemon = True


class Cursor:
    def __init__(self, connection: Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        await self._connection._run(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        rows = list(parameters)
        await self._connection._run(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()


class Connection:
    """One sqlite3 connection used from the event loop's thread only."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], timeout: float) -> None:
        self._connector = connector
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._thread = _Thread()
        self._wrote = False  # this transaction holds SQLite's write lock

    def __await__(self) -> Any:
        return self._open().__await__()

    async def _open(self) -> Connection:
        self._conn = await self._retry_plain(self._connector)
        return self

    @property
    def _connection(self) -> sqlite3.Connection | None:  # SQLAlchemy checks it is open
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        assert self._conn is not None
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        assert self._conn is not None
        self._conn.isolation_level = value  # type: ignore[assignment]

    @property
    def in_transaction(self) -> bool:
        return self._conn is not None and self._conn.in_transaction

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    async def _retry_plain(self, call: Callable[[], T]) -> T:
        return await wait_busy(call, timeout=self._timeout)

    async def _run(self, call: Callable[[], T]) -> T:
        """Run one statement; wait out a busy database without blocking the loop."""
        conn = self._live()
        deadline = time.monotonic() + self._timeout
        attempt = 0
        while True:
            was_writer = self._wrote
            try:
                result = call()
            except sqlite3.OperationalError as error:
                if not busy(error) or was_writer:
                    raise
                # Nothing of ours is in this transaction yet: end it, and start it again
                # later (or give up, leaving nothing half-begun).
                if conn.in_transaction:
                    conn.rollback()
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
                continue
            if conn.in_transaction:
                self._wrote = True
            return result

    def cursor(self) -> Cursor:
        """A cursor; SQLAlchemy enters it with `async with`, as aiosqlite's."""
        return Cursor(self, self._live().cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        conn = self._live()
        try:
            await self._retry_plain(conn.commit)
        finally:
            self._wrote = conn.in_transaction

    async def rollback(self) -> None:
        conn = self._live()
        conn.rollback()
        self._wrote = False

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._live().create_function(*args, **kw)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def connect(database: str | bytes, *, timeout: float = 5.0, **kwargs: Any) -> Connection:
    """Like `aiosqlite.connect`: an awaitable connection; SQLite never waits on its own."""
    kwargs.pop("check_same_thread", None)

    def connector() -> sqlite3.Connection:
        conn: sqlite3.Connection = sqlite3.connect(
            database, timeout=0, check_same_thread=False, **kwargs)
        return conn

    return Connection(connector, timeout)


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """This module as SQLAlchemy's aiosqlite dialect expects its driver."""
    import sys

    return AsyncAdapt_aiosqlite_dbapi(sys.modules[__name__], sqlite3)


__all__: Sequence[str] = ("BACKOFF", "Connection", "Cursor", "busy", "connect", "dbapi",
                          "wait_busy")
