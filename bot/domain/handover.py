"""Handing a live conversation over to a colleague on duty, or to a role (issue 21 item 3).

Her specialist (or any coordinator) offers the case to one colleague or to everyone of a role
on duty; each gets a card, and the first to take it continues (as with a new case's cards:
one conditional UPDATE decides). The client is told that another specialist continues; the
audit log records the offer and the take. A handover note is a message copied to the
colleagues, never stored: only the id of the prompt it answers is kept.

Data access: ORM: the handover, the case and staff as entities from the session, ORM
UPDATEs whose row counts decide the first take, SELECTs of a few columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import aware
from bot.core.config import Settings
from bot.domain import staff as staff_service
from bot.domain.cases import CaseError, covers, may_act, role_for
from models import Case, CaseStatus, Handover, HandoverCard, Staff

# An offer nobody took in this time no longer moves the case.
OFFER_VALID = timedelta(hours=12)


@dataclass(frozen=True)
class Colleague:
    id: int
    name: str
    roles: frozenset[str]
    chat_enc: bytes


async def colleagues(session: AsyncSession, *, case: Case, settings: Settings,
                     now: datetime) -> list[Colleague]:
    """Specialists on duty other than the case's holder: whom it can be handed to."""
    return [Colleague(m.id, m.name, m.role_names, m.chat_enc)
            for m in await staff_service.on_duty(session, settings=settings, now=now)
            if staff_service.is_specialist(m) and m.id != case.owner_id]


async def live_case(session: AsyncSession, *, case_id: int,
                    member: staff_service.Actor) -> Case:
    """Her own active conversation (any, for a coordinator), or `CaseError` saying why."""
    case = await session.get(Case, case_id)
    if case is None or case.purged_at is not None:
        raise CaseError("case_gone")
    if not may_act(member, case.owner_id):
        raise CaseError("not_your_case", number=case_id)
    if case.status != CaseStatus.ACTIVE or case.owner_id is None:
        raise CaseError("handover_not_live", number=case_id)
    if case.contact == "call_later":
        # Her number is on the taker's card only, and a call never writes to her chat.
        raise CaseError("handover_call", number=case_id)
    return case


@dataclass
class Offered:
    handover: Handover
    targets: list[Colleague] = field(default_factory=list)


async def offer(session: AsyncSession, *, case_id: int, member: staff_service.Actor,
                settings: Settings, now: datetime, to_staff_id: int | None = None,
                role: str | None = None) -> Offered:
    """Offer the live case to one colleague on duty, or to everyone on duty of `role`."""
    case = await live_case(session, case_id=case_id, member=member)
    on_duty = await colleagues(session, case=case, settings=settings, now=now)
    if to_staff_id is not None:
        targets = [c for c in on_duty if c.id == to_staff_id]
    else:
        targets = [c for c in on_duty if role is not None and covers_role(c, role)]
    if not targets:
        raise CaseError("handover_nobody")
    handover = Handover(case_id=case.id, from_staff_id=case.owner_id, to_staff_id=to_staff_id,
                        role=role, by_staff_id=member.id, created_at=now)
    session.add(handover)
    await session.flush()
    await staff_service.audit(session, now=now, action="case.handover", staff_id=member.id,
                              case_id=case.id,
                              detail=f"to member {to_staff_id}" if to_staff_id else role)
    return Offered(handover, targets)


def covers_role(colleague: Colleague, role: str) -> bool:
    return covers(colleague.roles, role)


@dataclass
class TakenOver:
    case: Case
    from_staff_id: int | None
    role: str  # the taker's role for the case, as the client is told
    # Other colleagues' cards: (her Telegram id, encrypted; card message id).
    others: list[tuple[bytes, int]]


async def take_over(session: AsyncSession, *, handover_id: int, member: staff_service.Actor,
                    now: datetime) -> TakenOver:
    """The first colleague offered the handover takes the case; anyone else is refused."""
    handover = await session.get(Handover, handover_id)
    if handover is None:
        raise CaseError("expired_button")
    offered = await session.scalar(select(HandoverCard.id).where(
        HandoverCard.handover_id == handover.id, HandoverCard.staff_id == member.id))
    if offered is None:
        raise CaseError("not_allowed")
    if handover.taken_by is not None:
        taker = await session.get(Staff, handover.taken_by)
        raise CaseError("already_taken", number=handover.case_id,
                        name=taker.name if taker else "—")
    newer = await session.scalar(select(Handover.id).where(
        Handover.case_id == handover.case_id, Handover.id > handover.id).limit(1))
    if newer is not None or aware(handover.created_at) < now - OFFER_VALID:
        # A later handover of the case, or an offer nobody took for hours: not this one.
        raise CaseError("handover_gone", number=handover.case_id)
    moved = cast(CursorResult[Any], await session.execute(
        update(Case).where(Case.id == handover.case_id, Case.status == CaseStatus.ACTIVE,
                           Case.owner_id == handover.from_staff_id)
        .values(owner_id=member.id)))
    claimed = cast(CursorResult[Any], await session.execute(
        update(Handover).where(Handover.id == handover.id, Handover.taken_by.is_(None))
        .values(taken_by=member.id, taken_at=now)))
    if moved.rowcount != 1 or claimed.rowcount != 1:
        raise CaseError("handover_gone", number=handover.case_id)
    case = await session.get(Case, handover.case_id, populate_existing=True)
    assert case is not None
    if handover.from_staff_id is not None:
        previous = await staff_service.actor(session, handover.from_staff_id)
        if previous is not None and previous.active_case_id == case.id:
            await staff_service.set_active_case(session, previous, None)
    await staff_service.set_active_case(session, member, case.id)
    await staff_service.audit(session, now=now, action="case.take_over", staff_id=member.id,
                              case_id=case.id, detail=f"from member {handover.from_staff_id}")
    cards = (await session.execute(
        select(Staff.tg_id_enc, HandoverCard.message_id)
        .join(Staff, Staff.id == HandoverCard.staff_id)
        .where(HandoverCard.handover_id == handover.id,
               HandoverCard.staff_id != member.id))).all()
    others = [(bytes(chat), int(message_id)) for chat, message_id in cards
              if message_id is not None]
    # She is told whom she talks with now: the case's role if the taker has it, else the
    # taker's own (a psychologist continuing a child psychologist's case).
    role = role_for(case.category)
    if role not in member.role_names:
        role = next(iter(sorted(member.role_names & set(staff_service.SPECIALIST_ROLES))),
                    role)
    return TakenOver(case, handover.from_staff_id, role, others)


async def note_target(session: AsyncSession, *, staff_id: int,
                      prompt_message_id: int) -> list[int] | None:
    """The colleagues a reply to handover prompt `prompt_message_id` goes to (their
    staff ids), or None when that message is no handover prompt of hers."""
    handover = await session.scalar(select(Handover).where(
        Handover.by_staff_id == staff_id, Handover.prompt_message_id == prompt_message_id))
    if handover is None:
        return None
    if handover.taken_by is not None:
        return [handover.taken_by]
    return list((await session.scalars(select(HandoverCard.staff_id).where(
        HandoverCard.handover_id == handover.id))).all())
