"""Running the bot: durable long polling (the `run` command, the demo and the tests).

PTB's Updater confirms updates to Telegram as soon as it fetches them, so an update fetched
but not yet handled dies with the process. This loop asks for the next batch (which
confirms the previous one) only after every update of the batch was handled, and records
handled update ids, so an update redelivered after a crash is handled exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from telegram import Update
from telegram.error import Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut

from bot import migrate
from bot.app import SezimApp, build_application
from bot.clock import Clock
from bot.config import ENV_WEBHOOK_SECRET, Settings
from bot.db import create_engine
from models import ProcessedUpdate

log = logging.getLogger(__name__)


async def upgrade_database(settings: Settings) -> None:
    engine = create_engine(settings.database.url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


async def _already_handled(app: SezimApp, update_ids: list[int]) -> set[int]:
    async with app.bot_data.sessions() as session:
        found = await session.scalars(
            select(ProcessedUpdate.update_id).where(ProcessedUpdate.update_id.in_(update_ids))
        )
        return set(found.all())


async def _mark_handled(app: SezimApp, update_ids: list[int]) -> None:
    data = app.bot_data
    try:
        async with data.sessions() as session, session.begin():
            session.add_all([ProcessedUpdate(update_id=u, at=data.clock.now())
                             for u in update_ids])
    except IntegrityError:
        # Another worker recorded some of them too; record the rest one by one.
        for update_id in update_ids:
            with contextlib.suppress(IntegrityError):
                async with data.sessions() as session, session.begin():
                    session.add(ProcessedUpdate(update_id=update_id, at=data.clock.now()))


async def handle_update(app: SezimApp, update: Update) -> None:
    """Handle one update exactly once (errors go to the error handler)."""
    await handle_batch(app, [update], concurrency=1)


def _chat_key(update: Update) -> int:
    if update.effective_chat is not None:
        return int(update.effective_chat.id)
    if update.effective_user is not None:
        return int(update.effective_user.id)
    return -int(update.update_id)


async def handle_batch(app: SezimApp, updates: list[Update], *, concurrency: int) -> None:
    """Handle a batch: different chats at the same time (at most `concurrency`), each chat's
    updates one after another in the order Telegram sent them, so her answers keep order."""
    done = await _already_handled(app, [u.update_id for u in updates])
    fresh = [u for u in updates if u.update_id not in done]
    chats: dict[int, list[Update]] = {}
    for update in fresh:
        chats.setdefault(_chat_key(update), []).append(update)
    gate = asyncio.Semaphore(concurrency)

    async def one_chat(queue: list[Update]) -> None:
        async with gate:
            for update in queue:
                await app.process_update(update)

    await asyncio.gather(*(one_chat(queue) for queue in chats.values()))
    if fresh:
        await _mark_handled(app, [u.update_id for u in fresh])


async def poll(app: SezimApp, stop: asyncio.Event, *, timeout: int) -> None:
    """Long polling that confirms a batch only after handling it."""
    concurrency = app.bot_data.settings.telegram.concurrency
    offset = 0
    delay = 1.0
    while not stop.is_set():
        fetch = asyncio.ensure_future(app.bot.get_updates(
            offset=offset, timeout=timeout, allowed_updates=Update.ALL_TYPES,
            read_timeout=timeout + 10,
        ))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            done, _ = await asyncio.wait({fetch, stopper},
                                         return_when=asyncio.FIRST_COMPLETED)
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
        if updates:
            await handle_batch(app, list(updates), concurrency=concurrency)
            offset = updates[-1].update_id + 1


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
            update = Update.de_json(payload, app.bot)
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400)
        await handle_update(app, update)
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
        webhook = settings.telegram.webhook_url
        if not webhook:
            await app.bot.delete_webhook(drop_pending_updates=False)
        await app.start()
        if on_ready is not None:
            await on_ready(app)
        if webhook:
            secret = os.environ.get(ENV_WEBHOOK_SECRET) or app.bot_data.crypto.webhook_token()
            await serve_webhook(app, stop, secret=secret)
        else:
            log.info("bot started; long polling")
            await poll(app, stop, timeout=settings.telegram.poll_timeout)
    finally:
        if app.running:
            await app.stop()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
        await app.shutdown()
