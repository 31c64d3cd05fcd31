"""The Application factory: PTB built from the configuration, services wired in post_init."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat
from telegram.error import TelegramError
from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot
from telegram.request import BaseRequest, HTTPXRequest

from bot.aiohttp_request import AiohttpRequest
from bot.clock import Clock
from bot.config import LANGUAGES, Settings, require_secret_key
from bot.crypto import Crypto
from bot.db import PriorityLock, create_engine, sessionmaker
from bot.i18n import Texts
from bot.outage import DatabaseOutage, pinger
from bot.services.limits import FloodGuard
from bot.telegram_bot import SezimBot
from bot.transport import PriorityRateLimiter

log = logging.getLogger(__name__)


# How many updates' senders are remembered (far more than are ever in flight).
MAX_ACTORS = 2_000


class BotData:
    """Long-lived services of one running bot (PTB's typed `bot_data`).

    PTB creates it empty; `configure` fills it before the Application starts.
    """

    settings: Settings
    crypto: Crypto
    texts: Texts
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # Long reads and bulk deletes (reports, purge); the same as above on PostgreSQL.
    bulk_engine: AsyncEngine
    bulk_sessions: async_sessionmaker[AsyncSession]
    flood: FloodGuard
    tap_flood: FloodGuard
    outage: DatabaseOutage

    def __init__(self) -> None:
        # Which staff member sent an update (None: not staff), set by the identify handler.
        self.actors: dict[int, int | None] = {}
        # Work that goes on after an update was handled (case cards); awaited at shutdown.
        self.background: set[asyncio.Task[Any]] = set()

    def engines(self) -> list[AsyncEngine]:
        """The database engines opened so far (one, or two on SQLite)."""
        found: list[AsyncEngine] = []
        for engine in (getattr(self, "bulk_engine", None), getattr(self, "engine", None)):
            if engine is not None and engine not in found:
                found.append(engine)
        return found

    def note_actor(self, update_id: int, staff_id: int | None) -> None:
        """Remember who sent `update_id` (a staff id, or None), for a bounded while."""
        self.actors[update_id] = staff_id
        while len(self.actors) > MAX_ACTORS:
            self.actors.pop(next(iter(self.actors)))

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def configure(self, settings: Settings, clock: Clock, crypto: Crypto) -> None:
        self.settings = settings
        self.clock = clock
        self.crypto = crypto
        self.texts = Texts(settings)
        self.flood = FloodGuard(settings.limits.messages_per_minute)
        self.tap_flood = FloodGuard(settings.limits.taps_per_minute)


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """The callback context, with the sender's staff id once the identify handler ran."""

    @property
    def data(self) -> BotData:
        return self.bot_data


# The context type is left open: PTB hands callbacks an Application typed by its own
# type variables, and the typed part that matters here is the bot data.
SezimApp = Application[Any, Any, Any, Any, BotData, Any]

# Quick exit first: the first thing she sees when she opens the menu.
CLIENT_COMMANDS = ("exit", "start", "help", "language", "forget")


async def on_startup(app: SezimApp) -> None:
    """Open the database, register commands and re-arm every due time found in it."""
    data = app.bot_data
    url, echo = data.settings.database.url, data.settings.database.echo
    data.engine = create_engine(url, echo=echo)
    if data.engine.dialect.name == "sqlite":
        # Reports and the nightly purge read or delete many rows: on aiosqlite's thread,
        # so that the loop (and a woman's emergency answer) never waits for them. Writes
        # through either take turns on one lock.
        lock = PriorityLock()
        data.sessions = sessionmaker(data.engine, write_lock=lock)
        data.bulk_engine = create_engine(url, echo=echo, threaded=True)
        data.bulk_sessions = sessionmaker(data.bulk_engine, write_lock=lock)
    else:
        data.sessions = sessionmaker(data.engine)
        data.bulk_engine, data.bulk_sessions = data.engine, data.sessions
    data.outage = DatabaseOutage(pinger(data.sessions))
    from bot import jobs, scheduling
    from bot.services import staff as staff_service

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


async def set_commands(app: SezimApp) -> None:
    """The client's commands in each language; Telegram shows them in the menu."""
    texts = app.bot_data.texts
    for lang in LANGUAGES:
        commands = [BotCommand(c, texts.t(lang, f"cmd_{c}")) for c in CLIENT_COMMANDS]
        try:
            await app.bot.set_my_commands(
                commands, scope=BotCommandScopeAllPrivateChats(),
                language_code=None if lang == "en" else lang,
            )
        except TelegramError as exc:  # commands are a convenience; never block start-up
            log.warning("could not set commands for %s: %s", lang, exc)


# Each role's commands, in the order her menu shows them.
SPECIALIST_COMMANDS = ("duty", "queue", "cases", "reply", "handover", "close", "log",
                       "codeword", "roster")
ROLE_COMMANDS = {
    "psychologist": SPECIALIST_COMMANDS,
    "lawyer": SPECIALIST_COMMANDS,
    "child_psychologist": SPECIALIST_COMMANDS,
    "coordinator": (*SPECIALIST_COMMANDS, "block", "unblock", "stats", "export"),
    "admin": ("staff", "stats", "export", "queue"),
}


def staff_commands(roles: Iterable[str]) -> list[str]:
    """The commands of these roles (each once), then /help and /id."""
    found: list[str] = []
    for role in sorted(roles, key=list(ROLE_COMMANDS).index):
        found.extend(c for c in ROLE_COMMANDS.get(role, ()) if c not in found)
    return [*found, "help", "id"]


async def set_staff_commands(app: SezimApp, chat_id: int, roles: Iterable[str]) -> None:
    """Her own command menu in her chat (staff read the center's default language); none
    of her roles left: back to the client's menu."""
    texts = app.bot_data.texts
    scope = BotCommandScopeChat(chat_id)
    names = staff_commands(roles) if roles else []
    try:
        if names:
            await app.bot.set_my_commands(
                [BotCommand(c, texts.t(None, f"cmd_{c}")) for c in names], scope=scope)
        else:
            await app.bot.delete_my_commands(scope=scope)
    except TelegramError as exc:  # a convenience; never in the way of the work
        log.warning("could not set a staff member's commands: %s", type(exc).__name__)


async def on_shutdown(app: SezimApp) -> None:
    data = app.bot_data
    if data.background:
        await asyncio.wait(set(data.background), timeout=10)
    for engine in data.engines():
        await engine.dispose()


def _transport(settings: Settings, pool: int, *, read_timeout: float) -> BaseRequest:
    if settings.telegram.transport == "aiohttp":
        return AiohttpRequest(connection_pool_size=pool, read_timeout=read_timeout)
    return HTTPXRequest(connection_pool_size=pool, read_timeout=read_timeout)


def build_application(
    settings: Settings,
    *,
    token: str,
    clock: Clock | None = None,
    connection_pool_size: int = 64,
) -> SezimApp:
    """The PTB Application for `settings`, against its configured Bot API server."""
    crypto = Crypto(require_secret_key(settings))
    context_types = ContextTypes(context=BotContext, bot_data=BotData)
    bot = SezimBot(
        token,
        base_url=settings.telegram.base_url,
        base_file_url=settings.telegram.base_file_url,
        request=_transport(settings, connection_pool_size, read_timeout=15),
        get_updates_request=_transport(settings, 1,
                                       read_timeout=settings.telegram.poll_timeout + 15),
        rate_limiter=PriorityRateLimiter(settings.limits.telegram_per_second,
                                         settings.limits.per_chat_per_second),
    )
    app: SezimApp = (
        Application.builder()
        .bot(bot)
        .context_types(context_types)
        # Updates are fetched by our own loop (bot.runner), which confirms an update only
        # after it was handled: PTB's Updater confirms on fetch and loses it on a crash.
        .updater(None)
        .post_init(on_startup)
        .post_shutdown(on_shutdown)
        .build()
    )
    app.bot_data.configure(settings, clock or Clock(), crypto)

    from handlers import admin, client, common, staff

    # Order matters: common's gatekeeping (groups -2, -1) runs before anything else; in
    # group 0 the first matching handler wins, so staff and admin handlers (which match only
    # staff chats) come before the client's journey, which takes the rest.
    common.register(app)
    staff.register(app)
    admin.register(app)
    client.register(app)
    return app
