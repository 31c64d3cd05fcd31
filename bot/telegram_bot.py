"""PTB's bot, with the calls the bot makes for nearly every update made lighter.

- Sent or edited messages: Telegram answers with the whole message; PTB turns it into
  objects (the chat, the sender, the keyboard, the entities), about a seventh of the bot's
  time under load (bench/load.py) when all the bot needs is the message id. `send_html`
  and `edit_html` take PTB's own path (defaults, the request, the rate limiter with its
  priorities, errors as `TelegramError`s) and leave the answer as it came; their buttons
  go as the Bot API's JSON, not as PTB objects built only to be turned back into it.
- Fetched updates: those the bot already has in hand (it asks again from its oldest
  unfinished one, see bot/runner.py) are dropped unparsed. A tapped button's update
  carries the whole message it was under, keyboard and all. The bot never reads that
  keyboard (it checks the tap against her current menu in the database), so it is dropped
  before PTB parses the update: a third of the parsing of a tap.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import JSONDict, ODVInput, TimePeriod
from telegram.constants import ParseMode
from telegram.ext import ExtBot

log = logging.getLogger(__name__)
# Updates the library could not read since the process started, by kind (each logged,
# skipped and confirmed).
UNREADABLE: Counter[str] = Counter()


class SezimBot(ExtBot[int]):
    async def send_html(self, chat_id: int, text: str, markup: JSONDict | None,
                        *, priority: int) -> int:
        """sendMessage with HTML; the new message's id."""
        result: Any = await self._post(
            "sendMessage",
            {"chat_id": chat_id, "text": text, "parse_mode": ParseMode.HTML,
             "reply_markup": markup},
            api_kwargs=self._merge_api_rl_kwargs(None, priority),
        )
        return int(result["message_id"])

    async def edit_html(self, chat_id: int, message_id: int, text: str,
                        markup: JSONDict | None, *, priority: int) -> None:
        """editMessageText with HTML (and the buttons, or none)."""
        await self._post(
            "editMessageText",
            {"chat_id": chat_id, "message_id": message_id, "text": text,
             "parse_mode": ParseMode.HTML, "reply_markup": markup},
            api_kwargs=self._merge_api_rl_kwargs(None, priority),
        )

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: TimePeriod | None = None,
        allowed_updates: Sequence[str] | None = None,
        *,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
        api_kwargs: JSONDict | None = None,
        newer_than: int | None = None,
    ) -> tuple[Update, ...]:
        """getUpdates as PTB makes it, without the keyboards of tapped messages (unread).
        Arbitrary callback data is not used here, so there is none to insert. With
        `newer_than`, updates up to that id (the bot has them already) are left unparsed."""
        base = self._request[0].read_timeout if read_timeout is DEFAULT_NONE else read_timeout
        wait = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        result = cast("list[JSONDict]", await self._post(
            "getUpdates",
            {"timeout": timeout, "offset": offset, "limit": limit,
             "allowed_updates": allowed_updates},
            read_timeout=float(cast(float, base) or 0) + float(cast(float, wait) or 0),
            write_timeout=write_timeout, connect_timeout=connect_timeout,
            pool_timeout=pool_timeout, api_kwargs=api_kwargs,
        ))
        if newer_than is not None:
            result = [raw for raw in result if raw["update_id"] > newer_than]
        updates = []
        for raw in result:
            query = raw.get("callback_query")
            message = query.get("message") if isinstance(query, dict) else None
            if isinstance(message, dict):
                message.pop("reply_markup", None)
            updates.append(self.read_update(raw))
        return tuple(updates)

    def read_update(self, raw: JSONDict) -> Update:
        """One update as PTB reads it. One it cannot read (a field missing or of another
        type, from an older or newer Bot API server) must not stop the bot nor come back
        after every restart: it goes on as an empty update with its id, which no handler
        takes and which is confirmed like any other. Logged by id and kind only."""
        try:
            return Update.de_json(raw, self)
        except Exception as exc:  # noqa: BLE001 - whatever the library raises on it
            update_id = int(raw["update_id"])
            kind = next((key for key in raw if key != "update_id"), "empty")
            UNREADABLE[kind] += 1
            log.warning("update %d (%s) could not be read (%s): skipped; %d so far",
                        update_id, kind, type(exc).__name__, UNREADABLE.total())
            return Update(update_id)
