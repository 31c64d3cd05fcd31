"""Sending to Telegram: its flood limits, priority for people in danger, and retries.

One limiter for every request the bot makes (`PriorityRateLimiter`, PTB's rate-limiter
hook):
- Telegram's limits: about 30 messages a second in all and about one a second to one chat
  (`[limits] telegram_per_second`, `per_chat_per_second`; short bursts to a chat are
  allowed, as Telegram does). `AIORateLimiter` does not keep the per-chat limit, and one
  `RetryAfter` there pauses every request.
- Priority: emergency answers and case cards (`rate_limit_args=URGENT`) are sent before
  everything else that waits, so under a surge the woman in danger is answered first.
- Retries: a 429 waits its `retry_after` (for that chat only, unless it came for all);
  server errors (5xx) and dropped connections are retried, so the message arrives. Telegram
  may have carried out such a request before its answer was lost: then a copy the bot
  has no id of is in the chat. The chat is marked (`UNCERTAIN`), and the next time a
  message id is recorded in it, the ids just below are recorded too, so quick exit deletes
  that copy from her chat (`delivery.record_messages`). A request that timed out while
  waiting for its answer is not retried (it was most likely carried out, and a second copy
  to a frightened person is worse than none); its chat is marked all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

# Priorities travel as PTB's `rate_limit_args`, which drops falsy values: never use 0.
URGENT = 1
NORMAL = 2
RETRY_DELAYS = (0.3, 1.0, 2.5, 5.0)
MAX_RETRY_AFTER = 3
CHAT_BURST = 3
MAX_TRACKED_CHATS = 10_000
JSONDict = dict[str, Any]

# Requests that make a new message in a chat: one whose answer was lost (a 5xx, a dropped
# connection) may have landed all the same, and the bot never learnt its id.
CREATING = {"sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendVideo",
            "sendLocation", "sendAudio", "sendAnimation", "sendSticker", "copyMessage"}
# Chats where that happened since the bot last recorded a message id there (oldest first,
# bounded): `delivery.record_messages` then records the ids just below for deletion.
UNCERTAIN: OrderedDict[int, None] = OrderedDict()

# Requests that count against Telegram's message limits; the rest (answering a button,
# deleting, polling) go straight through.
LIMITED = {"sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendVideo",
           "sendLocation", "sendAudio", "sendAnimation", "sendSticker", "copyMessage",
           "editMessageText", "editMessageReplyMarkup", "editMessageCaption"}


def _mark_uncertain(chat_id: int) -> None:
    UNCERTAIN[chat_id] = None
    UNCERTAIN.move_to_end(chat_id)
    while len(UNCERTAIN) > MAX_TRACKED_CHATS:
        UNCERTAIN.popitem(last=False)


def retry_seconds(retry_after: Any) -> float:
    """`RetryAfter.retry_after` in seconds (PTB gives a number now, a timedelta later)."""
    if isinstance(retry_after, int | float):
        return float(retry_after)
    return float(retry_after.total_seconds())


class PriorityRateLimiter(BaseRateLimiter[int]):
    """Telegram's flood limits with priorities, and retries of what did not land."""

    def __init__(self, per_second: float = 30.0, per_chat_per_second: float = 1.0) -> None:
        self.per_second = per_second
        self.per_chat = per_chat_per_second
        self._tokens = per_second
        self._refilled = time.monotonic()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._sequence = itertools.count()
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._chats: OrderedDict[int, float] = OrderedDict()
        self._paused_until = 0.0

    async def initialize(self) -> None:
        if self.per_second > 0:
            self._dispatcher = asyncio.create_task(self._dispatch())

    async def shutdown(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        for _, _, waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        self._waiters.clear()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def _dispatch(self) -> None:
        """Hand out send slots at the global rate, most urgent first."""
        while True:
            if not self._waiters:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = time.monotonic()
            if now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
                continue
            self._tokens = min(self.per_second,
                               self._tokens + (now - self._refilled) * self.per_second)
            self._refilled = now
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.per_second)
                continue
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                self._tokens -= 1
                waiter.set_result(None)

    async def _global_slot(self, priority: int) -> None:
        if self.per_second <= 0:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._sequence), waiter))
        self._wake.set()
        await waiter

    async def _chat_slot(self, chat_id: int) -> None:
        """One message a second to a chat, with a short burst allowed."""
        if self.per_chat <= 0:
            return
        # The generic cell rate algorithm: each chat's theoretical arrival time moves on by
        # one interval per message; up to CHAT_BURST messages may come at once.
        interval = 1 / self.per_chat
        tolerance = (CHAT_BURST - 1) * interval
        now = time.monotonic()
        arrival = max(self._chats.pop(chat_id, now), now)
        self._chats[chat_id] = arrival + interval
        while len(self._chats) > MAX_TRACKED_CHATS:
            self._chats.popitem(last=False)
        wait = arrival - tolerance - now
        if wait > 0:
            await asyncio.sleep(wait)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        if endpoint == "getUpdates":  # the polling loop has its own back-off
            return await callback(*args, **kwargs)
        priority = NORMAL if rate_limit_args is None else rate_limit_args
        chat_id = data.get("chat_id")
        limited = endpoint in LIMITED
        retries_after = 0
        attempt = 0
        while True:
            if limited:
                if isinstance(chat_id, int):
                    await self._chat_slot(chat_id)
                await self._global_slot(priority)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                retries_after += 1
                if retries_after > MAX_RETRY_AFTER:
                    raise
                wait = retry_seconds(exc.retry_after)
                if not isinstance(chat_id, int):
                    self._paused_until = max(self._paused_until, time.monotonic() + wait)
                log.warning("%s: Telegram asks to wait %.0f s", endpoint, wait)
                await asyncio.sleep(wait)
            except BadRequest:
                raise
            except NetworkError as exc:
                if endpoint in CREATING and isinstance(chat_id, int):
                    _mark_uncertain(chat_id)
                if isinstance(exc, TimedOut) or attempt >= len(RETRY_DELAYS):
                    raise
                delay = RETRY_DELAYS[attempt]
                attempt += 1
                log.warning("%s failed (%s); retry %d in %.1f s", endpoint,
                            type(exc).__name__, attempt, delay)
                await asyncio.sleep(delay)
