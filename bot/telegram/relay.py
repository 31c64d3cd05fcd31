"""The two-way relay between a client and her specialist: copies, never forwards.

copyMessage shows neither side the other's account. Only the pair of message ids is kept
(`RelayLink`), so a specialist can answer by replying and both copies can be deleted;
the content is never stored.

Data access: Core-style statements on the mapped classes' columns, built where they run
and run on the session's connection (`db.run`); rows unpacked by position, never entities.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Message
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.core import db
from bot.telegram.delivery import SentBefore, keep_for_deletion
from models import Case, CaseStatus, Client, RelayLink, Staff, WaitingMessage

if TYPE_CHECKING:
    from bot.telegram.context import SezimApp

log = logging.getLogger(__name__)

class RelayFailed(Exception):
    """The other side could not be reached (blocked the bot, chat gone)."""


class PhoneCall(RelayFailed):
    """The case is a phone call: she chose not to be written to in this chat."""


class ClientLeft(RelayFailed):
    """She left with quick exit (before the message, or while it was on its way): it is
    not delivered, and nothing of it stays in her chat."""


async def client_to_staff(app: SezimApp, *, case_id: int, client_chat_id: int,
                          message_id: int, to: tuple[int, bytes] | None) -> int:
    """Copy her message to the specialist who owns the case: `to`, her id and encrypted
    Telegram id as her update read them with the case (`cases.open_case_brief`), None if
    she is no longer active staff. Returns the copy's id."""
    if to is None:
        raise RelayFailed("her specialist is gone")
    owner_id, owner_chat_enc = to
    return await copy_to_staff(app, case_id=case_id, client_chat_id=client_chat_id,
                               message_id=message_id, staff_id=owner_id,
                               staff_chat_id=app.bot_data.crypto.decrypt_int(owner_chat_enc))


# At most this many of her waiting messages are copied to the taker (a flood of them would
# keep the specialist's chat busy for hours under Telegram's sending limit).
WAITING_KEPT = 30


async def hold_waiting(session: AsyncSession, *, case_id: int, message_id: int,
                       now: datetime) -> None:
    """Keep the id of a message she sent while `case_id` waited, for its taker."""
    if await waiting_count(session, case_id=case_id) >= WAITING_KEPT:
        return
    await db.run(session, insert(WaitingMessage), [
        {"case_id": case_id, "message_id": message_id, "sent_at": now}])


async def drop_held(session: AsyncSession, *, case_id: int, message_id: int) -> None:
    """Not to be copied after all (she edited her code word into it)."""
    await db.run(session, delete(WaitingMessage).where(
        WaitingMessage.case_id == case_id, WaitingMessage.message_id == message_id))


async def is_relayed(app: SezimApp, *, staff_id: int, message_id: int) -> bool:
    """Whether a message in the specialist's chat is one end of a relay (a copy of the
    client's, or her own that went to the client)."""
    async with app.bot_data.sessions() as session:
        link = (await db.run(session, _link(staff_id, message_id))).first()
    return link is not None


def _link(staff_id: int, message_id: int) -> Select[int, int]:
    """The relay link of a message in the specialist's chat: its case and her message."""
    return select(RelayLink.case_id, RelayLink.client_message_id).where(
        RelayLink.staff_id == staff_id, RelayLink.staff_message_id == message_id)


async def waiting_count(session: AsyncSession, *, case_id: int) -> int:
    return int((await db.run(session, select(func.count()).select_from(WaitingMessage)
                             .where(WaitingMessage.case_id == case_id))).scalar() or 0)


# One statement, built once: the rows go as they are read (every take runs it).
_TAKE_WAITING = (delete(WaitingMessage).where(WaitingMessage.case_id == bindparam("case_id"))
                 .returning(WaitingMessage.message_id))


async def take_waiting(session: AsyncSession, *, case_id: int) -> list[int]:
    """The ids of what she wrote while `case_id` waited, in the order she sent it, now
    forgotten (they are copied once, to its taker)."""
    taken = await db.run(session, _TAKE_WAITING, {"case_id": case_id})
    return sorted(taken.scalars().all())  # a chat's message ids grow as she writes


async def copy_waiting(app: SezimApp, ids: list[int], *, case_id: int, client_chat_id: int,
                       staff_id: int, staff_chat_id: int) -> int:
    """Copy those messages of hers to the specialist who took `case_id`; how many are no
    longer there (auto-delete or she removed them)."""
    missing = 0
    for message_id in ids:
        try:
            await copy_to_staff(app, case_id=case_id, client_chat_id=client_chat_id,
                                message_id=message_id, staff_id=staff_id,
                                staff_chat_id=staff_chat_id)
        except RelayFailed:
            missing += 1
    return missing


async def copy_to_staff(app: SezimApp, *, case_id: int, client_chat_id: int, message_id: int,
                        staff_id: int, staff_chat_id: int) -> int:
    """Copy one message of hers to a specialist's chat, keeping the pair of ids so a reply
    to the copy reaches her. Returns the copy's id."""
    data = app.bot_data
    try:
        copy = await app.bot.copy_message(staff_chat_id, client_chat_id, message_id)
    except TelegramError as exc:
        log.warning("relay to the specialist of case %d failed: %s", case_id,
                    type(exc).__name__)
        raise RelayFailed(type(exc).__name__) from exc
    async with data.sessions() as session, session.begin():
        await db.run(session, insert(RelayLink), [{
            "case_id": case_id, "staff_id": staff_id, "client_message_id": message_id,
            "staff_message_id": copy.message_id, "created_at": data.clock.now()}])
    return int(copy.message_id)


@dataclass(frozen=True)
class StaffReplyTarget:
    """Where a specialist's message goes: her case's client, or nowhere (None fields)."""

    case_id: int
    client_id: int | None
    client_chat_enc: bytes | None
    auto_delete_minutes: int | None
    reply_to_client_message: int | None
    paused: bool = False
    exited_at: datetime | None = None
    call: bool = False  # a phone call: nothing is written to her chat


async def staff_reply_target(app: SezimApp, *, staff_id: int,
                             replied_message_id: int | None) -> StaffReplyTarget | None:
    """The active case of staff member `staff_id` (or the case of the relayed copy she
    replied to) with its client, if the case is hers and active: one short read."""
    async with app.bot_data.sessions() as session:
        case_id = (await db.run(session, select(Staff.active_case_id).where(
            Staff.id == staff_id, Staff.active.is_(True)))).scalar()
        reply_to: int | None = None
        if replied_message_id is not None:
            link = (await db.run(session, _link(staff_id, replied_message_id))).first()
            if link is not None:
                case_id, reply_to = link
        if case_id is None:
            return None
        row = (await db.run(session, select(
            Case.id, Case.client_id, Case.status, Case.contact, Client.chat_id_enc,
            Client.auto_delete_minutes, Client.exited_at)
            .outerjoin(Client, Client.id == Case.client_id)
            .where(Case.id == case_id,
                   Case.status.in_((CaseStatus.ACTIVE, CaseStatus.PAUSED)),
                   Case.owner_id == staff_id))).first()
    if row is None:
        return None
    # Outer-joined: her columns are None when her record is gone.
    found_id, client_id, status, contact, chat_enc, auto_delete_minutes, exited_at = row
    return StaffReplyTarget(found_id, client_id, cast(bytes | None, chat_enc),
                            auto_delete_minutes, reply_to,
                            paused=status == CaseStatus.PAUSED, exited_at=exited_at,
                            call=contact == "call_later")


async def staff_to_client(app: SezimApp, *, target: StaffReplyTarget, staff_id: int,
                          staff_chat_id: int, message_id: int) -> int:
    """Copy the specialist's message to the client of `target`; returns the copy's id."""
    data = app.bot_data
    now = data.clock.now()
    if target.paused:
        raise ClientLeft("paused")
    if target.call:
        raise PhoneCall("a phone call")
    if target.client_id is None or target.client_chat_enc is None:
        raise RelayFailed("client gone")
    client_chat = data.crypto.decrypt_int(target.client_chat_enc)
    try:
        copy = await app.bot.copy_message(
            client_chat, staff_chat_id, message_id,
            reply_to_message_id=target.reply_to_client_message,
            allow_sending_without_reply=True,
        )
    except Forbidden as exc:
        raise RelayFailed("blocked") from exc
    except TelegramError as exc:
        log.warning("relay to the client of case %d failed: %s", target.case_id,
                    type(exc).__name__)
        raise RelayFailed(type(exc).__name__) from exc
    # She may have left with quick exit, or erased her record, while the copy was on its
    # way: then it is deleted on arrival.
    # The pair of ids and the time of the first reply are written with her copy's record.
    async def link(session: AsyncSession, _client_id: int) -> None:
        await db.run(session, insert(RelayLink), [{
            "case_id": target.case_id, "staff_id": staff_id,
            "client_message_id": copy.message_id, "staff_message_id": message_id,
            "created_at": now}])
        await db.run(session, update(Case).where(Case.id == target.case_id,
                                                  Case.first_reply_at.is_(None))
                     .values(first_reply_at=now))

    if not await keep_for_deletion(app, client_chat, [copy.message_id],
                                   sent=SentBefore(target.exited_at), along=link):
        raise ClientLeft("left while the copy was on its way")
    return int(copy.message_id)


async def _edit_copy(app: SezimApp, chat_id: int, message_id: int, edited: Message) -> bool:
    """Give the copy `message_id` in `chat_id` the edited message's new text or caption."""
    try:
        if edited.text is not None:
            await app.bot.edit_message_text(edited.text, chat_id=chat_id, message_id=message_id,
                                            entities=edited.entities)
        elif edited.caption is not None:
            await app.bot.edit_message_caption(chat_id=chat_id, message_id=message_id,
                                               caption=edited.caption,
                                               caption_entities=edited.caption_entities)
        else:
            return False
    except BadRequest as exc:
        # The same text again is an edit already shown; anything else (the copy was
        # deleted, it is too old) did not reach the other side.
        return "not modified" in str(exc)
    except TelegramError as exc:
        log.warning("an edit could not be relayed: %s", type(exc).__name__)
        return False
    return True


async def edit_staff_copy(app: SezimApp, *, case_id: int, to: tuple[int, bytes],
                          edited: Message) -> bool:
    """She edited a message she had sent to her specialist: edit the specialist's copy.
    False when there is no copy to edit (then it is relayed anew, said to be an edit)."""
    staff_id, staff_chat_enc = to
    async with app.bot_data.sessions() as session:
        copy_id = (await db.run(session, select(RelayLink.staff_message_id).where(
            RelayLink.case_id == case_id, RelayLink.staff_id == staff_id,
            RelayLink.client_message_id == edited.message_id))).scalar()
    if copy_id is None:
        return False
    return await _edit_copy(app, app.bot_data.crypto.decrypt_int(staff_chat_enc), int(copy_id),
                            edited)


async def edit_client_copy(app: SezimApp, *, staff_id: int, edited: Message) -> bool | None:
    """A specialist edited a message relayed to her client: edit the client's copy. None
    when the message was not relayed (nothing to do); False when the edit could not reach
    her (she left with quick exit, the copy is gone)."""
    # The edited message is the reply target: its relay link gives her copy and the case.
    target = await staff_reply_target(app, staff_id=staff_id,
                                      replied_message_id=edited.message_id)
    her_copy = target.reply_to_client_message if target is not None else None
    if target is None or her_copy is None:
        # Not relayed at all, or its case is no longer hers and live.
        relayed = await is_relayed(app, staff_id=staff_id, message_id=edited.message_id)
        return False if relayed else None
    if target.paused or target.call or target.client_chat_enc is None:
        return False
    return await _edit_copy(app, app.bot_data.crypto.decrypt_int(target.client_chat_enc),
                            her_copy, edited)
