"""The baseline: a stock python-telegram-bot echo bot (httpx, run_polling, defaults).

    python bench/echo_bot.py BASE_URL TOKEN

Answers text with the same text and button presses with an answer, nothing else.
"""

from __future__ import annotations

import sys

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the text back."""
    if update.effective_message is not None and update.effective_message.text:
        await update.effective_message.reply_text(update.effective_message.text)


async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop the button's spinner."""
    if update.callback_query is not None:
        await update.callback_query.answer()


def main() -> None:
    base_url, token = sys.argv[1], sys.argv[2]
    app = Application.builder().token(token).base_url(base_url).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.add_handler(CallbackQueryHandler(answer))
    app.run_polling(timeout=1, poll_interval=0)


if __name__ == "__main__":
    main()
