"""Cross-cutting handlers: what reaches the bot at all, who is speaking, and errors."""

from __future__ import annotations

import logging
from collections import Counter

from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, TypeHandler, filters

from bot.core.outage import is_outage
from bot.domain import callbacks as cb
from bot.domain import clients
from bot.domain import staff as staff_service
from bot.telegram.context import BotContext, BotData, SezimApp
from bot.telegram.delivery import answer_button, keep_for_deletion, say_to_chat

log = logging.getLogger(__name__)

GATE_GROUP = -2
IDENTIFY_GROUP = -1


class StaffFilter(filters.UpdateFilter):
    """Matches updates from an active staff member (looked up by the identify handler)."""

    def __init__(self, data: BotData) -> None:
        super().__init__(name="StaffFilter")
        self._data = data

    def filter(self, update: Update) -> bool:
        return self._data.actors.get(update.update_id) is not None


async def gate(update: Update, context: BotContext) -> None:
    """Let only private chats through; keep floods calm and bounded."""
    chat = update.effective_chat
    if chat is None:
        raise ApplicationHandlerStop
    if chat.type != ChatType.PRIVATE:
        # The bot is for private conversations only; it leaves groups it is added to.
        if chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
            try:
                await context.bot.leave_chat(chat.id)
            except TelegramError:
                pass
        raise ApplicationHandlerStop
    user = update.effective_user
    if user is None or user.is_bot:
        raise ApplicationHandlerStop
    # Taps come faster than typing (eleven screen questions in a row), so they have their
    # own, wider window.
    data = context.bot_data
    if is_exit(update):
        return  # quick exit is never held back, however fast she taps
    guard = data.tap_flood if update.callback_query is not None else data.flood
    if not guard.allow(user.id):
        message = update.message
        if message is not None:
            # Not answered, but in her chat all the same: quick exit must find it.
            await keep_for_deletion(context.application, chat.id, [message.message_id])
        if guard.should_warn(user.id):
            # In the language she chose, not her phone's (once per flood: one read).
            async with data.sessions() as session:
                language = await clients.language_of(session, crypto=data.crypto,
                                                     chat_id=chat.id)
            await say_to_chat(context.application, chat.id,
                              data.texts.t(language or user.language_code, "slow_down"))
        if update.callback_query is not None:
            await answer_button(update.callback_query)
        raise ApplicationHandlerStop


def is_exit(update: Update) -> bool:
    """Quick exit, by its button or /exit."""
    if update.callback_query is not None:
        return isinstance(cb.decode(update.callback_query.data), cb.Exit)
    message = update.message
    return message is not None and (message.text or "").strip().split("@")[0] == "/exit"


async def identify(update: Update, context: BotContext) -> None:
    """Look the sender up among active staff, once per update (the runner looks up a whole
    batch's senders at once; this covers the rest)."""
    user = update.effective_user
    data = context.bot_data
    if user is None or update.update_id in data.actors:
        return
    async with data.sessions() as session:
        staff_id = await staff_service.active_staff_id(session, data.crypto, user.id)
    data.note_actor(update.update_id, staff_id)


# Updates whose handling raised since the process started, by kind.
FAILED: Counter[str] = Counter()


def _kind(update: Update) -> str:
    """What an update is (a message, a button...), for a log line: never its content."""
    if update.callback_query is not None:
        return "callback_query"
    if update.effective_message is not None:
        return "message"
    return next((key for key, value in update.to_dict().items()
                 if key != "update_id" and value), "empty")


async def on_error(update: object, context: BotContext) -> None:
    """Log without personal data; tell the person something useful."""
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    if is_outage(error):
        # Not a bug: the database is away. The update is handled again once it is back
        # (bot/telegram/polling.py), so she is told nothing now and nothing is lost.
        outage = getattr(context.bot_data, "outage", None)
        if outage is not None and update_id is not None:
            outage.failed.add(update_id)
        log.warning("update %s waits: the database cannot be reached (%s)", update_id,
                    type(error).__name__)
        return
    kind = _kind(update) if isinstance(update, Update) else "none"
    FAILED[kind] += 1
    log.error("update %s (%s) failed: %s; %d so far", update_id, kind, type(error).__name__,
              FAILED.total(), exc_info=error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.effective_chat.type != ChatType.PRIVATE:
        return
    texts = context.bot_data.texts
    user = update.effective_user
    try:
        await say_to_chat(context.application, update.effective_chat.id,
                          texts.t(user.language_code if user else None, "error"))
    except Exception:  # the database may be what failed: the answer is sent regardless
        log.warning("the error answer could not be recorded for deletion")


def register(app: SezimApp) -> None:
    # Group -2 before everything: drops what is not for this bot and floods.
    app.add_handler(TypeHandler(Update, gate), group=GATE_GROUP)
    # Group -1: who is speaking, for the staff filter of group 0.
    app.add_handler(TypeHandler(Update, identify), group=IDENTIFY_GROUP)
    app.add_error_handler(on_error)
