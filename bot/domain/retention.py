"""Retention: cut every link between a case and a person once it is no longer needed.

N days after a case closes (`[retention] days_after_close`), `purge` removes its chat id
link, phone number, message-id pairs and due times; a client with nothing open left is
deleted with her message ids and conversation state. `/forget` does the same at once for
the client who asks. The anonymous appeal record always stays.

Data access: ORM: SELECTs of the mapped classes and bulk UPDATEs and DELETEs on them
through the session (`session.execute`), the client and her cases as entities where one is
erased.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.domain import blocks, clients
from bot.domain.flow import Step
from models import (
    Appeal,
    Case,
    CaseStatus,
    ChatMessage,
    Client,
    DueTime,
    ProcessedUpdate,
    RelayLink,
    WaitingMessage,
)

log = logging.getLogger(__name__)

CASE_KINDS = ("escalate", "contact", "check_in")
AUTODELETE_KIND = "autodelete"
CLIENT_KINDS = (AUTODELETE_KIND, "redelete")
# Telegram deletes messages up to 48 hours old: a record kept after /forget only to
# delete the rest goes after that, whether they could be deleted or not.
DELETE_WINDOW = timedelta(hours=48)
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


async def forget_client(session: AsyncSession, *, client: Client, now: datetime,
                        undeleted: bool = False) -> PurgeReport:
    """`/forget`: close her open and paused cases ("client left"), purge them all, unlink
    her appeals and delete her record.

    Her appeals keep their anonymous facts, but their yearly pseudonym is replaced by a
    random value of the same form (one per pseudonym, so the past's distinct-people counts
    stay right): nothing links them to her any more, and should she write again this year
    she counts as a new person. `undeleted`: some of her chat's messages could not be
    deleted yet; the record is then emptied instead and kept, with only those ids and her
    chat, until they are (`drop_erased`)."""
    report = PurgeReport()
    await clients.drop_waiting(session, client_id=client.id)
    cases = (await session.scalars(select(Case).where(Case.client_id == client.id))).all()
    # Her earlier requests, purged or not, no longer link to her.
    await session.execute(update(Case).where(Case.chat_hmac == client.chat_hmac)
                          .values(chat_hmac=None)
                          .execution_options(synchronize_session=False))
    for case in cases:
        case.chat_hmac = None
        if case.status != CaseStatus.CLOSED:
            if case.owner_id is not None:
                report.ended.append((case.owner_id, case.id))
            case.status = CaseStatus.CLOSED
            case.closed_at = now
            case.outcome = case.outcome or "client_left"
            if case.appeal_id is not None:
                await session.execute(update(Appeal).where(
                    Appeal.id == case.appeal_id, Appeal.outcome.is_(None))
                    .values(outcome=case.outcome))
        await purge_case(session, case=case, now=now)
        report.cases += 1
    await _unlink_appeals(session, [c.appeal_id for c in cases if c.appeal_id is not None])
    if undeleted:
        await _empty_client(session, client_id=client.id, now=now)
    else:
        await _delete_client(session, client_id=client.id, now=now)
    report.clients = 1
    log.info("a client erased her record (%d case(s) purged)", report.cases)
    return report


async def _unlink_appeals(session: AsyncSession, appeal_ids: list[int]) -> None:
    """A fresh random pseudonym for each pseudonym among these appeals."""
    if not appeal_ids:
        return
    rows = await session.execute(select(Appeal.id, Appeal.person)
                                 .where(Appeal.id.in_(appeal_ids)))
    by_person: dict[int, list[int]] = {}
    for appeal_id, person in rows.all():
        by_person.setdefault(int(person), []).append(int(appeal_id))
    for ids in by_person.values():
        await session.execute(update(Appeal).where(Appeal.id.in_(ids))
                              .values(person=secrets.randbits(63)))


async def _empty_client(session: AsyncSession, *, client_id: int, now: datetime) -> None:
    """Everything of her record but her chat and the ids still to delete in it."""
    await _cancel_client_due_times(session, client_id=client_id, now=now,
                                   kinds=(AUTODELETE_KIND,))
    await session.execute(delete(ChatMessage).where(ChatMessage.client_id == client_id,
                                                    ChatMessage.tries == 0))
    await session.execute(update(Client).where(Client.id == client_id).values(
        language=None, step=Step.NEW.value, step_data={}, menu_message_id=None, shared_device=None,
        auto_delete_minutes=None, code_word_hmac=None, code_word_fails=0, code_word_day=None,
        code_word_locked=False, erased=True, exited_at=now, last_seen_at=now))


async def drop_erased(session: AsyncSession, *, client_id: int, now: datetime) -> None:
    """The record kept after /forget for messages not deleted yet: gone now."""
    erased = await session.scalar(select(Client.erased).where(Client.id == client_id))
    if erased:
        await _delete_client(session, client_id=client_id, now=now)


async def _cancel_client_due_times(session: AsyncSession, *, client_id: int, now: datetime,
                                   kinds: tuple[str, ...] = CLIENT_KINDS) -> None:
    await session.execute(
        update(DueTime)
        .where(DueTime.kind.in_(kinds), DueTime.ref_id == client_id,
               DueTime.done_at.is_(None))
        .values(done_at=now)
    )


async def _delete_client(session: AsyncSession, *, client_id: int, now: datetime) -> None:
    await _cancel_client_due_times(session, client_id=client_id, now=now)
    await session.execute(delete(ChatMessage).where(ChatMessage.client_id == client_id))
    await session.execute(delete(Client).where(Client.id == client_id))


async def purge(session: AsyncSession, *, settings: Settings, now: datetime) -> PurgeReport:
    """Apply the retention policy now."""
    report = PurgeReport()
    await blocks.purge_expired(session, now=now)
    # Ids kept for a taker of a request that ended untaken (withdrawn, closed): gone.
    await session.execute(delete(WaitingMessage).where(WaitingMessage.case_id.in_(
        select(Case.id).where(Case.status == CaseStatus.CLOSED))))
    keep = timedelta(days=settings.retention.days_after_close)
    expired = (await session.scalars(
        select(Case).where(Case.status == CaseStatus.CLOSED, Case.purged_at.is_(None),
                           Case.closed_at <= now - keep)
    )).all()
    for case in expired:
        await purge_case(session, case=case, now=now)
        report.cases += 1
    await session.flush()
    # Past `returning_months`, a closed case no longer links to her.
    months = settings.retention.returning_months
    await session.execute(
        update(Case).where(Case.chat_hmac.is_not(None), Case.status == CaseStatus.CLOSED,
                           Case.closed_at <= now - timedelta(days=30 * months))
        .values(chat_hmac=None).execution_options(synchronize_session=False))
    # Clients with nothing open whose last word is older than the retention period.
    open_clients = select(Case.client_id).where(Case.client_id.is_not(None),
                                                Case.status != CaseStatus.CLOSED)
    unpurged = select(Case.client_id).where(Case.client_id.is_not(None),
                                            Case.purged_at.is_(None))
    stale = (await session.scalars(
        select(Client.id).where(Client.last_seen_at <= now - keep,
                                Client.id.not_in(open_clients), Client.id.not_in(unpurged))
    )).all()
    erased = (await session.scalars(
        select(Client.id).where(Client.erased.is_(True),
                                Client.last_seen_at <= now - DELETE_WINDOW))).all()
    for client_id in {*stale, *erased}:
        await _delete_client(session, client_id=client_id, now=now)
        report.clients += 1
    idle = now - timedelta(hours=settings.retention.idle_state_hours)
    result = await session.execute(
        update(Client)
        .where(Client.last_seen_at <= idle,
               Client.step.not_in((Step.NEW.value, Step.WAITING.value)))
        .values(step=Step.NEW.value, step_data={})
    )
    report.states_reset = int(getattr(result, "rowcount", 0) or 0)
    await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.at <= now - PROCESSED_UPDATES_KEPT)
    )
    log.info("purge: %d case(s), %d client(s), %d idle state(s)", report.cases, report.clients,
             report.states_reset)
    return report
