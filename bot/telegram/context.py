"""What every handler and job is handed: the bot's long-lived services (`BotData`), the
callback context and the Application's type."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram.ext import Application, CallbackContext, ExtBot

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.crypto import Crypto
from bot.core.i18n import Texts
from bot.core.outage import DatabaseOutage
from bot.domain.limits import FloodGuard
from bot.telegram.updates import UpdatesRequest

T = TypeVar("T")

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
    flood: FloodGuard
    tap_flood: FloodGuard
    outage: DatabaseOutage
    # getUpdates' own connection (the polling loop tells it what is in hand already).
    updates_request: UpdatesRequest

    def __init__(self) -> None:
        # Which staff member sent an update (None: not staff), set by the identify handler.
        self.actors: dict[int, int | None] = {}
        # Work that goes on after an update was handled (case cards); awaited at shutdown.
        self.background: set[asyncio.Task[Any]] = set()

    def note_actor(self, update_id: int, staff_id: int | None) -> None:
        """Remember who sent `update_id` (a staff id, or None), for a bounded while."""
        self.actors[update_id] = staff_id
        while len(self.actors) > MAX_ACTORS:
            self.actors.pop(next(iter(self.actors)))

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Work beside the update being handled, begun after what it already began: its
        sends' bodies go out first (`after_a_turn`)."""
        task = asyncio.create_task(after_a_turn(work))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def configure(self, settings: Settings, clock: Clock, crypto: Crypto) -> None:
        self.settings = settings
        self.clock = clock
        self.crypto = crypto
        self.texts = Texts(settings)
        self.flood = FloodGuard(settings.limits.messages_per_minute)
        self.tap_flood = FloodGuard(settings.limits.taps_per_minute)


async def after_a_turn(work: Awaitable[T]) -> T:
    """`work`, begun one turn of the event loop from now. aiohttp writes a request's body
    from a task of its own (on Python 3.11), queued when the request began: work begun a
    turn later lets that body go out before it runs."""
    await asyncio.sleep(0)
    return await work


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """The callback context, with the sender's staff id once the identify handler ran."""

    @property
    def data(self) -> BotData:
        return self.bot_data


# The context type is left open: PTB hands callbacks an Application typed by its own
# type variables, and the typed part that matters here is the bot data.
SezimApp = Application[Any, Any, Any, Any, BotData, Any]
