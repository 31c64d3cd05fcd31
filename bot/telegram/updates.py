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

from telegram import Bot, Update
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

log = logging.getLogger(__name__)
# Updates the library could not read since the process started, by kind (each logged,
# skipped and confirmed).
UNREADABLE: Counter[str] = Counter()
JSONDict = dict[str, Any]


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


class SezimRequest(HTTPXRequest):
    """PTB's HTTP transport; an answer that is not JSON is logged by its size only."""

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


class UpdatesRequest(SezimRequest):
    """The connection getUpdates goes through (PTB's `get_updates_request`).

    `newer_than`: set by the polling loop before each call; updates up to that id are in
    hand already and are left out of the answer.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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
        answer["result"] = kept
        return code, json.dumps(answer).encode()
