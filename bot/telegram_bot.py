"""PTB's bot with two calls whose answer is kept as the JSON Telegram sent.

Telegram answers a sent or edited message with the whole message; PTB turns it into
objects (the chat, the sender, the keyboard, the entities), about a seventh of the bot's
time under load (bench/load.py) when all the bot needs is the message id. These two calls
take PTB's own path (defaults, the request, the rate limiter with its priorities, errors
as `TelegramError`s); only the answer is left as it came.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.ext import ExtBot


class SezimBot(ExtBot[int]):
    async def send_html(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None,
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
                        markup: InlineKeyboardMarkup | None, *, priority: int) -> None:
        """editMessageText with HTML (and the buttons, or none)."""
        await self._post(
            "editMessageText",
            {"chat_id": chat_id, "message_id": message_id, "text": text,
             "parse_mode": ParseMode.HTML, "reply_markup": markup},
            api_kwargs=self._merge_api_rl_kwargs(None, priority),
        )
