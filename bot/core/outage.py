"""The database away (PostgreSQL restarting, a disk full, SQLite locked for too long): the
bot waits for it, one warning line per attempt and no traceback, and carries on when it
is back. An update whose handling met the outage is handled again then, and is confirmed
to Telegram only after that, so nothing she wrote is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

FIRST_WAIT = 1.0
LONGEST_WAIT = 30.0


def is_outage(error: BaseException | None) -> bool:
    """Whether `error` says the database cannot be reached now (rather than a bug, or a
    login it refuses: that is the configuration's to mend, not a wait's)."""
    if is_refusal(error):
        return False
    if isinstance(error, OperationalError | InterfaceError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    # asyncpg's refused or dropped connections, raised before SQLAlchemy wraps anything.
    return isinstance(error, ConnectionError | TimeoutError) or (
        type(error).__module__.startswith("asyncpg") and "Connection" in type(error).__name__)


# The database's answers that mean the configuration is wrong (not that it is away).
REFUSALS = ("InvalidPasswordError", "InvalidAuthorizationSpecificationError",
            "InvalidCatalogNameError")


def is_refusal(error: BaseException | None) -> bool:
    """Whether the database refused the login (a wrong password, user or database name)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:  # SQLAlchemy wraps the driver's
        seen.add(id(error))
        if any(cls.__name__ in REFUSALS for cls in type(error).__mro__):
            return True
        error = getattr(error, "orig", None) or error.__cause__ or error.__context__
    return False


def reason(error: BaseException) -> str:
    """What went wrong, in a few words: the kind, and the driver's own message (never
    SQLAlchemy's, which quotes the statement and its values)."""
    driver = getattr(error, "orig", None)
    detail = str(driver if driver is not None else "").strip().splitlines()
    kind = type(driver if driver is not None else error).__name__
    return f"{kind}: {detail[0][:120]}" if detail else kind


async def until_reachable(what: str, attempt: Callable[[], Awaitable[object]],
                          passing: Callable[[BaseException], bool],
                          stop: asyncio.Event | None = None) -> bool:
    """Run `attempt` until it does not fail with a passing error (`passing`), waiting
    longer each time, one warning line per attempt and no traceback (whose URL would
    carry the token), and a line when `what` is back; False if `stop` was set meanwhile."""
    delay, tries = FIRST_WAIT, 0
    while True:
        try:
            await attempt()
        except Exception as exc:
            if not passing(exc):
                raise
            tries += 1
            log.warning("%s cannot be reached (%s): trying again in %.0f s (attempt %d)",
                        what, reason(exc), delay, tries)
            if stop is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return False
            delay = min(delay * 2, LONGEST_WAIT)
            continue
        if tries:
            log.warning("%s is back after %d attempt(s): carrying on", what, tries)
        return True


class DatabaseOutage:
    """Shared by everything that meets the outage: one of them asks the database again,
    with backoff; the others wait for its answer."""

    def __init__(self, ping: Callable[[], Awaitable[object]]) -> None:
        self._ping = ping
        self._lock = asyncio.Lock()
        self.failed: set[int] = set()  # updates whose handling met the outage

    async def wait_until_back(self) -> None:
        async with self._lock:
            # Any failure of the ping means "not yet", whatever the database answers.
            await until_reachable("the database", lambda: asyncio.wait_for(self._ping(), 10),
                                  lambda _: True)


def pinger(sessions: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    """A `SELECT 1` through the bot's sessions."""
    async def ping() -> object:
        async with sessions() as session:  # type: ignore[attr-defined]
            return await session.execute(text("SELECT 1"))
    return ping
