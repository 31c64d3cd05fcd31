"""Sending screens: to clients (recording message ids for deletion) and to staff (cards)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery
from telegram.error import BadRequest, Forbidden, TelegramError

from bot import scheduling
from bot.services.cases import Delivery
from bot.services.screens import Screen
from bot.telegram_bot import SezimBot
from bot.transport import NORMAL, URGENT
from models import CaseOffer, ChatMessage, Client, DueTime, Staff

if TYPE_CHECKING:
    from bot.app import SezimApp

log = logging.getLogger(__name__)

AUTODELETE = "autodelete"
DELETE_WINDOW = timedelta(hours=48)
DELETE_BATCH = 100


# Built once (per dialect): a message id is recorded for nearly every update.
_RECORD_SQLITE = sqlite_insert(cast(Table, ChatMessage.__table__)).on_conflict_do_nothing(
    index_elements=["client_id", "message_id"])
_RECORD_PG = pg_insert(cast(Table, ChatMessage.__table__)).on_conflict_do_nothing(
    index_elements=["client_id", "message_id"])
# A card to a staff member: her chat, then the card's message id (to update it later).
_staff = cast(Table, Staff.__table__).c
_offers = cast(Table, CaseOffer.__table__)
_STAFF_CHAT = select(_staff.tg_id_enc).where(_staff.id == bindparam("staff_id"),
                                             _staff.active.is_(True))
_CARD_SENT = (update(_offers)
              .where(_offers.c.case_id == bindparam("card_case"),
                     _offers.c.staff_id == bindparam("card_staff"))
              .values(message_id=bindparam("message_id")))


def markup(screen: Screen) -> dict[str, Any] | None:
    """The screen's buttons as the Bot API's inline keyboard."""
    if not screen.has_buttons:
        return None
    return {"inline_keyboard": [[{"text": b.label, "callback_data": b.data} for b in row]
                                for row in screen.buttons if row]}


async def side_by_side(*sends: Awaitable[Any]) -> None:
    """Sends to different chats (or a button's answer beside its chat's message) at once.

    Each awaitable keeps its own chat's messages in order; nobody waits for another chat's
    round trips. All of them run to the end, so one failed send never stops the others;
    then the first error, if any, is raised.

    The first goes out at once, in this task: only the others are new tasks, which start
    after everything already waiting for the event loop. Under load that queue holds the
    other chats' updates, so a first send made a task too waited behind all of them (a
    request for help waited 20 ms there, bench/load.py at 200 people).
    """
    if not sends:
        return
    rest = [asyncio.ensure_future(send) for send in sends[1:]]
    error: BaseException | None = None
    try:
        await sends[0]
    except asyncio.CancelledError:
        for task in rest:
            task.cancel()
        raise
    except Exception as exc:  # the others still run to the end
        error = exc
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    if error is None:
        error = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if error is not None:
        raise error


async def answer_button(query: CallbackQuery, text: str | None = None, *,
                        show_alert: bool = False) -> None:
    """Stop a tapped button's spinner (with a short note). Never worth losing the update
    over: if Telegram refuses, the spinner stops by itself."""
    try:
        await query.answer(text, show_alert=show_alert)
    except TelegramError:
        pass


def _bot(app: SezimApp) -> SezimBot:
    bot = app.bot
    assert isinstance(bot, SezimBot)
    return bot


async def send_screen(app: SezimApp, chat_id: int, screen: Screen) -> int:
    """Send a screen; the message's id."""
    return await _bot(app).send_html(chat_id, screen.text, markup(screen),
                                     priority=URGENT if screen.urgent else NORMAL)


async def edit_screen(app: SezimApp, chat_id: int, message_id: int, screen: Screen) -> bool:
    """Replace a message's text and buttons; False if Telegram would not (too old, gone)."""
    try:
        await _bot(app).edit_html(chat_id, message_id, screen.text, markup(screen),
                                  priority=URGENT if screen.urgent else NORMAL)
    except BadRequest as exc:
        if "not modified" in exc.message:
            return True
        return False
    return True


async def record_messages(
    session: AsyncSession, *, client: Client | int, message_ids: Sequence[int], now: datetime,
    app: SezimApp | None = None, auto_delete_minutes: int | None = None,
) -> None:
    """Keep the ids (never the content) of messages in her chat, for quick exit and
    auto-delete; arm auto-delete if she asked for it. One statement on the hot path."""
    client_id = client if isinstance(client, int) else client.id
    minutes = auto_delete_minutes if isinstance(client, int) else client.auto_delete_minutes
    if message_ids:
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        await session.execute(
            _RECORD_SQLITE if dialect == "sqlite" else _RECORD_PG,
            [{"client_id": client_id, "message_id": mid, "sent_at": now}
             for mid in message_ids])
    if minutes:
        pending = await session.scalar(
            select(DueTime.id).where(DueTime.kind == AUTODELETE, DueTime.ref_id == client_id,
                                     DueTime.done_at.is_(None))
        )
        if pending is None:
            due = now + timedelta(minutes=minutes)
            await scheduling.schedule(session, kind=AUTODELETE, ref_id=client_id, due_at=due)
            if app is not None:
                scheduling.arm(app, AUTODELETE, client_id, due)


async def delete_messages(
    app: SezimApp, *, client_id: int, chat_id: int, older_than: datetime | None = None,
) -> int:
    """Delete her chat's recorded messages Telegram still allows (under 48 hours old).

    No transaction is held while Telegram is asked: the ids are read, the messages
    deleted, then the ids forgotten."""
    sessions = app.bot_data.sessions
    query = select(ChatMessage.id, ChatMessage.message_id).where(
        ChatMessage.client_id == client_id)
    if older_than is not None:
        query = query.where(ChatMessage.sent_at <= older_than)
    async with sessions() as session:
        rows = (await session.execute(query.order_by(ChatMessage.message_id))).all()
    ids = [message_id for _, message_id in rows]
    deleted = 0
    for start in range(0, len(ids), DELETE_BATCH):
        batch = ids[start:start + DELETE_BATCH]
        try:
            await app.bot.delete_messages(chat_id, batch)
            deleted += len(batch)
        except Forbidden:
            break  # she blocked the bot: nothing more can be deleted
        except TelegramError as exc:
            log.warning("deleting a batch of %d messages failed: %s", len(batch),
                        type(exc).__name__)
    if rows:
        async with sessions() as session, session.begin():
            await session.execute(
                delete(ChatMessage).where(ChatMessage.id.in_([row_id for row_id, _ in rows]))
            )
    return deleted


async def deliver_to_staff(app: SezimApp, deliveries: Sequence[Delivery]) -> int:
    """Send case cards and alerts to staff; keep each card's message id to update it later."""
    data = app.bot_data
    sent = 0
    for item in deliveries:
        tg_id_enc = item.chat_enc
        if tg_id_enc is None:
            async with data.sessions() as session:
                tg_id_enc = await session.scalar(_STAFF_CHAT, {"staff_id": item.staff_id})
        if tg_id_enc is None:
            continue  # no longer staff
        chat_id = data.crypto.decrypt_int(tg_id_enc)
        try:
            message_id = await send_screen(app, chat_id, item.screen)
        except TelegramError as exc:
            log.warning("card for case %d not delivered to member %d: %s", item.case_id,
                        item.staff_id, type(exc).__name__)
            continue
        sent += 1
        if item.card:
            async with data.sessions() as session, session.begin():
                await session.execute(_CARD_SENT, {"card_case": item.case_id,
                                                   "card_staff": item.staff_id,
                                                   "message_id": message_id})
    return sent
