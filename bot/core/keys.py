"""Key rotation: re-encrypt every stored id and phone number under the newest key.

Rotation without downtime:
1. set `SEZIM_SECRET_KEY=NEW,OLD` and restart: the bot encrypts with NEW and still reads
   and finds everything under OLD (lookups try every key);
2. run `sezim-bot rotate-key`: every chat id, staff id and phone number is re-encrypted
   and every lookup HMAC recomputed under NEW;
3. set `SEZIM_SECRET_KEY=NEW` and restart.
The database keeps a check value of its key (`check`): a start with a key it was not made
with, or with the old key first after the rotation, is refused with one line.
The yearly pseudonyms of the statistics follow the newest key: people who write both
before and after a rotation in the same year are counted twice in that year's figures.

Data access: ORM: every client, member and case with an encrypted column as entities from
the session, changed in place and flushed in one transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime

from cryptography.fernet import InvalidToken
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import ENV_SECRET, ConfigError
from bot.core.crypto import Crypto
from models import Block, Case, Client, KeyCheck, Staff

WRONG_KEY = (f"{ENV_SECRET} is not the key this database was created with: with it every "
             "staff member would be locked out and no client found. Start with the key "
             "the database was made with (kept apart from the server and its backups)")
OLD_FIRST = (f"{ENV_SECRET} lists the old key first: this database was rotated to the "
             "second one. Give the new key first (NEW,OLD), or only the new key")
NOT_ROTATING = (f"the first key in {ENV_SECRET} is already this database's key: to rotate, "
                "give the new key first (NEW,OLD)")

log = logging.getLogger(__name__)


async def rotate(session: AsyncSession, *, crypto: Crypto) -> dict[str, int]:
    """Re-encrypt and re-key everything; returns how many rows of each kind."""
    counts = {"clients": 0, "staff": 0, "phones": 0}
    moved: dict[bytes, bytes] = {}  # a client's HMAC under the old key → under the new
    for client in (await session.scalars(select(Client))).all():
        chat_id = crypto.decrypt_int(client.chat_id_enc)
        client.chat_id_enc = crypto.encrypt(chat_id)
        moved[bytes(client.chat_hmac)] = crypto.lookup(chat_id)
        client.chat_hmac = moved[bytes(client.chat_hmac)]
        pending = (client.step_data or {}).get("phone")
        if isinstance(pending, str):
            client.step_data = {**client.step_data,
                                "phone": crypto.rotate(pending.encode()).decode()}
        counts["clients"] += 1
    for member in (await session.scalars(select(Staff))).all():
        telegram_id = crypto.decrypt_int(member.tg_id_enc)
        member.tg_id_enc = crypto.encrypt(telegram_id)
        member.tg_hmac = crypto.lookup(telegram_id)
        counts["staff"] += 1
    for case in (await session.scalars(select(Case).where(Case.phone_enc.is_not(None)))).all():
        assert case.phone_enc is not None
        case.phone_enc = crypto.rotate(case.phone_enc)
        counts["phones"] += 1
    # The links that only an HMAC makes (her earlier cases, a block) follow her record;
    # one whose record is gone matches only while the old key is still configured.
    for old, new in moved.items():
        if old != new:
            await session.execute(update(Case).where(Case.chat_hmac == old)
                                  .values(chat_hmac=new))
            await session.execute(update(Block).where(Block.chat_hmac == old)
                                  .values(chat_hmac=new))
    log.info("rotated keys: %d client(s), %d staff, %d phone number(s)", counts["clients"],
             counts["staff"], counts["phones"])
    return counts


async def check(session: AsyncSession, *, crypto: Crypto, now: datetime,
                rotating: bool = False) -> None:
    """Refuse (ConfigError, one line) a server key this database was not made with.

    The database keeps a check value of its key. Any configured key matching it is
    accepted (NEW,OLD during a rotation), except the old key first after the rotation
    moved the check to the new one. A database without a check value (new, or made
    before there was one) takes the first key's, if that key can read what is stored.
    With `rotating` (rotate-key), the first key must be the new one."""
    checks = crypto.key_checks
    row = await session.get(KeyCheck, 1)
    if row is None:
        if not await _reads_what_is_stored(session, crypto):
            raise ConfigError(WRONG_KEY)
        session.add(KeyCheck(id=1, value=checks[0], previous=None, set_at=now))
        return
    stored = bytes(row.value)
    if stored not in checks:
        raise ConfigError(WRONG_KEY)
    if rotating:
        if stored == checks[0]:
            raise ConfigError(NOT_ROTATING)
        return
    if stored != checks[0] and row.previous is not None and bytes(row.previous) == checks[0]:
        raise ConfigError(OLD_FIRST)


async def rotated(session: AsyncSession, *, crypto: Crypto, now: datetime) -> None:
    """After rotate-key: the database's key is now the first one."""
    row = await session.get(KeyCheck, 1)
    if row is None:
        session.add(KeyCheck(id=1, value=crypto.key_checks[0], previous=None, set_at=now))
        return
    row.previous, row.value, row.set_at = row.value, crypto.key_checks[0], now


async def _reads_what_is_stored(session: AsyncSession, crypto: Crypto) -> bool:
    """Whether the key decrypts a stored staff or client id (True if nothing is stored)."""
    for column in (Staff.tg_id_enc, Client.chat_id_enc):
        token = await session.scalar(select(column).limit(1))
        if token is not None:
            try:
                crypto.decrypt(bytes(token))
            except InvalidToken:
                return False
            return True
    return True
