"""Running the bot: durable long polling (the `run` command, the demo and the tests).

PTB's Updater confirms updates to Telegram as soon as it fetches them, so an update fetched
but not yet handled dies with the process. This loop always asks Telegram from its oldest
unfinished update (which confirms only what is before it), so nothing unhandled is lost. An
update finished but not confirmed yet comes again after a crash: those finished behind a
slow one are recorded as handled once it has taken RECORD_AFTER, and skipped when they
come again; one handled in the moment before the crash (before that record, or before the
next fetch confirmed it) is handled a second time.

Data access: Core-style statements on the mapped `ProcessedUpdate`'s columns, built where
they run and run on the session's connection (`db.run`); never an entity.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.error import (
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)

from bot.core import db, keys, migrate, sdnotify
from bot.core.clock import Clock
from bot.core.config import ENV_WEBHOOK_SECRET, PLACEHOLDER_SECRETS, Settings, secret_from
from bot.core.crypto import Crypto
from bot.core.db import create_engine, sessionmaker, work_priority
from bot.core.outage import is_outage, until_reachable
from bot.domain import callbacks as cb
from bot.domain import danger
from bot.domain import staff as staff_service
from bot.telegram.app import build_application
from bot.telegram.context import SezimApp
from bot.telegram.ratelimit import retry_seconds
from bot.telegram.updates import read_update
from models import ProcessedUpdate

log = logging.getLogger(__name__)


def warn_if_readable(url: str) -> None:
    """One line if an SQLite database (or its directory) can be read by other users of the
    machine: it holds encrypted ids, but also who wrote when, and the key may be near."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or \
            parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    for place in (path, path.parent if str(path.parent) else Path(".")):
        try:
            mode = place.stat().st_mode
        except OSError:
            continue
        if mode & 0o004:
            log.warning("%s is readable by other users of this machine: run chmod %s %s",
                        place, "700" if place.is_dir() else "600", place)


async def upgrade_database(settings: Settings, *, rotating: bool = False) -> None:
    """Bring the database to the newest schema, then check the server key against it
    (`keys.check`: a wrong key stops here with one line)."""
    warn_if_readable(settings.database.url)
    engine = create_engine(settings.database.url)
    try:
        await migrate.upgrade(engine)
        secret = settings.secret_key
        if secret and secret.strip().lower() not in PLACEHOLDER_SECRETS:
            async with sessionmaker(engine)() as session, session.begin():
                await keys.check(session, crypto=Crypto(secret), now=Clock().now(),
                                 rotating=rotating)
    finally:
        await engine.dispose()


async def _identify(app: SezimApp, session: AsyncSession, updates: Sequence[Update]) -> None:
    """Note who among the senders of `updates` is staff, for the identify handler: one
    query for a whole batch instead of one per update."""
    data = app.bot_data
    senders = {u.update_id: u.effective_user.id for u in updates if u.effective_user}
    staff = await staff_service.active_staff_ids(session, data.crypto, senders.values())
    for update_id, user_id in senders.items():
        data.note_actor(update_id, staff.get(user_id))


async def _already_handled(app: SezimApp, updates: Sequence[Update],
                           above: int | None = None) -> set[int]:
    """The updates of a batch handled before (and its senders identified). One short read
    for the whole batch. `above`: no update after this id was recorded, so only those up
    to it are looked up."""
    async with app.bot_data.sessions() as session:
        ids = [u.update_id for u in updates if above is None or u.update_id <= above]
        found = (await db.run(session, select(ProcessedUpdate.update_id).where(
            ProcessedUpdate.update_id.in_(ids)))).scalars().all() if ids else ()
        await _identify(app, session, updates)
        return set(found)


async def _newest_handled(app: SezimApp) -> int:
    """The newest update id recorded as handled (-1: none)."""
    async with app.bot_data.sessions() as session:
        newest = (await db.run(session, select(func.max(ProcessedUpdate.update_id)))).scalar()
        return -1 if newest is None else int(newest)


async def _mark_handled(app: SezimApp, update_ids: Sequence[int]) -> None:
    data = app.bot_data
    try:
        async with data.sessions() as session, session.begin():
            now = data.clock.now()
            await db.run(session, insert(ProcessedUpdate),
                         [{"update_id": u, "at": now} for u in update_ids])
    except IntegrityError:
        # Another worker recorded some of them too; record the rest one by one.
        for update_id in update_ids:
            with contextlib.suppress(IntegrityError):
                async with data.sessions() as session, session.begin():
                    await db.run(session, insert(ProcessedUpdate),
                                 [{"update_id": update_id, "at": data.clock.now()}])


async def handle_update(app: SezimApp, update: Update) -> bool:
    """Handle one update, unless it was recorded as handled, and record it (errors go to
    the error handler). False if it met a database outage: not handled, to be delivered
    again."""
    outage = app.bot_data.outage
    try:
        if update.update_id in await _already_handled(app, [update]):
            return True
        await app.process_update(update)
        if update.update_id in outage.failed:
            outage.failed.discard(update.update_id)
            return False
        await _mark_handled(app, [update.update_id])
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("update %d waits: the database cannot be reached (%s)",
                    update.update_id, type(exc).__name__)
        return False
    return True


def _chat_key(update: Update) -> int:
    if update.effective_chat is not None:
        return int(update.effective_chat.id)
    if update.effective_user is not None:
        return int(update.effective_user.id)
    return -int(update.update_id)


URGENT_TAPS = (cb.Danger("yes"), cb.Write("yes"), cb.Exit(), cb.RaiseUrgency())
# An update still in hand after this long is slow: the bot looks behind it. A surge is a
# backlog of SURGE_BATCH updates or someone in danger waiting there; otherwise (a locked
# database, a slow answer) the durable path stays, where nothing unhandled is confirmed.
# A backlog of SURGE_BATCH that the bot would need longer than this to get through is a
# surge too, however quick each update in hand (few in hand, each waiting its turn under
# Telegram's sending limit, are never slow).
BEHIND_SECONDS = 0.5
# While every fetch comes back full (Telegram holds more), the bot looks behind what it
# takes this often.
LOOK_EVERY = 1.0
SURGE_BATCH = 50
TELEGRAM_LIMIT = 100  # the most updates one getUpdates call returns
MAX_BACKLOG = 20_000


def is_urgent(update: Update) -> bool:
    """Updates that must not wait behind a surge: danger, the offer of a specialist, quick
    exit, a specialist taking a case."""
    query = update.callback_query
    if query is not None:
        tap = cb.decode(query.data)
        return tap in URGENT_TAPS or isinstance(tap, cb.Take)
    message = update.message
    if message is None:
        return False
    text = message.text or message.caption or ""
    return text.strip().split("@")[0] == "/exit" or danger.check(text) is not danger.Signal.NONE


async def _process(app: SezimApp, update: Update, *, urgent: bool) -> None:
    """Handle one update (its handlers' errors go to the error handler). An urgent one's
    database turns come before ordinary work's, in a surge or not."""
    token = work_priority.set(0) if urgent else None
    outage = app.bot_data.outage
    try:
        while True:
            await app.process_update(update)
            if update.update_id not in outage.failed:
                break
            # It met a database outage: handled again once the database is back.
            outage.failed.discard(update.update_id)
            await outage.wait_until_back()
    except Exception:  # process_update reports handler errors itself
        log.exception("update %d failed", update.update_id)
    finally:
        if token is not None:
            work_priority.reset(token)


class SurgeDispatcher:
    """Updates already confirmed to Telegram, handled from memory by priority.

    In a surge the bot cannot keep up with ordinary traffic (Telegram lets it send about 30
    messages a second), and Telegram hands out updates oldest first: a woman in danger
    would wait behind thousands of them. So, while behind, the bot takes every update at
    once, handles urgent ones immediately and ordinary ones as workers free up, each
    chat's in its order. The cost: ordinary updates taken but not yet handled are lost if
    the process dies during the surge (people who asked for /help get no answer and ask
    again); everything urgent is handled within moments of arriving.
    """

    def __init__(self, app: SezimApp, concurrency: int) -> None:
        self.app = app
        self.gate = asyncio.Semaphore(concurrency)
        self.queues: dict[int, deque[tuple[Update, bool]]] = {}
        self.pending = 0
        self.drained = asyncio.Event()
        self.drained.set()
        self.tasks: set[asyncio.Future[None]] = set()
        # Chats whose updates are still in a batch handled before the surge began.
        self.blockers: dict[int, asyncio.Future[None]] = {}

    def adopt(self, chats: dict[int, asyncio.Task[None]]) -> None:
        """The chats in hand when the bot found itself behind: their next updates wait for
        them, and the surge is not over before they are done."""
        for key, task in chats.items():
            self.tasks.add(task)
            self.pending += 1
            self.drained.clear()
            self.blockers[key] = task
            task.add_done_callback(self._adopted_done)

    def _adopted_done(self, task: asyncio.Future[None]) -> None:
        self.tasks.discard(task)
        self.pending -= 1
        if self.pending == 0:
            self.drained.set()

    async def take(self, updates: Sequence[Update]) -> None:
        """Take updates fetched in a surge: their senders identified at once, then each
        queued in its chat."""
        if not updates:
            return
        async with self.app.bot_data.sessions() as session:
            await _identify(self.app, session, updates)
        for update in updates:
            self.submit(update)

    def submit(self, update: Update) -> None:
        key = _chat_key(update)
        queue = self.queues.get(key)
        self.pending += 1
        self.drained.clear()
        if queue is not None:
            queue.append((update, is_urgent(update)))
            return
        self.queues[key] = deque([(update, is_urgent(update))])
        task = asyncio.create_task(self._run_chat(key))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_chat(self, key: int) -> None:
        queue = self.queues[key]
        try:
            blocker = self.blockers.pop(key, None)
            if blocker is not None and not blocker.done():
                await asyncio.wait({blocker})  # her earlier updates first
            while queue:
                update, urgent = queue[0]
                if urgent:
                    await _process(self.app, update, urgent=True)
                else:
                    async with self.gate:
                        await _process(self.app, update, urgent=False)
                queue.popleft()
                self.pending -= 1
        finally:
            del self.queues[key]
            if self.pending == 0:
                self.drained.set()


async def _fetch(app: SezimApp, stop: asyncio.Event, offset: int, timeout: int,
                 limit: int = TELEGRAM_LIMIT,
                 newer_than: int | None = None) -> tuple[Any, ...] | None:
    """One getUpdates call (at most `limit` updates; of them only those after `newer_than`
    are returned), or None if `stop` was set meanwhile."""
    app.bot_data.updates_request.newer_than = newer_than
    fetch = asyncio.ensure_future(app.bot.get_updates(
        offset=offset, timeout=timeout, allowed_updates=Update.ALL_TYPES, limit=limit,
        read_timeout=timeout + 10,
    ))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({fetch, stopper}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        for task in (fetch, stopper):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await fetch
        raise
    if fetch not in done:
        fetch.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await fetch
        return None
    stopper.cancel()
    return tuple(fetch.result())


PEEK_SECONDS = 0.25
# An update finished behind an unfinished one is confirmed with it, usually within
# milliseconds; if the one before it is still unfinished after this long, it is recorded.
RECORD_AFTER = 0.1
class Stream:
    """The durable path: the updates in hand, each chat started as soon as there is room.

    Telegram forgets every update below the offset the bot asks from, so the bot asks from
    its oldest unfinished update: nothing unhandled is ever confirmed. Updates finished
    behind an unfinished one stay with Telegram meanwhile; if it takes a while (RECORD_AFTER)
    they are recorded as handled, so after a crash they are skipped when they come again.
    Each fetch hands back what is in hand (dropped unparsed) and whatever is new, up to the
    room left. So a new chat does not wait for the slowest chat before it (a batch would
    make it), and each chat's own updates still go one after another, in Telegram's order.
    """

    def __init__(self, app: SezimApp, offset: int = 0) -> None:
        self.app = app
        # Every update fetched and not yet confirmed, oldest first: finished or not.
        self.held: deque[int] = deque()
        self.newest = offset - 1  # the newest update taken (-1: none yet)
        # Unfinished updates, oldest first: when they were taken.
        self.taken_at: dict[int, float] = {}
        self.finished: list[int] = []  # handled, neither recorded nor confirmed yet
        self.recorded_before: int | None = None  # the newest update recorded before it began
        self.queues: dict[int, deque[Update]] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.progress = asyncio.Event()  # set when an update is finished
        self.in_hand = 0  # unfinished updates right after the last fetch
        self.done_since = 0  # updates finished since then
        # The bot's pace while it has work: seconds between one update finished and the
        # next (a running mean; idle time between batches does not count).
        self.pace: float | None = None
        self.last_done: float | None = None  # when the last one finished, while busy
        self.full = False  # the last fetch brought all it asked for: Telegram may hold more
        self.looked_at = -LOOK_EVERY  # when the bot last looked behind what it takes

    @property
    def unfinished(self) -> int:
        return len(self.taken_at)

    @property
    def offset(self) -> int:
        """Where to ask from: the oldest unfinished update, or past everything taken."""
        oldest = next(iter(self.taken_at), None)
        if oldest is not None:
            return oldest
        return self.newest + 1 if self.newest >= 0 else 0

    def oldest_age(self) -> float:
        if not self.taken_at:
            return 0.0
        return asyncio.get_running_loop().time() - next(iter(self.taken_at.values()))

    def look_due(self) -> bool:
        """Whether to look at everything Telegram holds: the oldest update in hand is slow;
        or Telegram had more at the last fetch, the bot's pace is too slow to get through a
        surge's backlog in time, and it last looked a while ago. (A look hands out more than
        the bot takes: those wait for a later fetch, so it looks only when it may matter.)"""
        now = asyncio.get_running_loop().time()
        return self.oldest_age() > BEHIND_SECONDS or (
            self.full and now - self.looked_at >= LOOK_EVERY
            and self.backlog_seconds(SURGE_BATCH) > BEHIND_SECONDS)

    def fetched(self, *, full: bool, looked: bool) -> None:
        self.full = full
        if looked:
            self.looked_at = asyncio.get_running_loop().time()

    def backlog_seconds(self, waiting: int) -> float:
        """How long the bot would take to get through `waiting` more updates, at the pace
        it finished updates lately (0 before it has a pace). The pace is measured, not
        worked out from how long each update stayed in hand: that time counts waits behind
        the same chat's updates (a specialist taking five cases), and made a burst the bot
        got through in 0.4 s look like 1.1 s of work, a surge (bench/load.py)."""
        if self.pace is None:
            return 0.0
        return waiting * self.pace

    def done(self, update_id: int, now: float) -> None:
        """Update `update_id` is finished at `now` (loop time): out of hand, and the pace."""
        del self.taken_at[update_id]
        if self.last_done is not None:
            gap = now - self.last_done
            self.pace = gap if self.pace is None else self.pace + (gap - self.pace) / 8
        self.last_done = now if self.taken_at else None  # idle from here

    def confirmed(self, offset: int) -> None:
        """Telegram was asked from `offset`: everything below it is gone from there."""
        while self.held and self.held[0] < offset:
            self.held.popleft()

    def _ready(self) -> bool:
        """Half of what was in hand at the last fetch is finished (at least one update):
        each fetch takes a share of updates, not one at a time."""
        return self.done_since >= max(1, (self.in_hand + 1) // 2)

    async def room(self, stop: asyncio.Event) -> None:
        """Wait until half of the updates in hand at the last fetch are finished, or
        PEEK_SECONDS pass (to look behind a slow update)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PEEK_SECONDS
        while not stop.is_set() and not self._ready():
            left = deadline - loop.time()
            if left <= 0:
                break
            self.progress.clear()
            waiter = asyncio.ensure_future(self.progress.wait())
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({waiter, stopper}, timeout=left,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                stopper.cancel()

    async def take(self, updates: Sequence[Update], offset: int) -> None:
        """After asking Telegram from `offset`: take the new `updates` (their senders
        identified in one query, those handled before skipped), each queued in its chat.
        Updates finished below `offset` are confirmed now and need no record; those above
        it, behind an unfinished one that is taking a while, are recorded as handled (after
        a crash they would come again)."""
        self.finished = [u for u in self.finished if u >= offset]
        record: list[int] = []
        if self.finished and self.oldest_age() > RECORD_AFTER:
            record, self.finished = self.finished, []
        if updates:
            if self.recorded_before is None:
                self.recorded_before = await _newest_handled(self.app)
            self._queue(updates, await _already_handled(self.app, updates,
                                                        above=self.recorded_before))
        self.in_hand, self.done_since = self.unfinished, 0
        if record:
            await _mark_handled(self.app, record)

    def _queue(self, updates: Sequence[Update], done: set[int]) -> None:
        now = asyncio.get_running_loop().time()
        for update in updates:
            update_id = update.update_id
            self.newest = update_id
            self.held.append(update_id)
            if update_id in done:
                continue
            self.taken_at[update_id] = now
            key = _chat_key(update)
            queue = self.queues.get(key)
            if queue is not None:
                queue.append(update)
                continue
            self.queues[key] = deque([update])
            self.tasks[key] = asyncio.create_task(self._run_chat(key))

    async def _run_chat(self, key: int) -> None:
        queue = self.queues[key]
        try:
            while queue:
                update = queue[0]
                await _process(self.app, update, urgent=is_urgent(update))
                queue.popleft()
                self.done(update.update_id, asyncio.get_running_loop().time())
                self.finished.append(update.update_id)
                self.done_since += 1
                self.progress.set()
        finally:
            del self.queues[key]
            del self.tasks[key]

    async def finish(self) -> None:
        """Stopping: what is in hand is handled to the end, and recorded (nothing of it will
        be confirmed now)."""
        while self.tasks:
            await asyncio.wait(set(self.tasks.values()))
        if self.finished:
            await _mark_handled(self.app, self.finished)
            self.finished = []


def _surge_behind(stream: Stream, waiting: Sequence[Update]) -> bool:
    """Whether the bot is behind a surge: a backlog waits that would take it longer than
    BEHIND_SECONDS to get through; or its oldest update in hand is slow (Telegram's sending
    limits, a locked database, a flood), and behind it waits a backlog, someone in danger,
    or so many updates that the next fetch could not see past those in hand."""
    if (len(waiting) >= SURGE_BATCH
            and stream.backlog_seconds(len(waiting)) > BEHIND_SECONDS):
        return True
    if stream.oldest_age() <= BEHIND_SECONDS:
        return False
    return (len(waiting) >= SURGE_BATCH or any(is_urgent(u) for u in waiting)
            or len(stream.held) >= TELEGRAM_LIMIT - SURGE_BATCH)


async def poll(app: SezimApp, stop: asyncio.Event, *, timeout: int) -> None:
    """Long polling. Normally an update is confirmed only after it was handled, so nothing
    is lost in a crash (`Stream`); while a surge keeps the bot behind, urgent updates go
    first (`SurgeDispatcher`).

    At most `concurrency` updates are in hand at once: what the bot can start on at once.
    More would wait inside the bot behind the rest, and anyone else keeps her place
    in Telegram's queue just as well."""
    concurrency = app.bot_data.settings.telegram.concurrency
    watchdog = sdnotify.Watchdog()
    stream: Stream | None = Stream(app)
    surge: SurgeDispatcher | None = None
    offset = 0
    delay = 1.0
    failures = 0
    while not stop.is_set():
        watchdog.alive()  # the loop goes round at least once per long poll
        if surge is not None and surge.pending >= MAX_BACKLOG:
            await asyncio.sleep(0.05)  # back-pressure: the rest stays with Telegram
            continue
        room = 0
        looking = False
        try:
            if stream is not None:
                if stream.unfinished:
                    await stream.room(stop)
                    if stop.is_set():
                        break
                offset = stream.offset
                room = max(1, concurrency - stream.unfinished)
                # Slow, or Telegram keeps having more: look at everything it holds, to
                # see a surge behind.
                looking = stream.look_due()
                # Telegram hands back what is in hand first: leave room for it.
                again = sum(1 for update_id in stream.held if update_id >= offset)
                limit = min(TELEGRAM_LIMIT, again + (TELEGRAM_LIMIT if looking else room))
                updates = await _fetch(app, stop, offset, 0 if stream.unfinished else timeout,
                                       limit, newer_than=stream.newest)
            else:
                assert surge is not None
                updates = await _fetch(app, stop, offset, 0)
        except (InvalidToken, Forbidden):
            raise
        except RetryAfter as exc:
            await asyncio.sleep(retry_seconds(exc.retry_after))
            continue
        except (NetworkError, TimedOut) as exc:
            failures += 1
            log.warning("the Bot API cannot be reached (%s): trying again in %.0f s "
                        "(attempt %d)", type(exc).__name__, delay, failures)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            continue
        if failures:
            log.warning("the Bot API is back after %d attempt(s): carrying on", failures)
            failures = 0
        if updates is None:
            break
        delay = 1.0
        if stream is not None:
            stream.confirmed(offset)
            stream.fetched(full=len(updates) >= limit - again, looked=looking)
            if looking and _surge_behind(stream, updates[room:]):
                log.warning("behind a surge: urgent updates now go first (%d waiting, "
                            "about %.1f s of work; the oldest in hand for %.1f s)",
                            len(updates[room:]), stream.backlog_seconds(len(updates[room:])),
                            stream.oldest_age())
                surge = SurgeDispatcher(app, concurrency)
                surge.adopt(stream.tasks)
                await surge.take(updates)
                offset = updates[-1].update_id + 1 if updates else stream.newest + 1
                stream = None
            else:
                try:
                    await stream.take(updates[:room], offset)
                except Exception as exc:
                    if not is_outage(exc):
                        raise
                    # Nothing of these was taken: asked for again once the database is back.
                    await app.bot_data.outage.wait_until_back()
            continue
        assert surge is not None
        await surge.take(updates)
        if updates:
            offset = updates[-1].update_id + 1
        elif surge.pending == 0:
            log.info("surge over: back to confirming updates after handling them")
            surge = None
            stream = Stream(app, offset)
        else:
            await asyncio.wait({asyncio.ensure_future(surge.drained.wait())}, timeout=0.05)
    if stream is not None:
        await stream.finish()
    if surge is not None and surge.tasks:
        # Stopping in a surge: a short grace for what is in hand, not the whole backlog.
        _, unfinished = await asyncio.wait(set(surge.tasks), timeout=10)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)


async def open_connections(app: SezimApp, count: int) -> None:
    """Before the first update: `count` connections to the Bot API and to the database,
    opened side by side. After a start Telegram hands over what waited as one burst, and
    opened one per answer of that burst, the connections made every answer wait until the
    last of the burst was handled (20 people at once: their first answers 21 ms, 10 ms
    with the connections open; on PostgreSQL the database's connections too). A failure
    here does not stop the start: a connection opens when it is first needed."""

    async def bot_api() -> None:
        await app.bot.get_me()

    async def database() -> None:
        async with app.bot_data.sessions() as session:
            await db.run(session, select(1))

    results = await asyncio.gather(*(bot_api() for _ in range(count)),
                                   *(database() for _ in range(count)),
                                   return_exceptions=True)
    failed = sum(1 for r in results if isinstance(r, BaseException))
    if failed:
        log.warning("%d of %d connections could not be opened before the first update",
                    failed, len(results))


WEBHOOK_HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def serve_webhook(app: SezimApp, stop: asyncio.Event, *, secret: str) -> None:
    """Receive updates by webhook: only requests carrying the secret token are handled,
    and each is answered 200 only after it was handled (so Telegram retries otherwise)."""
    settings = app.bot_data.settings
    assert settings.telegram.webhook_url is not None
    path = urlsplit(settings.telegram.webhook_url).path or "/"

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(WEBHOOK_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("webhook request without the right secret token refused")
            return web.Response(status=403)
        try:
            payload = await request.json()
            int(payload["update_id"])
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400)  # not an update at all
        # One the library cannot read is confirmed (200) as an empty update: answered with
        # an error, Telegram would send it again and again.
        update = read_update(payload, app.bot)
        if not await handle_update(app, update):
            return web.Response(status=503)  # Telegram delivers it again later
        return web.Response(status=200)

    server = web.Application(client_max_size=1024 * 1024)
    server.router.add_post(path, receive)
    runner = web.AppRunner(server, access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, settings.telegram.webhook_listen, settings.telegram.webhook_port)
    await site.start()
    try:
        await app.bot.set_webhook(settings.telegram.webhook_url, secret_token=secret,
                                  allowed_updates=Update.ALL_TYPES)
        log.info("webhook listening on %s:%d", settings.telegram.webhook_listen,
                 settings.telegram.webhook_port)
        await stop.wait()
    finally:
        await runner.cleanup()


def _unreachable(error: BaseException) -> bool:
    return isinstance(error, aiohttp.ClientError | TimeoutError | OSError | _ServerError)


class _ServerError(Exception):
    """The Bot API answered with a server error (5xx): it is not there yet."""


async def _bot_api_answers(settings: Settings, token: str) -> None:
    """One getMe, by plain HTTP: any answer but a server error means the Bot API is there
    (a rejected token is then PTB's to report)."""
    url = f"{settings.telegram.base_url}{token}/getMe"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http, \
            http.get(url) as response:
        if response.status >= 500:
            raise _ServerError(f"HTTP {response.status}")


async def _watch_webhook(stop: asyncio.Event) -> None:
    """In webhook mode there is no polling loop to tell systemd the bot is alive."""
    watchdog = sdnotify.Watchdog()
    while watchdog.interval is not None and not stop.is_set():
        watchdog.alive()
        await asyncio.sleep(watchdog.interval)


async def serve(
    settings: Settings,
    *,
    token: str,
    stop: asyncio.Event,
    clock: Clock | None = None,
    on_ready: Callable[[SezimApp], Awaitable[None]] | None = None,
    upgrade: bool = True,
) -> None:
    """Upgrade the database, start the bot, poll until `stop` is set, shut down cleanly.
    A database or Bot API that cannot be reached at start is waited for (one line per
    attempt); a wrong key or token stops here."""
    if upgrade:
        if not await until_reachable("the database", lambda: upgrade_database(settings),
                                      is_outage, stop):
            return
    if not await until_reachable("the Bot API", lambda: _bot_api_answers(settings, token),
                                  _unreachable, stop):
        return
    app = build_application(settings, token=token, clock=clock)
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        webhook = settings.telegram.webhook_url
        if not webhook:
            await app.bot.delete_webhook(drop_pending_updates=False)
        await app.start()
        await open_connections(app, settings.telegram.concurrency)
        if on_ready is not None:
            await on_ready(app)
        sdnotify.notify("READY=1")
        if webhook:
            secret = (secret_from(os.environ, ENV_WEBHOOK_SECRET)
                      or app.bot_data.crypto.webhook_token())
            pinger = asyncio.create_task(_watch_webhook(stop))
            try:
                await serve_webhook(app, stop, secret=secret)
            finally:
                pinger.cancel()
        else:
            log.info("bot started; long polling")
            await poll(app, stop, timeout=settings.telegram.poll_timeout)
    finally:
        sdnotify.notify("STOPPING=1")
        if app.running:
            await app.stop()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
        await app.shutdown()
