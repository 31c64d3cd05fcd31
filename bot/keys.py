"""Key rotation: re-encrypt every stored id and phone number under the newest key.

Rotation without downtime:
1. set `SEZIM_SECRET_KEY=NEW,OLD` and restart: the bot encrypts with NEW and still reads
   and finds everything under OLD (lookups try every key);
2. run `sezim-bot rotate-key`: every chat id, staff id and phone number is re-encrypted
   and every lookup HMAC recomputed under NEW;
3. set `SEZIM_SECRET_KEY=NEW` and restart.
The yearly pseudonyms of the statistics follow the newest key: people who write both
before and after a rotation in the same year are counted twice in that year's figures.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.crypto import Crypto
from models import Case, Client, Staff

log = logging.getLogger(__name__)


async def rotate(session: AsyncSession, *, crypto: Crypto) -> dict[str, int]:
    """Re-encrypt and re-key everything; returns how many rows of each kind."""
    counts = {"clients": 0, "staff": 0, "phones": 0}
    for client in (await session.scalars(select(Client))).all():
        chat_id = crypto.decrypt_int(client.chat_id_enc)
        client.chat_id_enc = crypto.encrypt(chat_id)
        client.chat_hmac = crypto.lookup(chat_id)
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
    log.info("rotated keys: %d client(s), %d staff, %d phone number(s)", counts["clients"],
             counts["staff"], counts["phones"])
    return counts
