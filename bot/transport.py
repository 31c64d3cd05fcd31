"""Sending to Telegram reliably: rate limits, and retries of requests that did not land.

`AIORateLimiter` waits out a 429 (`RetryAfter`) and tries again. This adds retries for
server errors (5xx) and dropped connections, which Telegram answers before it does
anything, so the retry delivers the message once. A request that timed out while waiting
for the answer is not retried: Telegram may have carried it out, and a second copy of a
message to a frightened person is worse than a missing one that the bot re-sends later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.3, 1.0, 2.5, 5.0)
JSONDict = dict[str, Any]


class ResilientRateLimiter(AIORateLimiter):
    """Telegram's flood limits plus retries of 5xx and dropped connections."""

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
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data,
                                                     rate_limit_args)
            except (BadRequest, TimedOut):
                raise
            except NetworkError as exc:
                if delay is None:
                    raise
                log.warning("%s failed (%s); retry %d in %.1f s", endpoint,
                            type(exc).__name__, attempt + 1, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")
