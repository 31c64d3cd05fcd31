"""Due times: the database decides what must happen when; the JobQueue only triggers it.

Every due time is a `DueTime` row. `bot.domain.due.schedule` writes it (inside the caller's
transaction), `arm` sets a JobQueue trigger, `rearm` sets one for every pending row at
start-up, and a sweep every `SWEEP_SECONDS` runs whatever is overdue (a trigger lost with a
crash, or set by another worker). Whoever claims a row runs it: the claim is a lease, so a
worker that dies mid-way lets another run it after the lease, and a finished row is never
run again.

Data access: ORM statements on `DueTime` through the session: SELECTs of its columns and an
UPDATE … RETURNING that claims a due time for exactly one runner; never an entity.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update

from bot.core.clock import aware
from models import DueTime

if TYPE_CHECKING:
    from bot.telegram.context import SezimApp

log = logging.getLogger(__name__)

SWEEP_SECONDS = 20
# Only due times this close get a trigger in memory; later ones are armed by the sweep when
# their time nears, so ten thousand open cases cost no memory in the process.
ARM_AHEAD = timedelta(seconds=3 * SWEEP_SECONDS)
LEASE = timedelta(seconds=90)
MAX_ATTEMPTS = 8

Runner = Callable[["SezimApp", int], Awaitable[None]]
_RUNNERS: dict[str, Runner] = {}


def runner(kind: str) -> Callable[[Runner], Runner]:
    """Register the coroutine that does the work of due times of `kind`."""

    def register(func: Runner) -> Runner:
        _RUNNERS[kind] = func
        return func

    return register


def job_name(kind: str, ref_id: int) -> str:
    return f"{kind}:{ref_id}"


def arm(app: SezimApp, kind: str, ref_id: int, due_at: datetime) -> None:
    """Set a JobQueue trigger for a due time (replacing an earlier one)."""
    jq = app.job_queue
    if jq is None:
        return
    now = app.bot_data.clock.now()
    if aware(due_at) - now > ARM_AHEAD:
        return  # the sweep arms it when it comes near
    name = job_name(kind, ref_id)
    for job in jq.get_jobs_by_name(name):
        job.schedule_removal()
    delay = max(0.0, (aware(due_at) - now).total_seconds())
    jq.run_once(_fire, when=delay, name=name, data=(kind, ref_id))


async def _fire(context: Any) -> None:
    job = context.job
    assert job is not None
    kind, ref_id = job.data
    await run_one(context.application, str(kind), int(ref_id))


async def _sweep(context: Any) -> None:
    await run_due(context.application)
    await arm_upcoming(context.application)


async def arm_upcoming(app: SezimApp) -> int:
    """Arm every pending due time that falls within ARM_AHEAD (and any overdue one)."""
    data = app.bot_data
    horizon = data.clock.now() + ARM_AHEAD
    async with data.sessions() as session:
        rows = (await session.execute(
            select(DueTime.kind, DueTime.ref_id, DueTime.due_at)
            .where(DueTime.done_at.is_(None), DueTime.due_at <= horizon)
        )).all()
    jq = app.job_queue
    armed = 0
    for kind, ref_id, due_at in rows:
        if jq is not None and jq.get_jobs_by_name(job_name(kind, ref_id)):
            continue
        arm(app, kind, ref_id, due_at)
        armed += 1
    return armed


async def rearm(app: SezimApp) -> int:
    """At start-up: arm what is near (the sweep arms the rest in time) and start the sweep."""
    armed = await arm_upcoming(app)
    if app.job_queue is not None:
        app.job_queue.run_repeating(_sweep, interval=SWEEP_SECONDS, first=SWEEP_SECONDS,
                                    name="sweep")
    log.info("re-armed %d due times", armed)
    return armed


async def run_due(app: SezimApp) -> int:
    """Run every due time whose time has come (by the app's clock); returns how many ran."""
    data = app.bot_data
    now = data.clock.now()
    async with data.sessions() as session:
        rows = (
            await session.execute(
                select(DueTime.kind, DueTime.ref_id)
                .where(DueTime.done_at.is_(None), DueTime.due_at <= now)
                .order_by(DueTime.due_at)
            )
        ).all()
    ran = 0
    for kind, ref_id in rows:
        ran += await run_one(app, kind, ref_id)
    return ran


async def run_one(app: SezimApp, kind: str, ref_id: int) -> int:
    """Claim and run one due time if it is due and nobody else holds it; 1 if it ran."""
    data = app.bot_data
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        claimed = await session.execute(
            update(DueTime)
            .where(
                DueTime.kind == kind,
                DueTime.ref_id == ref_id,
                DueTime.done_at.is_(None),
                DueTime.due_at <= now,
                or_(DueTime.claimed_until.is_(None), DueTime.claimed_until < now),
            )
            .values(claimed_until=now + LEASE, attempts=DueTime.attempts + 1)
            .returning(DueTime.attempts, DueTime.due_at)
        )
        row = claimed.first()
    if row is None:
        return 0
    attempts, claimed_due = row
    work = _RUNNERS.get(kind)
    try:
        if work is None:
            log.error("no runner for due time kind %s", kind)
        else:
            await work(app, ref_id)
    except Exception:
        log.exception("due time %s failed (attempt %d)", job_name(kind, ref_id), attempts)
        retry_at = data.clock.now() + timedelta(seconds=min(600, 5 * 2**attempts))
        async with data.sessions() as session, session.begin():
            await session.execute(
                update(DueTime)
                .where(DueTime.kind == kind, DueTime.ref_id == ref_id,
                       DueTime.done_at.is_(None))
                .values(
                    claimed_until=None,
                    due_at=retry_at,
                    done_at=now if attempts >= MAX_ATTEMPTS else None,
                )
            )
        if attempts < MAX_ATTEMPTS:
            arm(app, kind, ref_id, retry_at)
        return 0
    async with data.sessions() as session, session.begin():
        # Only the run that was claimed is finished: the work may have moved the due time on.
        await session.execute(
            update(DueTime)
            .where(
                and_(DueTime.kind == kind, DueTime.ref_id == ref_id,
                     DueTime.due_at == claimed_due)
            )
            .values(done_at=data.clock.now(), claimed_until=None)
        )
        moved = await session.scalar(
            select(DueTime).where(DueTime.kind == kind, DueTime.ref_id == ref_id,
                                  DueTime.done_at.is_(None))
        )
    if moved is not None:
        arm(app, kind, ref_id, moved.due_at)
    return 1
