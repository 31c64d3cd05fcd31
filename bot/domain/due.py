"""Due times as the journeys set them: "escalate this case at 02:10", "delete her messages
in an hour". Each is a `DueTime` row written in the caller's transaction; the Telegram side
(`bot.telegram.scheduling`) arms a trigger for it and runs it when it falls due."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import DueTime


async def schedule(session: AsyncSession, *, kind: str, ref_id: int, due_at: datetime,
                   new: bool = False) -> None:
    """Set (or move) the due time of `kind` for `ref_id`, pending again (`new`: `ref_id`
    was created in this transaction, so it has none yet)."""
    if new:  # a plain INSERT: nothing for the session to track
        await session.execute(insert(DueTime).values(kind=kind, ref_id=ref_id, due_at=due_at))
        return
    row = await session.scalar(
        select(DueTime).where(DueTime.kind == kind, DueTime.ref_id == ref_id)
    )
    if row is None:
        session.add(DueTime(kind=kind, ref_id=ref_id, due_at=due_at))
    else:
        row.due_at = due_at
        row.done_at = None
        row.claimed_until = None
        row.attempts = 0


async def cancel(session: AsyncSession, *, kind: str | tuple[str, ...], ref_id: int,
                 now: datetime) -> None:
    """Mark the pending due time(s) of `kind` (one kind, or several) for `ref_id` done."""
    kinds = (kind,) if isinstance(kind, str) else kind
    await session.flush()  # a due time set earlier in this transaction is cancelled too
    await session.execute(
        update(DueTime)
        .where(DueTime.kind.in_(kinds), DueTime.ref_id == ref_id, DueTime.done_at.is_(None))
        .values(done_at=now))
