"""The two-way relay between a client and her specialist: copies, never forwards.

copyMessage shows neither side the other's account. Only the pair of message ids is kept
(`RelayLink`), so a specialist can answer by replying and both copies can be deleted;
the content is never stored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from telegram.error import Forbidden, TelegramError

from bot.delivery import record_messages
from models import Case, CaseStatus, Client, RelayLink, Staff

if TYPE_CHECKING:
    from bot.app import SezimApp

log = logging.getLogger(__name__)


class RelayFailed(Exception):
    """The other side could not be reached (blocked the bot, chat gone)."""


async def client_to_staff(app: SezimApp, *, case_id: int, client_chat_id: int,
                          message_id: int) -> int:
    """Copy her message to the specialist who owns the case; returns the copy's id."""
    data = app.bot_data
    async with data.sessions() as session:
        case = await session.get(Case, case_id)
        if case is None or case.owner_id is None or case.status != CaseStatus.ACTIVE:
            raise RelayFailed("case not active")
        member = await session.get(Staff, case.owner_id)
        if member is None or not member.active:
            raise RelayFailed("owner gone")
        staff_chat = data.crypto.decrypt_int(member.tg_id_enc)
        owner_id = member.id
    try:
        copy = await app.bot.copy_message(staff_chat, client_chat_id, message_id)
    except TelegramError as exc:
        log.warning("relay to the specialist of case %d failed: %s", case_id,
                    type(exc).__name__)
        raise RelayFailed(type(exc).__name__) from exc
    async with data.sessions() as session, session.begin():
        session.add(RelayLink(case_id=case_id, staff_id=owner_id, client_message_id=message_id,
                              staff_message_id=copy.message_id, created_at=data.clock.now()))
    return int(copy.message_id)


async def staff_to_client(app: SezimApp, *, case: Case, staff_id: int, staff_chat_id: int,
                          message_id: int, reply_to_client_message: int | None) -> int:
    """Copy the specialist's message to the client of `case`; returns the copy's id."""
    data = app.bot_data
    now = data.clock.now()
    async with data.sessions() as session:
        client = await session.get(Client, case.client_id) if case.client_id else None
    if client is None:
        raise RelayFailed("client gone")
    client_chat = data.crypto.decrypt_int(client.chat_id_enc)
    try:
        copy = await app.bot.copy_message(
            client_chat, staff_chat_id, message_id,
            reply_to_message_id=reply_to_client_message,
            allow_sending_without_reply=True,
        )
    except Forbidden as exc:
        raise RelayFailed("blocked") from exc
    except TelegramError as exc:
        log.warning("relay to the client of case %d failed: %s", case.id, type(exc).__name__)
        raise RelayFailed(type(exc).__name__) from exc
    async with data.sessions() as session, session.begin():
        session.add(RelayLink(case_id=case.id, staff_id=staff_id,
                              client_message_id=copy.message_id, staff_message_id=message_id,
                              created_at=now))
        fresh = await session.get(Case, case.id)
        if fresh is not None and fresh.first_reply_at is None:
            fresh.first_reply_at = now
        attached = await session.get(Client, client.id)
        if attached is not None:
            await record_messages(session, client=attached, message_ids=[copy.message_id],
                                  now=now, app=app)
    return int(copy.message_id)


async def case_of_staff_reply(app: SezimApp, *, staff_id: int,
                              replied_message_id: int) -> tuple[int, int] | None:
    """The case and client message id behind a relayed copy the specialist replied to."""
    async with app.bot_data.sessions() as session:
        link = await session.scalar(
            select(RelayLink).where(RelayLink.staff_id == staff_id,
                                    RelayLink.staff_message_id == replied_message_id)
        )
        if link is None:
            return None
        return link.case_id, link.client_message_id
