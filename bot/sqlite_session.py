"""SQLAlchemy sessions on SQLite without the asyncio adapter: synchronous, on the loop's thread.

SQLite already runs on the event loop's thread (`bot.sqlite_inloop`), so SQLAlchemy's
asyncio layer around it (a greenlet for every call, a pool that hands connections over
through an asyncio queue, a task to close each session) only costs time: about two thirds
of the bot's database time, and the database was half of its time under load
(bench/load.py, docs/performance.md). `InLoopSession` is an `AsyncSession` whose
statements run on an ordinary synchronous `Session` directly, so every service keeps its
`await session.execute(...)` and PostgreSQL keeps the real asyncio driver.

Blocking the loop is what this must never do, and SQLite would block it in its busy
handler while another process (a `sezim-bot` command, a backup) holds the write lock. So:
- these connections have a busy timeout of 0: SQLite never sleeps on the loop's thread;
- a write transaction (`session.begin()`) takes its turn on the process's `PriorityLock`,
  then SQLite's write lock at once (`BEGIN IMMEDIATE`), waiting for it with
  `asyncio.sleep`; after that nothing in the transaction can find the database busy;
- a read that finds it busy (rare in WAL mode) is tried again the same way, but only while
  the connection holds no transaction: nothing that was written is ever replayed;
- after the busy timeout the caller gets SQLite's error, with nothing left half-begun.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import immutabledict

from bot.db import PriorityLock, SezimSession, sqlite_pragmas
from bot.sqlite_inloop import wait_busy

T = TypeVar("T")
_PREBUFFER = immutabledict({"prebuffer_rows": True})  # passed to every ORM statement
_NO_OPTIONS: immutabledict[str, Any] = immutabledict()


def companion_engine(engine: AsyncEngine, *, open_timeout: float) -> Engine:
    """A synchronous engine on the same SQLite file as `engine`, disposed with it.

    Its pool never makes anyone wait (a blocking wait on the loop's thread could never
    end): beyond 20 connections kept, more are opened as needed and closed after use.
    Opening a connection may wait up to `open_timeout` for SQLite's lock (setting the
    journal mode), which happens only as the pool grows.
    """
    url = make_url(str(engine.url.render_as_string(hide_password=False))).set(
        drivername="sqlite+pysqlite")
    sync = create_sync_engine(
        url, echo=engine.echo, pool_size=20, max_overflow=-1,
        connect_args={"timeout": open_timeout, "check_same_thread": False},
    )
    event.listen(sync, "connect", functools.partial(sqlite_pragmas, busy_timeout_ms=0))
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: sync.dispose())
    return sync


class _Transaction:
    """`session.begin()`: this process's write turn, then SQLite's write lock, waited for
    in asyncio; committed (or rolled back on an error) at the end."""

    def __init__(self, session: InLoopSession, lock: PriorityLock | None) -> None:
        self._session = session
        self._lock = lock
        self._transaction: SessionTransaction | None = None

    async def __aenter__(self) -> _Transaction:
        if self._lock is not None:
            await self._lock.acquire()
        sync = self._session.sync_session
        try:
            self._transaction = sync.begin()
            connection = self._session.held = sync.connection()
            raw = connection.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            try:
                await wait_busy(lambda: raw.execute("BEGIN IMMEDIATE"),
                                timeout=self._session.busy_timeout)
            except sqlite3.OperationalError as error:
                raise OperationalError("BEGIN IMMEDIATE", None, error) from error
        except BaseException:
            self._session.held = None
            if self._transaction is not None:
                self._transaction.rollback()
            if self._lock is not None:
                self._lock.release()
            raise
        return self

    async def __aexit__(self, kind: Any, value: Any, traceback: Any) -> None:
        self._session.held = None
        try:
            assert self._transaction is not None
            self._transaction.__exit__(kind, value, traceback)
        finally:
            if self._lock is not None:
                self._lock.release()


class InLoopSession(SezimSession):
    """An `AsyncSession` over a synchronous SQLite `Session` (see the module's notes).

    The statements and the transaction run directly; everything else of `AsyncSession`
    still works through its greenlet, which never has anything to wait for.
    """

    def __init__(self, bind: AsyncEngine, *, sync_engine: Engine, busy_timeout: float,
                 **kw: Any) -> None:
        def on_sync_engine(**options: Any) -> Session:
            options.pop("bind", None)
            options.pop("binds", None)
            return Session(bind=sync_engine, **options)

        super().__init__(bind, sync_session_class=on_sync_engine, **kw)  # type: ignore[arg-type]
        self.busy_timeout = busy_timeout
        # The connection of the write transaction under way (`begin()`), for its statements.
        self.held: Connection | None = None

    @property
    def bind(self) -> Any:
        """The asyncio engine it was made for (its dialect, its URL)."""
        return self._async_bind

    @bind.setter
    def bind(self, bind: Any) -> None:
        self._async_bind = bind

    def _holds_nothing(self) -> bool:
        raw = self.sync_session.connection().connection.driver_connection
        return not getattr(raw, "in_transaction", True)

    async def _run(self, call: Callable[[], T]) -> T:
        return await wait_busy(call, timeout=self.busy_timeout, safe=self._holds_nothing)

    async def execute(self, statement: Any, params: Any = None,
                      *, execution_options: Any = None, **kw: Any) -> Any:
        if not statement._propagate_attrs and not kw:
            # A statement on the tables (no ORM entity in it): the session would only pass
            # it on to its connection, after a third more work of its own.
            connection = self.held or self.sync_session.connection()
            return await self._run(lambda: connection.execute(
                statement, params, execution_options=execution_options or _NO_OPTIONS))
        # Rows are read at once, as the asyncio session does.
        options = {**execution_options, **_PREBUFFER} if execution_options else _PREBUFFER
        return await self._run(lambda: self.sync_session.execute(
            statement, params, execution_options=options, **kw))

    async def scalar(self, statement: Any, params: Any = None,
                     **kw: Any) -> Any:
        return await self._run(lambda: self.sync_session.scalar(statement, params, **kw))

    async def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
        return await self._run(lambda: self.sync_session.get(entity, ident, **kw))

    async def flush(self, objects: Any = None) -> None:
        self.sync_session.flush(objects)

    async def commit(self) -> None:
        self.held = None
        self.sync_session.commit()

    async def rollback(self) -> None:
        self.held = None
        self.sync_session.rollback()

    async def close(self) -> None:
        self.held = None
        self.sync_session.close()

    async def __aexit__(self, kind: Any, value: Any, traceback: Any) -> None:
        await self.close()

    def begin(self) -> Any:
        return _Transaction(self, self.info.get("write_lock"))


def session_options(engine: AsyncEngine, busy_timeout: float) -> dict[str, Any]:
    """What `async_sessionmaker` needs to make `InLoopSession`s for `engine`."""
    return {"class_": InLoopSession,
            "sync_engine": companion_engine(engine, open_timeout=busy_timeout),
            "busy_timeout": busy_timeout}
