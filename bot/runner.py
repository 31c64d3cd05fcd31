"""Running the bot: durable long polling (the `run` command, the demo and the tests).

PTB's Updater confirms updates to Telegram as soon as it fetches them, so an update fetched
but not yet handled dies with the process. This loop asks for the next batch (which
confirms the previous one) only after every update of the batch was handled, and records
handled update ids, so an update redelivered after a crash is handled exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from telegram import Update
from telegram.error import Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut

from bot import migrate
from bot.app import SezimApp, build_application
from bot.clock import Clock
from bot.config import Settings
from bot.db import create_engine
from models import ProcessedUpdate

log = logging.getLogger(__name__)


async def upgrade_database(settings: Settings) -> None:
    engine = create_engine(settings.database.url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


async def _already_handled(app: SezimApp, update_id: int) -> bool:
    async with app.bot_data.sessions() as session:
        found = await session.scalar(
            select(ProcessedUpdate.update_id).where(ProcessedUpdate.update_id == update_id)
        )
    return found is not None


async def _mark_handled(app: SezimApp, update_id: int) -> None:
    data = app.bot_data
    try:
        async with data.sessions() as session, session.begin():
            session.add(ProcessedUpdate(update_id=update_id, at=data.clock.now()))
    except IntegrityError:
        pass  # another worker handled it too; the record is what matters


async def handle_update(app: SezimApp, update: Update) -> None:
    """Handle one update exactly once (errors go to the error handler)."""
    if await _already_handled(app, update.update_id):
        return
    await app.process_update(update)
    await _mark_handled(app, update.update_id)


async def poll(app: SezimApp, stop: asyncio.Event, *, timeout: int) -> None:
    """Long polling that confirms a batch only after handling it."""
    offset = 0
    delay = 1.0
    while not stop.is_set():
        fetch = asyncio.ensure_future(app.bot.get_updates(
            offset=offset, timeout=timeout, allowed_updates=Update.ALL_TYPES,
            read_timeout=timeout + 10,
        ))
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({fetch, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if fetch not in done:
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetch
            break
        stopper.cancel()
        try:
            updates = fetch.result()
        except (InvalidToken, Forbidden):
            raise
        except RetryAfter as exc:
            await asyncio.sleep(float(exc.retry_after if isinstance(exc.retry_after, int | float)
                                      else exc.retry_after.total_seconds()))
            continue
        except (NetworkError, TimedOut) as exc:
            log.warning("getUpdates failed (%s); retrying in %.0f s", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            continue
        delay = 1.0
        for update in updates:
            await handle_update(app, update)
            offset = update.update_id + 1


async def serve(
    settings: Settings,
    *,
    token: str,
    stop: asyncio.Event,
    clock: Clock | None = None,
    on_ready: Callable[[SezimApp], Awaitable[None]] | None = None,
    upgrade: bool = True,
) -> None:
    """Upgrade the database, start the bot, poll until `stop` is set, shut down cleanly."""
    if upgrade:
        await upgrade_database(settings)
    app = build_application(settings, token=token, clock=clock)
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        await app.bot.delete_webhook(drop_pending_updates=False)
        await app.start()
        log.info("bot started; polling %s", settings.telegram.base_url.split("/bot")[0])
        if on_ready is not None:
            await on_ready(app)
        await poll(app, stop, timeout=settings.telegram.poll_timeout)
    finally:
        if app.running:
            await app.stop()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
        await app.shutdown()
