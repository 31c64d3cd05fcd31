"""The Application factory: PTB built from the configuration, services wired in post_init."""

from __future__ import annotations

import asyncio
import logging

from telegram.ext import Application, ContextTypes, ExtBot

from bot.core.clock import Clock
from bot.core.config import Settings, require_secret_key
from bot.core.crypto import Crypto
from bot.core.db import create_engine, sessionmaker
from bot.core.outage import DatabaseOutage, pinger
from bot.domain import danger
from bot.domain import staff as staff_service
from bot.telegram import jobs, scheduling
from bot.telegram.commands import set_commands, set_staff_commands
from bot.telegram.context import BotContext, BotData, SezimApp
from bot.telegram.ratelimit import PriorityRateLimiter
from bot.telegram.updates import CONNECTIONS, SezimRequest, UpdatesRequest
from handlers import admin, client, common, staff

log = logging.getLogger(__name__)


async def on_startup(app: SezimApp) -> None:
    """Load the Russian dictionary, open the database, register commands and re-arm every
    due time found in it."""
    data = app.bot_data
    # In a thread while the rest starts: nothing reads a message before polling begins.
    dictionary = asyncio.create_task(asyncio.to_thread(danger.prepare))
    try:
        url, echo = data.settings.database.url, data.settings.database.echo
        data.engine = create_engine(url, echo=echo)
        data.sessions = sessionmaker(data.engine)
        data.outage = DatabaseOutage(pinger(data.sessions))
        async with data.sessions() as session, session.begin():
            await staff_service.sync_roster(session, settings=data.settings)
            await jobs.schedule_shift_starts(session, settings=data.settings,
                                             now=data.clock.now())
        await jobs.ensure_daily_purge(app)
        await set_commands(app)
        async with data.sessions() as session:
            members = await staff_service.list_staff(session)
        for member in members:
            await set_staff_commands(app, data.crypto.decrypt_int(member.tg_id_enc),
                                     member.role_names)
        await scheduling.rearm(app)
        await jobs.resend_undelivered_cards(app)
    finally:
        await dictionary


async def on_shutdown(app: SezimApp) -> None:
    data = app.bot_data
    if data.background:
        await asyncio.wait(set(data.background), timeout=10)
    engine = getattr(data, "engine", None)  # none if the start failed before it
    if engine is not None:
        await engine.dispose()


def build_application(
    settings: Settings,
    *,
    token: str,
    clock: Clock | None = None,
    connection_pool_size: int = CONNECTIONS,
) -> SezimApp:
    """The PTB Application for `settings`, against its configured Bot API server."""
    crypto = Crypto(require_secret_key(settings))
    context_types = ContextTypes(context=BotContext, bot_data=BotData)
    updates_request = UpdatesRequest(
        connection_pool_size=1, read_timeout=settings.telegram.poll_timeout + 15)
    bot: ExtBot[int] = ExtBot(
        token,
        base_url=settings.telegram.base_url,
        base_file_url=settings.telegram.base_file_url,
        request=SezimRequest(connection_pool_size=connection_pool_size, read_timeout=15),
        get_updates_request=updates_request,
        rate_limiter=PriorityRateLimiter(settings.limits.telegram_per_second,
                                         settings.limits.per_chat_per_second),
    )
    app: SezimApp = (
        Application.builder()
        .bot(bot)
        .context_types(context_types)
        # Updates are fetched by our own loop (bot.telegram.polling), which confirms an update only
        # after it was handled: PTB's Updater confirms on fetch and loses it on a crash.
        .updater(None)
        .post_init(on_startup)
        .post_shutdown(on_shutdown)
        .build()
    )
    app.bot_data.configure(settings, clock or Clock(), crypto)
    app.bot_data.updates_request = updates_request

    # Order matters: common's gatekeeping (groups -2, -1) runs before anything else; in
    # group 0 the first matching handler wins, so staff and admin handlers (which match only
    # staff chats) come before the client's journey, which takes the rest.
    common.register(app)
    staff.register(app)
    admin.register(app)
    client.register(app)
    return app
