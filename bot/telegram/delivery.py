"""Sending screens: to clients (recording message ids for deletion) and to staff (cards).

Data access: Core-style statements on the mapped classes' columns, run on the session's
connection (`db.run`), built where they run (the two dialects' record INSERTs, constants,
once); rows unpacked, never entities.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.core import db
from bot.core.clock import aware
from bot.domain import due as due_times
from bot.domain.cases import Delivery
from bot.domain.screens import Screen
from bot.telegram import scheduling
from bot.telegram.context import after_a_turn
from bot.telegram.ratelimit import NORMAL, UNCERTAIN, URGENT
from models import CaseOffer, ChatMessage, Client, DueTime, Staff

if TYPE_CHECKING:
    from bot.telegram.context import SezimApp

log = logging.getLogger(__name__)

AUTODELETE = "autodelete"
DELETE_WINDOW = timedelta(hours=48)
DELETE_BATCH = 100


# Built once (per dialect), without parameters: a message id is recorded for nearly every
# update.
_RECORD_SQLITE = sqlite_insert(ChatMessage).on_conflict_do_nothing(
    index_elements=["client_id", "message_id"])
_RECORD_PG = pg_insert(ChatMessage).on_conflict_do_nothing(
    index_elements=["client_id", "message_id"])


def _staff_chat(staff_id: int) -> Select[bytes]:
    """Her Telegram id, encrypted, while she is active staff: where her cards go."""
    return select(Staff.tg_id_enc).where(Staff.id == staff_id, Staff.active.is_(True))


def markup(screen: Screen) -> InlineKeyboardMarkup | None:
    """The screen's buttons as an inline keyboard."""
    if not screen.has_buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
         for row in screen.buttons if row])


async def side_by_side(*sends: Awaitable[Any]) -> None:
    """Sends to different chats (or a button's answer beside its chat's message) at once.

    Each awaitable keeps its own chat's messages in order; nobody waits for another chat's
    round trips. All of them run to the end, so one failed send never stops the others;
    then the first error, if any, is raised.

    The first goes out at once, in this task: only the others are new tasks, which start
    after everything already waiting for the event loop. Under load that queue holds the
    other chats' updates, so a first send made a task too waited behind all of them (a
    request for help waited 20 ms there, bench/load.py at 200 people). The others begin
    one turn of the loop later (`after_a_turn`), so the first one's body goes out before
    their work.
    """
    if not sends:
        return
    rest = [asyncio.ensure_future(after_a_turn(send)) for send in sends[1:]]
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
    over: if Telegram refuses, the spinner stops by itself. A note is plain text (Telegram
    shows no formatting there): the texts' tags are taken out."""
    if text is not None:
        text = html.unescape(re.sub(r"</?[a-z]+>", "", text))[:200]
    try:
        await query.answer(text, show_alert=show_alert)
    except TelegramError:
        pass


async def send_screen(app: SezimApp, chat_id: int, screen: Screen) -> int:
    """Send a screen; the message's id."""
    message: Message = await app.bot.send_message(
        chat_id, screen.text, parse_mode=ParseMode.HTML, reply_markup=markup(screen),
        rate_limit_args=URGENT if screen.urgent else NORMAL)
    return message.message_id


async def edit_screen(app: SezimApp, chat_id: int, message_id: int, screen: Screen) -> bool:
    """Replace a message's text and buttons; False if Telegram would not (too old, gone)."""
    try:
        await app.bot.edit_message_text(
            screen.text, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML,
            reply_markup=markup(screen), rate_limit_args=URGENT if screen.urgent else NORMAL)
    except BadRequest as exc:
        if "not modified" in exc.message:
            return True
        return False
    return True


# How many ids below a message are recorded when a send to her chat may have landed
# unanswered before it: Telegram's 30 messages a second over the transport's 9 s of
# retries, and room for messages coming in meanwhile (should ids count across chats).
UNCERTAIN_WINDOW = 1000


async def record_messages(
    session: AsyncSession, *, client: Client | int, message_ids: Sequence[int], now: datetime,
    app: SezimApp | None = None, auto_delete_minutes: int | None = None,
    chat_id: int | None = None,
) -> None:
    """Keep the ids (never the content) of messages in her chat, for quick exit and
    auto-delete; arm auto-delete if she asked for it. One statement on the hot path.
    With `chat_id`: if a send there may have landed without the bot learning its id
    (`ratelimit.UNCERTAIN`), the ids just below these are kept too (Telegram skips those
    that are not in her chat when deleting)."""
    client_id = client if isinstance(client, int) else client.id
    minutes = auto_delete_minutes if isinstance(client, int) else client.auto_delete_minutes
    if message_ids and chat_id is not None and chat_id in UNCERTAIN:
        del UNCERTAIN[chat_id]
        lowest = min(message_ids)
        message_ids = [*range(max(1, lowest - UNCERTAIN_WINDOW), lowest), *message_ids]
    if message_ids:
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        await db.run(session, _RECORD_SQLITE if dialect == "sqlite" else _RECORD_PG,
                     [{"client_id": client_id, "message_id": mid, "sent_at": now}
                      for mid in message_ids])
    if minutes:
        pending = (await db.run(session, select(DueTime.id).where(
            DueTime.kind == AUTODELETE, DueTime.ref_id == client_id,
            DueTime.done_at.is_(None)))).scalar()
        if pending is None:
            due = now + timedelta(minutes=minutes)
            await due_times.schedule(session, kind=AUTODELETE, ref_id=client_id, due_at=due)
            if app is not None:
                scheduling.arm(app, AUTODELETE, client_id, due)


REDELETE = "redelete"


def retry_delay(tries: int) -> timedelta:
    """How long a failed deletion waits before it is tried again (5 s doubling, at most
    10 min): within Telegram's 48 hours there are many tries."""
    return timedelta(seconds=min(600, 5 * 2 ** max(0, tries - 1)))


async def delete_messages(
    app: SezimApp, *, client_id: int, chat_id: int, older_than: datetime | None = None,
    only_failed: bool = False,
) -> int:
    """Delete her chat's recorded messages (all, or those older than `older_than`, or with
    `only_failed` those whose deletion failed before).

    deleteMessages in batches; a batch Telegram refuses as a whole is deleted one by one.
    An id is forgotten only when its message is gone (deleted, or Telegram says it cannot
    be: not found, or she blocked the bot) or past the 48 hours Telegram allows; one that
    failed for a passing reason (5xx, the network) stays and is retried with backoff.
    No transaction is held while Telegram is asked. Returns how many are still to go."""
    data = app.bot_data
    now = data.clock.now()
    query = select(ChatMessage.id, ChatMessage.message_id, ChatMessage.sent_at,
                   ChatMessage.tries).where(ChatMessage.client_id == client_id)
    if older_than is not None:
        query = query.where(ChatMessage.sent_at <= older_than)
    if only_failed:
        query = query.where(ChatMessage.tries > 0)
    async with data.sessions() as session:
        rows = (await db.run(session, query.order_by(ChatMessage.message_id))).all()
    row_of = {int(message_id): int(row_id) for row_id, message_id, _, _ in rows}
    too_old = {int(m) for _, m, sent_at, _ in rows if now - aware(sent_at) >= DELETE_WINDOW}
    ids = [int(m) for _, m, _, _ in rows if int(m) not in too_old]
    gone: set[int] = set(too_old)
    failed: set[int] = set()
    blocked = False
    for start in range(0, len(ids), DELETE_BATCH):
        batch = ids[start:start + DELETE_BATCH]
        if blocked:
            gone.update(batch)
            continue
        try:
            await app.bot.delete_messages(chat_id, batch)
            gone.update(batch)
        except Forbidden:
            blocked = True  # she blocked the bot: nothing of hers can be deleted any more
            gone.update(batch)
        except BadRequest:
            for message_id in batch:
                outcome = await _delete_one(app, chat_id, message_id)
                (gone if outcome else failed).add(message_id)
        except TelegramError as exc:
            log.warning("deleting %d message(s) failed, will retry: %s", len(batch),
                        type(exc).__name__)
            failed.update(batch)
    if not rows:
        return 0
    async with data.sessions() as session, session.begin():
        if gone:
            await db.run(session, delete(ChatMessage).where(
                ChatMessage.id.in_([row_of[m] for m in gone])))
        if failed:
            tries = 1 + min(int(t) for _, m, _, t in rows if int(m) in failed)
            due = await _retry_later(session, client_id=client_id, message_ids=failed,
                                     tries=tries, now=now)
    if failed:
        scheduling.arm(app, REDELETE, client_id, due)
    return len(failed)


# How far below her quick exit's neutral word the chat is swept for messages the bot never
# learnt the id of.
SWEEP = 300


async def sweep_chat(app: SezimApp, *, client_id: int, chat_id: int, below: int,
                     failing: bool = False, uncertain: bool = False) -> None:
    """After quick exit or /forget: delete every message id in her chat just below `below`
    (the neutral word), whether recorded or not. A send that Telegram carried out but whose
    answer was lost (a 5xx after the fact, a dropped connection) left a message whose id
    the bot never learnt; its id is among these. Telegram skips ids that are not in her
    chat, and everything in it is hers to have deleted. Batches that fail for a passing
    reason are recorded and retried like any failed deletion, while her record exists;
    `failing` (Telegram has just failed her deletions) records them all for then at once.
    `uncertain`: a send to her chat may have landed unanswered (`ratelimit.UNCERTAIN`):
    the wider window below is swept, and its ids no longer kept once swept."""
    window = UNCERTAIN_WINDOW if uncertain else SWEEP
    ids = list(range(max(1, below - window), below))
    failed: list[int] = ids if failing else []
    for start in range(0, 0 if failing else len(ids), DELETE_BATCH):
        batch = ids[start:start + DELETE_BATCH]
        try:
            await app.bot.delete_messages(chat_id, batch)
        except Forbidden:
            return  # she blocked the bot: nothing can be deleted
        except BadRequest:
            log.warning("sweeping her chat: a batch was refused")
        except TelegramError as exc:
            log.warning("sweeping her chat failed, will retry: %s", type(exc).__name__)
            failed.extend(batch)
    data = app.bot_data
    if not failed:
        if uncertain:
            async with data.sessions() as session, session.begin():
                await db.run(session, delete(ChatMessage).where(
                    ChatMessage.client_id == client_id, ChatMessage.message_id < below,
                    ChatMessage.message_id >= below - window, ChatMessage.tries == 0))
        return
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        found = await db.run(session, select(Client.id).where(Client.id == client_id))
        if found.scalar() is None:
            return
        await record_messages(session, client=client_id, message_ids=failed, now=now,
                              auto_delete_minutes=None)
        due = await _retry_later(session, client_id=client_id, message_ids=failed, tries=1,
                                 now=now)
    scheduling.arm(app, REDELETE, client_id, due)


async def _retry_later(session: AsyncSession, *, client_id: int, message_ids: Iterable[int],
                       tries: int, now: datetime) -> datetime:
    """Recorded messages whose deletion just failed: one more try counted on each, and the
    due time of the next (the caller arms it once this transaction is committed)."""
    await db.run(session, update(ChatMessage).where(
        ChatMessage.client_id == client_id, ChatMessage.message_id.in_(list(message_ids)))
        .values(tries=ChatMessage.tries + 1))
    due = now + retry_delay(tries)
    await due_times.schedule(session, kind=REDELETE, ref_id=client_id, due_at=due)
    return due


async def delete_now(app: SezimApp, *, client_id: int, chat_id: int, message_id: int) -> None:
    """Delete one recorded message of hers at once (should that fail, quick exit and
    auto-delete still have its id)."""
    if await _delete_one(app, chat_id, message_id):
        async with app.bot_data.sessions() as session, session.begin():
            await db.run(session, delete(ChatMessage).where(
                ChatMessage.client_id == client_id, ChatMessage.message_id == message_id))


async def _delete_one(app: SezimApp, chat_id: int, message_id: int) -> bool:
    """deleteMessage for one id: True if it is gone (or can never be deleted), False if
    it should be tried again."""
    try:
        await app.bot.delete_message(chat_id, message_id)
    except (BadRequest, Forbidden):
        return True  # not found, too old, or she blocked the bot
    except TelegramError as exc:
        log.warning("deleting a message failed, will retry: %s", type(exc).__name__)
        return False
    return True


@dataclass(frozen=True)
class SentBefore:
    """What a message to her knew of her record when it was sent off: when she last left
    with quick exit. Should that change (or her record go) before it lands, it is deleted."""

    exited_at: datetime | None


def _same_time(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return aware(a) == aware(b)


# Her record by her chat (under any configured key), as a message just sent there needs it.
_KEPT_BY = select(Client.id, Client.auto_delete_minutes, Client.exited_at, Client.erased) \
    .where(Client.chat_hmac.in_(bindparam("lookups", expanding=True)))


async def keep_for_deletion(
    app: SezimApp, chat_id: int, message_ids: Sequence[int], *,
    sent: SentBefore | None = None,
    along: Callable[[AsyncSession, int], Awaitable[object]] | None = None,
) -> bool:
    """Record messages in a private chat for quick exit and auto-delete, if the chat is a
    client's (nothing is created for a stranger). With `sent`: if she left with quick exit
    or erased her record while the message was on its way, it is deleted at once instead,
    so nothing arrives behind her exit. False if so. `along(session, client_id)`: what
    else is written with the record, in its transaction, when the messages stay (her new
    menu, a relay link).

    A read, then (for a client's chat) one transaction; only when they arrived behind her
    exit is Telegram asked to delete them, between the two. A stranger's chat takes no
    write turn."""
    if not message_ids:
        return True
    data = app.bot_data
    now = data.clock.now()
    async with data.sessions() as session:
        row = (await db.run(session, _KEPT_BY,
                            {"lookups": data.crypto.lookups(chat_id)})).first()
    client_id, auto_delete_minutes, exited_at, erased = row if row is not None else \
        (None, None, None, True)
    behind_exit = sent is not None and (erased or not _same_time(exited_at, sent.exited_at))
    if not behind_exit:
        if client_id is not None:
            async with data.sessions() as session, session.begin():
                await record_messages(session, client=client_id, message_ids=message_ids,
                                      now=now, app=app,
                                      auto_delete_minutes=auto_delete_minutes,
                                      chat_id=chat_id)
                if along is not None:
                    await along(session, client_id)
        return True
    ids = [m for m in message_ids if not await _delete_one(app, chat_id, m)]
    if client_id is None or not ids:
        return False
    async with data.sessions() as session, session.begin():
        await record_messages(session, client=client_id, message_ids=ids, now=now,
                              app=app, auto_delete_minutes=auto_delete_minutes,
                              chat_id=chat_id)
        # Could not be deleted on arrival: retried like any failed deletion.
        due = await _retry_later(session, client_id=client_id, message_ids=ids, tries=1,
                                 now=now)
    scheduling.arm(app, REDELETE, client_id, due)
    return False


async def say_to_chat(app: SezimApp, chat_id: int, text: str) -> None:
    """A short answer in a private chat that may be a client's (a refusal, "slow down",
    an error): sent, and recorded for quick exit like every message in her chat."""
    try:
        message_id = await send_screen(app, chat_id, Screen(text))
    except TelegramError as exc:
        log.warning("a short answer was not delivered: %s", type(exc).__name__)
        return
    await keep_for_deletion(app, chat_id, [message_id])


async def refresh_cards(app: SezimApp, cards: Sequence[tuple[int, int]], screen: Screen) -> None:
    """Show `screen` in place of the cards (staff id, message id) staff hold."""
    data = app.bot_data
    for staff_id, message_id in cards:
        async with data.sessions() as session:
            chat_enc = (await db.run(session, _staff_chat(staff_id))).scalar()
        if chat_enc is None:
            continue
        await edit_screen(app, data.crypto.decrypt_int(chat_enc), message_id, screen)


async def deliver_to_staff(app: SezimApp, deliveries: Sequence[Delivery]) -> int:
    """Send case cards and alerts to staff; keep each card's message id to update it later."""
    data = app.bot_data
    sent = 0
    for item in deliveries:
        tg_id_enc = item.chat_enc
        if tg_id_enc is None:
            async with data.sessions() as session:
                tg_id_enc = (await db.run(session, _staff_chat(item.staff_id))).scalar()
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
                await db.run(session, update(CaseOffer).where(
                    CaseOffer.case_id == item.case_id, CaseOffer.staff_id == item.staff_id)
                    .values(message_id=message_id))
    return sent
