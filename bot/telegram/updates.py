"""Reading updates: one the library cannot read must not stop the bot nor leak her words.

PTB reads every update of a getUpdates answer at once; one it cannot read (a field missing
or of another type, from an older or newer Bot API server) makes the whole call fail, again
after every restart, and PTB logs the answer, message texts and all. So the answer is
looked at first, on its way in through `UpdatesRequest` (PTB's public transport hook): an
update that cannot be read goes on as an empty update with its id, which no handler takes
and which is confirmed like any other; logged by id and kind only.

Every answer of the Bot API goes through `SezimRequest`: one that is not JSON is an error that
names nothing of its content (PTB's own parser logs it whole, and it could hold a message's
text).

On the way in, updates the bot already has in hand (the polling loop asks again from
its oldest unfinished one, see `bot.telegram.polling`) are dropped before PTB reads them.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import aiohttp
from telegram import Bot, Update
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

log = logging.getLogger(__name__)
# Updates the library could not read since the process started, by kind (each logged,
# skipped and confirmed).
UNREADABLE: Counter[str] = Counter()
JSONDict = dict[str, Any]
JSON_BODY = {"Content-Type": "application/json"}
# Connections to the Bot API open at once: PTB's own default (`HTTPXRequest`). One request
# for help sends a card to every specialist on duty while other people are answered; with
# 16, a burst of 46 requests in flight (bench/load.py, 20 people) had the rest wait for a
# free connection, behind the cards: over a real network, a round trip each time.
CONNECTIONS = 256


def readable(raw: JSONDict) -> JSONDict:
    """`raw` if PTB can read it as an update, else an empty update with its id."""
    try:
        Update.de_json(raw, None)
        return raw
    except Exception as exc:  # noqa: BLE001 - whatever the library raises on it
        kind = next((key for key in raw if key != "update_id"), "empty")
        UNREADABLE[kind] += 1
        log.warning("update %d (%s) could not be read (%s): skipped; %d so far",
                    int(raw["update_id"]), kind, type(exc).__name__, UNREADABLE.total())
        return {"update_id": int(raw["update_id"])}


def read_update(raw: JSONDict, bot: Bot) -> Update:
    """One update (a webhook's) as PTB reads it, or an empty one with its id (`readable`)."""
    return Update.de_json(readable(raw), bot)


class SezimRequest(BaseRequest):
    """PTB's transport hook (`BaseRequest`) on one shared aiohttp session: the bot's
    requests cost a third less CPU than through PTB's httpx transport, whose connection
    pool scans every connection on every request (bench/load.py, docs/performance.md).
    Errors map to PTB's own (time-outs to `TimedOut`, the rest on the way to
    `NetworkError`), so the limiter's retries and the error handler work the same. An
    answer that is not JSON is logged by its size only."""

    def __init__(self, *, connection_pool_size: int = CONNECTIONS, read_timeout: float = 15.0,
                 connect_timeout: float = 5.0) -> None:
        self.pool_size = connection_pool_size
        self.default_read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self.session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self.default_read_timeout

    async def initialize(self) -> None:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_size),
                headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self.session is not None and not self.session.closed:
            await self.session.close()
        self.session = None

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        try:
            answer = json.loads(payload.decode("utf-8", "replace"))
        except ValueError:
            log.error("the Bot API answered with something that is not JSON (%d bytes)",
                      len(payload))
            raise TelegramError("Invalid server response") from None
        if not isinstance(answer, dict):
            raise TelegramError("Invalid server response")
        return answer

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = BaseRequest.DEFAULT_NONE,
                         write_timeout: Any = BaseRequest.DEFAULT_NONE,
                         connect_timeout: Any = BaseRequest.DEFAULT_NONE,
                         pool_timeout: Any = BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        if self.session is None or self.session.closed:
            raise RuntimeError("the Bot API connection is not open")
        read = read_timeout if isinstance(read_timeout, int | float) or read_timeout is None \
            else self.default_read_timeout
        connect = connect_timeout if isinstance(connect_timeout, int | float) \
            else self.connect_timeout
        timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_read=read)
        data: Any = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            if request_data.contains_files:
                form = aiohttp.FormData()
                for key, value in request_data.json_parameters.items():
                    form.add_field(key, value)
                for name, part in request_data.multipart_data.items():
                    mimetype = part[2] if len(part) > 2 else None
                    form.add_field(name, part[1], filename=part[0], content_type=mimetype)
                data = form
            else:
                # One JSON body (the Bot API takes JSON): cheaper to build than a form.
                data = json.dumps(request_data.parameters)
                headers = JSON_BODY
        try:
            async with self.session.request(method, url, data=data, timeout=timeout,
                                            headers=headers) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


class UpdatesRequest(SezimRequest):
    """The connection getUpdates goes through (PTB's `get_updates_request`).

    `newer_than`: set by the polling loop before each call; updates up to that id are in
    hand already and are left out of the answer.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.newer_than: int | None = None

    async def do_request(self, url: str, method: str, *args: Any,
                         **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(url, method, *args, **kwargs)
        if code != 200 or not url.endswith("/getUpdates"):
            return code, payload
        try:
            answer = json.loads(payload)
            result = answer["result"]
        except (ValueError, KeyError, TypeError):
            return code, payload  # `parse_json_payload` reports what is wrong with it
        if not isinstance(result, list):
            return code, payload
        kept = []
        for raw in result:
            if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
                continue  # not an update at all: nothing to confirm it by
            if self.newer_than is not None and raw["update_id"] <= self.newer_than:
                continue
            kept.append(readable(raw))
        if len(kept) == len(result) and all(a is b for a, b in zip(kept, result, strict=True)):
            return code, payload  # nothing left out or replaced: the answer as it came
        answer["result"] = kept
        return code, json.dumps(answer).encode()
