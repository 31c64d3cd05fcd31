"""Her record as one update reads and changes it: Core statements, no ORM entity.

Every update from a client reads her record and writes her step back. Through the ORM
that was an entity load and a unit-of-work flush per update; here it is one plain
SELECT and one UPDATE of what changed (with the time she was last seen), or one INSERT
for someone new. Fields are those of `models.Client`; the encrypted chat id is written on
insert and never read here.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.crypto import Crypto
from models import Block, Case, Client, WaitingMessage

_table = cast(Table, Client.__table__)
# Whether she is offered to choose a code word: she has none, or whoever writes now may not
# be her (she left with quick exit since she chose it, and has not come back with it). To
# whoever holds her phone the bot looks as it does to anyone new, offer included.
OFFER_CODE_WORD = or_(
    _table.c.code_word_hmac.is_(None),
    and_(_table.c.exited_at.is_not(None), _table.c.code_word_set_at <= _table.c.exited_at),
).label("offer_code_word")
_SELECT = select(
    _table.c.id, _table.c.language, _table.c.step, _table.c.step_data,
    _table.c.menu_message_id, _table.c.shared_device, _table.c.auto_delete_minutes,
    _table.c.code_word_hmac.is_not(None).label("has_code_word"), OFFER_CODE_WORD,
    _table.c.erased,
    # Read with her record, so the check costs no round trip of its own (every update).
    exists().where(Block.chat_hmac == _table.c.chat_hmac,
                   Block.until > bindparam("now")).label("blocked"),
).where(_table.c.chat_hmac.in_(bindparam("lookups", expanding=True)))


@functools.cache
def _update(columns: frozenset[str]) -> Update:
    """Her record's UPDATE of `columns` and the time she was last seen: built once for
    each set of changed columns (a step of the triage changes the same few each time)."""
    return update(_table).where(_table.c.id == bindparam("client_id")).values(
        {name: bindparam(name) for name in (*sorted(columns), "last_seen_at")})


@dataclass
class ClientRecord:
    id: int
    language: str | None
    step: str
    step_data: dict[str, Any]
    menu_message_id: int | None
    shared_device: bool | None
    auto_delete_minutes: int | None
    # Read with her record, never written through it (`services.code_word` does).
    has_code_word: bool = False
    offer_code_word: bool = True
    # A coordinator blocked this sender (`services.blocks`): the emergency numbers only.
    blocked: bool = False

    def snapshot(self) -> ClientRecord:
        return copy.deepcopy(self)

    def changes_since(self, before: ClientRecord) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in _NOT_WRITTEN and getattr(self, f.name) != getattr(before, f.name)}


_NOT_WRITTEN = {"id", "has_code_word", "offer_code_word", "blocked"}


async def language_of(session: AsyncSession, *, crypto: Crypto, chat_id: int) -> str | None:
    """The language she chose, if she has a record (for a notice sent before her update
    is read, such as "slow down")."""
    language = await session.scalar(select(_table.c.language).where(
        _table.c.chat_hmac.in_(crypto.lookups(chat_id)), _table.c.erased.is_(False)))
    return str(language) if language else None


async def load_or_create(
    session: AsyncSession, *, crypto: Crypto, chat_id: int, language_code: str | None,
    now: datetime,
) -> ClientRecord:
    """Her record (found under any configured key), or a new one; with whether the
    sender is blocked."""
    lookups = crypto.lookups(chat_id)
    row = (await session.execute(_SELECT, {"lookups": lookups, "now": now})).first()
    if row is not None:
        if row.erased:
            # She erased her record, and writes again before the last of her old messages
            # could be deleted: a new person, with those ids still to delete.
            await session.execute(update(_table).where(_table.c.id == row.id).values(
                erased=False, created_at=now))
        return ClientRecord(row.id, row.language, row.step, dict(row.step_data or {}),
                            row.menu_message_id, row.shared_device,
                            row.auto_delete_minutes, bool(row.has_code_word),
                            bool(row.offer_code_word), bool(row.blocked))
    preselect = (language_code or "")[:2].lower()
    # A block outlives her record (/forget, the purge): it is kept by the HMAC alone.
    blocked = bool(await session.scalar(select(exists().where(
        Block.chat_hmac.in_(lookups), Block.until > now))))
    record = ClientRecord(0, preselect if preselect in ("ky", "ru", "en") else None, "new",
                          {}, None, None, None, blocked=blocked)
    result = cast(CursorResult[Any], await session.execute(insert(_table).values(
        chat_hmac=crypto.lookup(chat_id), chat_id_enc=crypto.encrypt(chat_id),
        language=record.language, step=record.step, step_data=record.step_data,
        created_at=now, last_seen_at=now,
    )))
    primary_key = result.inserted_primary_key
    assert primary_key is not None
    record.id = int(primary_key[0])
    return record


async def save(session: AsyncSession, record: ClientRecord, before: ClientRecord, *,
               now: datetime) -> None:
    """Write what changed, and when she was last seen, in one statement."""
    changes = record.changes_since(before)
    await session.execute(_update(frozenset(changes)),
                          {**changes, "last_seen_at": now, "client_id": record.id})


_SET_MENU = (update(_table).where(_table.c.id == bindparam("client_id"))
             .values(menu_message_id=bindparam("menu")))


async def set_menu(session: AsyncSession, client_id: int, message_id: int) -> bool:
    """Her menu (the message whose buttons she may tap) is `message_id` now; False if her
    record is gone (erased while the message was on its way)."""
    result = cast(CursorResult[Any], await session.execute(
        _SET_MENU, {"client_id": client_id, "menu": message_id}))
    return result.rowcount == 1


async def mark_exit(session: AsyncSession, client_id: int, now: datetime) -> None:
    """She left with quick exit now: a message to her already on its way is deleted when
    it lands (`delivery.SentBefore`)."""
    await session.execute(update(_table).where(_table.c.id == client_id)
                          .values(exited_at=now))
    # What she wrote while waiting is not copied to anyone after she left.
    await drop_waiting(session, client_id=client_id)


async def drop_waiting(session: AsyncSession, *, client_id: int) -> None:
    """Forget the ids of what she wrote while her requests waited (quick exit, /forget)."""
    await session.execute(delete(WaitingMessage).where(WaitingMessage.case_id.in_(
        select(Case.id).where(Case.client_id == client_id))))


async def mark_back(session: AsyncSession, client_id: int) -> None:
    """She came back with her code word: whoever writes is her again."""
    await session.execute(update(_table).where(_table.c.id == client_id)
                          .values(exited_at=None))
