"""Retention: cut every link between a case and a person once it is no longer needed.

N days after a case closes (`[retention] days_after_close`), `purge` removes its chat id
link, phone number, message-id pairs and due times; a client with nothing open left is
deleted with her message ids and conversation state. `/forget` does the same at once for
the client who asks. The anonymous appeal record always stays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from models import Case, CaseStatus, ChatMessage, Client, DueTime, ProcessedUpdate, RelayLink

log = logging.getLogger(__name__)

CASE_KINDS = ("escalate", "contact")
CLIENT_KINDS = ("autodelete",)
PROCESSED_UPDATES_KEPT = timedelta(days=2)


@dataclass
class PurgeReport:
    cases: int = 0
    clients: int = 0
    states_reset: int = 0
    # Cases that were open when their client erased herself: (owner staff id, case id).
    ended: list[tuple[int, int]] = field(default_factory=list)


async def purge_case(session: AsyncSession, *, case: Case, now: datetime) -> None:
    """Remove what links a case to a person; the case's anonymous fields stay."""
    case.client_id = None
    case.phone_enc = None
    case.purged_at = now
    await session.execute(delete(RelayLink).where(RelayLink.case_id == case.id))
    await session.execute(
        update(DueTime)
        .where(DueTime.kind.in_(CASE_KINDS), DueTime.ref_id == case.id,
               DueTime.done_at.is_(None))
        .values(done_at=now)
    )


async def forget_client(session: AsyncSession, *, client: Client, now: datetime) -> PurgeReport:
    """`/forget`: close her open cases, purge them all, delete her record."""
    report = PurgeReport()
    cases = (await session.scalars(select(Case).where(Case.client_id == client.id))).all()
    for case in cases:
        if case.status != CaseStatus.CLOSED:
            if case.status == CaseStatus.ACTIVE and case.owner_id is not None:
                report.ended.append((case.owner_id, case.id))
            case.status = CaseStatus.CLOSED
            case.closed_at = now
            case.outcome = case.outcome or "no_contact"
        await purge_case(session, case=case, now=now)
        report.cases += 1
    await _delete_client(session, client_id=client.id, now=now)
    report.clients = 1
    log.info("a client erased her record (%d case(s) purged)", report.cases)
    return report


async def _delete_client(session: AsyncSession, *, client_id: int, now: datetime) -> None:
    await session.execute(
        update(DueTime)
        .where(DueTime.kind.in_(CLIENT_KINDS), DueTime.ref_id == client_id,
               DueTime.done_at.is_(None))
        .values(done_at=now)
    )
    await session.execute(delete(ChatMessage).where(ChatMessage.client_id == client_id))
    await session.execute(delete(Client).where(Client.id == client_id))


async def purge(session: AsyncSession, *, settings: Settings, now: datetime) -> PurgeReport:
    """Apply the retention policy now."""
    report = PurgeReport()
    keep = timedelta(days=settings.retention.days_after_close)
    expired = (await session.scalars(
        select(Case).where(Case.status == CaseStatus.CLOSED, Case.purged_at.is_(None),
                           Case.closed_at <= now - keep)
    )).all()
    for case in expired:
        await purge_case(session, case=case, now=now)
        report.cases += 1
    await session.flush()
    # Clients with nothing open whose last word is older than the retention period.
    open_clients = select(Case.client_id).where(Case.client_id.is_not(None),
                                                Case.status != CaseStatus.CLOSED)
    unpurged = select(Case.client_id).where(Case.client_id.is_not(None),
                                            Case.purged_at.is_(None))
    stale = (await session.scalars(
        select(Client.id).where(Client.last_seen_at <= now - keep,
                                Client.id.not_in(open_clients), Client.id.not_in(unpurged))
    )).all()
    for client_id in stale:
        await _delete_client(session, client_id=client_id, now=now)
        report.clients += 1
    idle = now - timedelta(hours=settings.retention.idle_state_hours)
    result = await session.execute(
        update(Client)
        .where(Client.last_seen_at <= idle, Client.step.not_in(("new", "waiting")))
        .values(step="new", step_data={})
    )
    report.states_reset = int(getattr(result, "rowcount", 0) or 0)
    await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.at <= now - PROCESSED_UPDATES_KEPT)
    )
    log.info("purge: %d case(s), %d client(s), %d idle state(s)", report.cases, report.clients,
             report.states_reset)
    return report
