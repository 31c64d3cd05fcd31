"""Blocking a sender who abuses the bot (an abuser who found it, pranks, threats to staff).

A coordinator blocks the sender of a case for some days, with a reason from a short list;
audited. The block is kept by the HMAC of the sender's Telegram id, so erasing their record
(/forget) does not lift it, and it is deleted when it expires. A blocked sender still gets
the emergency numbers and the hotline to every message (a block must never silence a
person in danger); nothing of theirs reaches staff.

Data access: ORM: the case and her record as entities from the session (`session.get`), a
block added as one, bulk DELETEs on `Block`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.crypto import Crypto
from bot.domain import staff as staff_service
from bot.domain.cases import CaseError
from models import Block, Case, CaseStatus, Client

REASONS = ("abuser", "prank", "threats", "spam")
MAX_DAYS = 365
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Blocked:
    case_id: int
    until: datetime
    open_cases: list[int]  # the sender's cases still open, for the coordinator to close


async def block(session: AsyncSession, *, crypto: Crypto, case_id: int,
                member: staff_service.Actor, days: int, reason: str,
                now: datetime) -> Blocked:
    if "coordinator" not in member.role_names:
        raise CaseError("not_allowed")
    if reason not in REASONS or not 1 <= days <= MAX_DAYS:
        raise CaseError("block_usage")
    case = await session.get(Case, case_id)
    client = await session.get(Client, case.client_id) if case is not None and \
        case.client_id is not None else None
    if case is None or client is None or client.chat_id_enc is None:
        raise CaseError("case_gone")
    if case.after_exit_case_id is not None or client.exited_at is not None or \
            await session.scalar(select(Case.id).where(
                Case.client_id == client.id, Case.status == CaseStatus.PAUSED).limit(1)):
        # This account left a conversation with quick exit: whoever writes may be holding
        # her phone, and a block would lock her out of her own way back.
        raise CaseError("block_after_exit", number=case.id)
    chat_hmac = crypto.lookup(crypto.decrypt_int(client.chat_id_enc))
    until = now + timedelta(days=days)
    await session.execute(delete(Block).where(Block.chat_hmac == chat_hmac))
    session.add(Block(chat_hmac=chat_hmac, case_id=case.id, reason=reason, until=until,
                      created_at=now))
    await staff_service.audit(session, now=now, action="sender.block", staff_id=member.id,
                              case_id=case.id, detail=f"{reason} {days}d")
    open_cases = list((await session.scalars(select(Case.id).where(
        Case.client_id == client.id,
        Case.status.not_in((CaseStatus.CLOSED, CaseStatus.PAUSED))))).all())
    return Blocked(case.id, until, open_cases)


async def unblock(session: AsyncSession, *, case_id: int, member: staff_service.Actor,
                  now: datetime) -> bool:
    if "coordinator" not in member.role_names:
        raise CaseError("not_allowed")
    result = await session.execute(delete(Block).where(Block.case_id == case_id))
    removed = cast(CursorResult[Any], result).rowcount > 0
    if removed:
        await staff_service.audit(session, now=now, action="sender.unblock",
                                  staff_id=member.id, case_id=case_id)
    return removed


async def purge_expired(session: AsyncSession, *, now: datetime) -> int:
    result = await session.execute(delete(Block).where(Block.until <= now))
    return int(cast(CursorResult[Any], result).rowcount)
