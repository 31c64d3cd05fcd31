"""Her record as one update reads and changes it: columns, not an ORM entity.

Data access: Core-style statements on `models.Client`'s columns, run on the session's
connection (`db.run`); her record is read as a typed row into `ClientRecord`, never loaded
as an entity.

Every update from a client reads her record and writes her step back. Through an entity
that was a load and a unit-of-work flush per update; here it is one SELECT of her columns
and one UPDATE of what changed (with the time she was last seen), or one INSERT for
someone new. Those statements are built once, with bound parameters (SQLAlchemy keeps a
statement's compiled form by its structure; building one cost more than running it,
about 0.1 ms against 0.04). Fields are those of `models.Client`; the encrypted chat id is
written on insert and never read here.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Update, and_, bindparam, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import db
from bot.core.crypto import Crypto
from models import Block, Case, Client, WaitingMessage

# Whether she is offered to choose a code word: she has none, or whoever writes now may not
# be her (she left with quick exit since she chose it, and has not come back with it). To
# whoever holds her phone the bot looks as it does to anyone new, offer included.
OFFER_CODE_WORD = or_(
    Client.code_word_hmac.is_(None),
    and_(Client.exited_at.is_not(None), Client.code_word_set_at <= Client.exited_at),
).label("offer_code_word")


@dataclass
class ClientRecord:
    id: int
    language: str | None
    step: str
    step_data: dict[str, Any]
    menu_message_id: int | None
    shared_device: bool | None
    auto_delete_minutes: int | None
    # Read with her record, never written through it (`bot.domain.code_word` does).
    has_code_word: bool = False
    offer_code_word: bool = True
    # A coordinator blocked this sender (`bot.domain.blocks`): the emergency numbers only.
    blocked: bool = False

    def snapshot(self) -> ClientRecord:
        return copy.deepcopy(self)

    def changes_since(self, before: ClientRecord) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in _NOT_WRITTEN and getattr(self, f.name) != getattr(before, f.name)}


_NOT_WRITTEN = {"id", "has_code_word", "offer_code_word", "blocked"}

# Her record under any of her chat's lookups (one per configured key), with whether the
# sender is blocked: read with her record, so the check costs no round trip of its own.
_HER_RECORD = select(
    Client.id, Client.language, Client.step, Client.step_data, Client.menu_message_id,
    Client.shared_device, Client.auto_delete_minutes,
    Client.code_word_hmac.is_not(None).label("has_code_word"), OFFER_CODE_WORD,
    Client.erased,
    exists().where(Block.chat_hmac == Client.chat_hmac, Block.until > bindparam("now"))
    .label("blocked"),
).where(Client.chat_hmac.in_(bindparam("lookups", expanding=True)))

_SET_MENU = update(Client).where(Client.id == bindparam("client_id")).values(
    menu_message_id=bindparam("new_menu"))


@functools.cache
def _saving(columns: tuple[str, ...]) -> Update:
    """The UPDATE that writes these of her columns and when she was last seen (one per
    set of columns an update changes: a handful)."""
    return update(Client).where(Client.id == bindparam("client_id")).values(
        {name: bindparam(f"new_{name}") for name in (*columns, "last_seen_at")})


async def language_of(session: AsyncSession, *, crypto: Crypto, chat_id: int) -> str | None:
    """The language she chose, if she has a record (for a notice sent before her update
    is read, such as "slow down")."""
    language = (await db.run(session, select(Client.language).where(
        Client.chat_hmac.in_(crypto.lookups(chat_id)), Client.erased.is_(False)))).scalar()
    return str(language) if language else None


async def load_or_create(
    session: AsyncSession, *, crypto: Crypto, chat_id: int, language_code: str | None,
    now: datetime,
) -> ClientRecord:
    """Her record (found under any configured key), or a new one; with whether the
    sender is blocked."""
    lookups = crypto.lookups(chat_id)
    row = (await db.run(session, _HER_RECORD, {"lookups": lookups, "now": now})).first()
    if row is not None:
        (client_id, language, step, step_data, menu_message_id, shared_device,
         auto_delete_minutes, has_code_word, offer_code_word, erased, blocked) = row
        if erased:
            # She erased her record, and writes again before the last of her old messages
            # could be deleted: a new person, with those ids still to delete.
            await db.run(session, update(Client).where(Client.id == client_id).values(
                erased=False, created_at=now))
        return ClientRecord(client_id, language, step, dict(step_data or {}), menu_message_id,
                            shared_device, auto_delete_minutes, bool(has_code_word),
                            bool(offer_code_word), bool(blocked))
    preselect = (language_code or "")[:2].lower()
    # A block outlives her record (/forget, the purge): it is kept by the HMAC alone.
    blocked = bool((await db.run(session, select(exists().where(
        Block.chat_hmac.in_(lookups), Block.until > now)))).scalar())
    record = ClientRecord(0, preselect if preselect in ("ky", "ru", "en") else None, "new",
                          {}, None, None, None, blocked=blocked)
    record.id = (await db.run(session, insert(Client).values(
        chat_hmac=crypto.lookup(chat_id), chat_id_enc=crypto.encrypt(chat_id),
        language=record.language, step=record.step, step_data=record.step_data,
        created_at=now, last_seen_at=now,
    ).returning(Client.id))).scalar_one()
    return record


async def save(session: AsyncSession, record: ClientRecord, before: ClientRecord, *,
               now: datetime) -> None:
    """Write what changed, and when she was last seen, in one statement."""
    changes = record.changes_since(before)
    await db.run(session, _saving(tuple(sorted(changes))),
                 {**{f"new_{name}": value for name, value in changes.items()},
                  "client_id": record.id, "new_last_seen_at": now})


# What a take or a close needs of her record (staff read it; they never load it).
_FOR_STAFF = select(
    Client.id, Client.chat_id_enc, Client.language, Client.auto_delete_minutes, Client.step,
    Client.exited_at, OFFER_CODE_WORD,
).where(Client.id == bindparam("client_id"))


async def for_staff(
    session: AsyncSession, client_id: int,
) -> tuple[int, bytes, str | None, int | None, str, datetime | None, bool] | None:
    """Her id, encrypted chat id, language, auto-delete time, step, last quick exit and
    whether she is offered a code word; None if her record is gone."""
    row = (await db.run(session, _FOR_STAFF, {"client_id": client_id})).first()
    if row is None:
        return None
    found_id, chat_id_enc, language, auto_delete_minutes, step, exited_at, offer = row
    return (found_id, bytes(chat_id_enc), language, auto_delete_minutes, step, exited_at,
            bool(offer))


async def set_menu(session: AsyncSession, client_id: int, message_id: int) -> bool:
    """Her menu (the message whose buttons she may tap) is `message_id` now; False if her
    record is gone (erased while the message was on its way)."""
    result = await db.run(session, _SET_MENU, {"client_id": client_id, "new_menu": message_id})
    return result.rowcount == 1


async def mark_exit(session: AsyncSession, client_id: int, now: datetime) -> None:
    """She left with quick exit now: a message to her already on its way is deleted when
    it lands (`delivery.SentBefore`)."""
    await db.run(session, update(Client).where(Client.id == client_id).values(exited_at=now))
    # What she wrote while waiting is not copied to anyone after she left.
    await drop_waiting(session, client_id=client_id)


async def drop_waiting(session: AsyncSession, *, client_id: int) -> None:
    """Forget the ids of what she wrote while her requests waited (quick exit, /forget)."""
    await db.run(session, delete(WaitingMessage).where(WaitingMessage.case_id.in_(
        select(Case.id).where(Case.client_id == client_id))))


async def mark_back(session: AsyncSession, client_id: int) -> None:
    """She came back with her code word: whoever writes is her again."""
    await db.run(session, update(Client).where(Client.id == client_id).values(exited_at=None))
