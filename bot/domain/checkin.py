"""A consented check-in after a case (issue 21 item 6).

At /close her specialist may offer it; she accepts and picks a safe time, and at that time
she gets one neutral message ("How are you?") with "I'm OK", "I'd like to talk" and quick
exit. "Talk" opens a new request, listed with the old one (the returning link). Quick exit
or /forget cancels it. Never for a phone call, nor for a case she had left (paused).

Data access: ORM SELECTs of a few columns (`session.scalars`, `session.scalar`); the case
is the caller's entity.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import aware
from bot.core.config import Settings
from bot.domain import due as due_times
from models import Case, CaseStatus, DueTime

CHECK_IN = "check_in"
# How long after the close a check-in may still be offered: the offer is part of the
# goodbye, not a message out of the blue weeks later.
OFFER_WITHIN = timedelta(days=2)
# What she may pick: days from now and the local hour.
SLOTS = {"3d11": (3, 11), "3d17": (3, 17), "7d11": (7, 11), "7d17": (7, 17)}


def allowed(case: Case) -> bool:
    """A chat that ended in conversation: not a call, not one she had left."""
    return case.contact != "call_later" and case.status == CaseStatus.CLOSED and \
        case.paused_at is None and case.client_id is not None


def may_reach(case: Case, client: Any, now: datetime | None = None) -> bool:
    """Whether a check-in (its offer, her answer, the message) may reach her chat now:
    her record is there and she has not left with quick exit since (without coming back
    with her code word); with `now`, the offer only shortly after the close."""
    if client is None or getattr(client, "erased", False) or client.chat_id_enc is None:
        return False
    if client.exited_at is not None:
        return False
    closed = case.closed_at
    if now is not None and (closed is None or aware(closed) < now - OFFER_WITHIN):
        return False
    return True


def when(slot: str, *, now: datetime, settings: Settings) -> datetime:
    days, hour = SLOTS[slot]
    tz = settings.organization.tz
    day = now.astimezone(tz).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, 0), tz).astimezone(now.tzinfo)


async def schedule(session: AsyncSession, *, case: Case, at: datetime) -> None:
    await due_times.schedule(session, kind=CHECK_IN, ref_id=case.id, due_at=at)


async def cancel_for(session: AsyncSession, *, client_id: int, now: datetime) -> None:
    """Quick exit or /forget: no check-in comes to this chat."""
    for case_id in (await session.scalars(select(Case.id).where(
            Case.client_id == client_id))).all():
        await due_times.cancel(session, kind=CHECK_IN, ref_id=case_id, now=now)


async def was_sent(session: AsyncSession, *, case_id: int) -> bool:
    """Whether the check-in of `case_id` came (its answer buttons are then real)."""
    return await _due(session, case_id=case_id, done=True)


async def pending(session: AsyncSession, *, case_id: int) -> bool:
    """A check-in of `case_id` already waits for its time."""
    return await _due(session, case_id=case_id, done=False)


async def _due(session: AsyncSession, *, case_id: int, done: bool) -> bool:
    state = DueTime.done_at.is_not(None) if done else DueTime.done_at.is_(None)
    found = await session.scalar(select(DueTime.id).where(
        DueTime.kind == CHECK_IN, DueTime.ref_id == case_id, state))
    return found is not None
