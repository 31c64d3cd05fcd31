"""Engines and sessions: SQLite (WAL, foreign keys; its statements on the loop's thread,
`LoopSession`) or PostgreSQL via asyncpg."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple, overload

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql import Executable
from sqlalchemy.sql.selectable import TypedReturnsRows

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


# ------------------------------------------------------- SQLite on the loop's thread

# SQLite's statements run on the event loop's thread: a plain SQLAlchemy `Session` on the
# standard library's sqlite3 driver, behind the `AsyncSession` interface every module uses.
#
# Through aiosqlite every call of a statement (cursor, execute, fetch, close, commit) is
# handed to a thread and back; on this project's machine that made a transaction of two
# statements cost 2.3 ms of CPU, and the bot spent five times the echo bot's CPU per update
# (bench/load.py, docs/performance.md). SQLite's own work for such a statement is a few
# microseconds, so here the session runs it at once, on the loop's thread.
#
# The loop must never block, and SQLite would block it in its busy handler while another
# process (a `sezim-bot` command, a backup) holds the write lock. So:
# - these connections have a busy timeout of 0: SQLite never sleeps on the loop's thread;
# - a write transaction (`session.begin()`) takes its turn on the process's `PriorityLock`,
#   then SQLite's write lock at once (`BEGIN IMMEDIATE`, by SQLAlchemy's documented recipe:
#   the "begin" event emits it), waiting for it with `asyncio.sleep`; after that nothing in
#   the transaction can find the database busy;
# - a read (outside a write transaction; sessions write only inside one) that finds the
#   database busy is tried again the same way;
# - after the busy timeout the caller gets SQLite's error, with nothing left half-begun.
#
# Long reads (the reports' queries side by side, `bot.domain.stats`) use the async engine's
# own connections, on aiosqlite's threads; migrations too.


T = TypeVar("T")
# Set while a write transaction begins: its BEGIN takes SQLite's write lock at once.
_writing: contextvars.ContextVar[bool] = contextvars.ContextVar("writing", default=False)
_FIRST_WAIT = 0.005
_LONGEST_WAIT = 0.1


def _busy(error: OperationalError) -> bool:
    text = str(error.orig).lower()
    return "locked" in text or "busy" in text


def loop_engine(engine: AsyncEngine, *, open_timeout: float) -> Engine:
    """A synchronous engine on the same SQLite file as `engine`, disposed with it.

    Its pool never makes anyone wait (a blocking wait on the loop's thread could never
    end): beyond 20 connections kept, more are opened as needed and closed after use.
    Opening one may wait up to `open_timeout` for SQLite's lock (setting the journal
    mode), which happens only as the pool grows."""
    url = make_url(engine.url.render_as_string(hide_password=False)).set(
        drivername="sqlite+pysqlite")
    sync = create_sync_engine(url, echo=engine.echo, pool_size=20, max_overflow=-1,
                              connect_args={"timeout": open_timeout,
                                            "check_same_thread": False})

    @event.listens_for(sync, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        sqlite_pragmas(dbapi_connection, record, busy_timeout_ms=0)
        # SQLAlchemy's recipe for pysqlite: the driver begins nothing by itself, the
        # "begin" event below does.
        dbapi_connection.isolation_level = None

    @event.listens_for(sync, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _writing.get() else "BEGIN")

    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: sync.dispose())
    return sync


class _WriteTransaction:
    """`session.begin()`: this process's write turn, then SQLite's write lock, waited for
    in asyncio; committed (or rolled back on an error) at the end."""

    def __init__(self, session: LoopSession, lock: PriorityLock | None) -> None:
        self.session = session
        self.lock = lock

    async def __aenter__(self) -> _WriteTransaction:
        if self.lock is not None:
            await self.lock.acquire()
        sync = self.session.sync_session

        def begin() -> None:
            sync.begin()
            sync.connection()  # BEGIN IMMEDIATE: the write lock, or busy

        token = _writing.set(True)
        try:
            await self.session.until_free(begin)
        except BaseException:
            sync.rollback()
            if self.lock is not None:
                self.lock.release()
            raise
        finally:
            _writing.reset(token)
        self.session.writing = True
        return self

    async def __aexit__(self, kind: Any, value: Any, traceback: Any) -> None:
        self.session.writing = False
        try:
            if kind is None:
                self.session.sync_session.commit()
            else:
                self.session.sync_session.rollback()
        finally:
            if self.lock is not None:
                self.lock.release()


class LoopSession(AsyncSession):
    """An `AsyncSession` whose statements run at once on a synchronous SQLite `Session`
    (see the notes above), and whose write transactions (`begin()`) take turns on the
    process's `PriorityLock`.

    SQLite lets one writer in at a time; the others would wait in its busy handler, which
    sleeps in steps of up to 100 ms and made the slowest updates ten times slower than the
    median under load (bench/load.py). Taking turns here costs nothing. Transactions must
    not wait on Telegram while they hold the turn; none do."""

    def __init__(self, bind: AsyncEngine, *, loop_engine: Engine, busy_timeout: float,
                 **kw: Any) -> None:
        def on_loop_engine(**options: Any) -> Session:
            options.pop("bind", None)
            options.pop("binds", None)
            return Session(bind=loop_engine, **options)

        self.async_engine = bind
        super().__init__(bind, sync_session_class=on_loop_engine,  # type: ignore[arg-type]
                         **kw)
        self.busy_timeout = busy_timeout
        self.writing = False  # inside `begin()`

    @property
    def bind(self) -> Any:
        """The async engine it was made for (its dialect, its URL, its own connections),
        not the synchronous one its statements run on."""
        return self.async_engine

    @bind.setter
    def bind(self, engine: Any) -> None:
        self.async_engine = engine

    async def until_free(self, call: Callable[[], T]) -> T:
        """`call`, tried again while SQLite is busy (up to the busy timeout), waiting in
        asyncio. Only a read or a write transaction's BEGIN can find it busy (a write
        transaction holds the lock from then on); either starts again from a rollback, so
        nothing written is ever replayed."""
        deadline = time.monotonic() + self.busy_timeout
        wait = _FIRST_WAIT
        while True:
            try:
                return call()
            except OperationalError as error:
                if self.writing or not _busy(error) or time.monotonic() + wait > deadline:
                    raise
                self.sync_session.rollback()
            await asyncio.sleep(wait)
            wait = min(wait * 2, _LONGEST_WAIT)

    async def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return await self.until_free(functools.partial(self.sync_session.execute, statement,
                                                 params, **kw))

    async def scalar(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return await self.until_free(functools.partial(self.sync_session.scalar, statement,
                                                 params, **kw))

    async def run(self, statement: Executable,
                  params: Any = None) -> CursorResult[*tuple[Any, ...]]:
        """`db.run` on SQLite: the statement on this session's connection."""
        return await self.until_free(
            lambda: self.sync_session.connection().execute(statement, params))

    async def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
        return await self.until_free(functools.partial(self.sync_session.get, entity, ident, **kw))

    async def flush(self, objects: Any = None) -> None:
        self.sync_session.flush(objects)

    async def delete(self, instance: Any) -> None:
        self.sync_session.delete(instance)

    async def commit(self) -> None:
        self.sync_session.commit()

    async def rollback(self) -> None:
        self.sync_session.rollback()

    async def close(self) -> None:
        self.writing = False
        self.sync_session.close()

    async def __aexit__(self, kind: Any, value: Any, traceback: Any) -> None:
        await self.close()

    def begin(self) -> Any:
        return _WriteTransaction(self, self.info.get("write_lock"))


Ts = TypeVarTuple("Ts")


@overload
async def run(session: AsyncSession, statement: TypedReturnsRows[*Ts],
              params: Any = None) -> CursorResult[*Ts]: ...
@overload
async def run(session: AsyncSession, statement: Executable,
              params: Any = None) -> CursorResult[*tuple[Any, ...]]: ...
async def run(session: AsyncSession, statement: Executable,
              params: Any = None) -> CursorResult[*tuple[Any, ...]]:
    """A Core statement on the session's connection, in its transaction: rows and counts,
    never entities. It skips the ORM's own work for a statement (about 50 µs of CPU; for an
    INSERT of several rows 70), which the statements every update runs are spared.

    Only for statements that load no entity and change no row of an entity the session
    holds (the ORM would not learn of the change): those go through `session.execute`."""
    if isinstance(session, LoopSession):
        return await session.run(statement, params)
    connection = await session.connection()
    return await connection.execute(statement, params)


def sessionmaker(engine: AsyncEngine, *,
                 write_lock: PriorityLock | None = None) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`; on SQLite, `LoopSession`s whose writes take turns on
    `write_lock` (one of its own unless given: sessions on the same file must share it)."""
    if engine.dialect.name != "sqlite":
        return async_sessionmaker(engine, expire_on_commit=False)
    timeout = SQLITE_BUSY_TIMEOUT_MS / 1000
    return async_sessionmaker(engine, expire_on_commit=False, class_=LoopSession,
                              info={"write_lock": write_lock or PriorityLock()},
                              loop_engine=loop_engine(engine, open_timeout=timeout),
                              busy_timeout=timeout)
