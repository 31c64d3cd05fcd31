"""Due times as the journeys set them: "escalate this case at 02:10", "delete her messages
in an hour". Each is a `DueTime` row written in the caller's transaction; the Telegram side
(`bot.telegram.scheduling`) arms a trigger for it and runs it when it falls due.

The statements are built once, with bound parameters: every request, take and close runs
them. A new row is a Core INSERT (`db.run`: nothing for the session to track); a row that
may be in the session is read and changed through the ORM."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import db
from models import DueTime

_NEW = insert(DueTime)
_FIND = select(DueTime).where(DueTime.kind == bindparam("kind"),
                              DueTime.ref_id == bindparam("ref_id"))
# "fetch": the rows it marks are found by RETURNING (or a SELECT), so a due time the session
# holds reads as done too, and a later `schedule` of it in the same transaction sees that.
_CANCEL = (update(DueTime)
           .where(DueTime.kind.in_(bindparam("kinds", expanding=True)),
                  DueTime.ref_id == bindparam("for_ref"), DueTime.done_at.is_(None))
           .values(done_at=bindparam("now"))
           .execution_options(synchronize_session="fetch"))


async def schedule(session: AsyncSession, *, kind: str, ref_id: int, due_at: datetime,
                   new: bool = False) -> None:
    """Set (or move) the due time of `kind` for `ref_id`, pending again (`new`: `ref_id`
    was created in this transaction, so it has none yet)."""
    if new:  # a plain INSERT: nothing for the session to track
        await db.run(session, _NEW, {"kind": kind, "ref_id": ref_id, "due_at": due_at})
        return
    row = await session.scalar(_FIND, {"kind": kind, "ref_id": ref_id})
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
    kinds = [kind] if isinstance(kind, str) else list(kind)
    await session.flush()  # a due time set earlier in this transaction is cancelled too
    await session.execute(_CANCEL, {"kinds": kinds, "for_ref": ref_id, "now": now})
