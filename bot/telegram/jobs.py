"""What due times do when they come: thin callbacks that open a session and call a service.

Data access: ORM: cases, staff and clients as entities from the session, SELECTs of a few
columns.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.domain import callbacks as cb
from bot.domain import cases as case_service
from bot.domain import checkin, retention
from bot.domain import due as due_times
from bot.domain.screens import Button, Screen
from bot.telegram import scheduling
from bot.telegram.delivery import (
    AUTODELETE,
    REDELETE,
    SentBefore,
    delete_messages,
    deliver_to_staff,
    keep_for_deletion,
    send_screen,
)
from models import Case, CaseOffer, CaseStatus, ChatMessage, Client, DueTime, RosterShift, Staff

if TYPE_CHECKING:
    from bot.telegram.context import SezimApp

log = logging.getLogger(__name__)

PURGE = "purge"
PURGE_REF = 0


@scheduling.runner(case_service.ESCALATE)
async def escalate(app: SezimApp, case_id: int) -> None:
    """Nobody took the case in time: the next on-duty person, then everyone."""
    data = app.bot_data
    async with data.sessions() as session, session.begin():
        outcome = await case_service.escalate(
            session, case_id=case_id, settings=data.settings, texts=data.texts,
            crypto=data.crypto, now=data.clock.now())
        pending = await _pending(session, case_service.ESCALATE, case_id)
    await deliver_to_staff(app, outcome.deliveries)
    if pending is not None:
        scheduling.arm(app, case_service.ESCALATE, case_id, pending)


@scheduling.runner(case_service.CONTACT_DUE)
async def contact_time(app: SezimApp, case_id: int) -> None:
    """Her safe time has come (or a new request's routing did not run after her answer:
    the process died, or the database failed): the case goes to whoever is on duty now."""
    data = app.bot_data
    async with data.sessions() as session, session.begin():
        case = await session.get(Case, case_id)
        if case is None or not case_service.routable(case):
            return
        outcome = await case_service.route_case(
            session, case=case, settings=data.settings, texts=data.texts, crypto=data.crypto,
            now=data.clock.now())
        pending = await _pending(session, case_service.ESCALATE, case_id)
    await deliver_to_staff(app, outcome.deliveries)
    if pending is not None:
        scheduling.arm(app, case_service.ESCALATE, case_id, pending)


@scheduling.runner(checkin.CHECK_IN)
async def check_in(app: SezimApp, case_id: int) -> None:
    """The time she chose: one neutral message, with "I'm OK", "I'd like to talk" and
    quick exit. Nothing if she left or erased herself since (it was cancelled then)."""
    data = app.bot_data
    async with data.sessions() as session:
        case = await session.get(Case, case_id)
        client = await session.get(Client, case.client_id) if case and case.client_id else None
    if case is None or client is None or not checkin.may_reach(case, client):
        return  # she left with quick exit (without coming back), or erased herself
    texts, lang = data.texts, client.language
    chat_id = data.crypto.decrypt_int(client.chat_id_enc)
    screen = Screen(texts.t(lang, "checkin_message"), [
        [Button.of(texts.t(lang, "btn_checkin_ok"), cb.CheckInReply(case_id, "ok"))],
        [Button.of(texts.t(lang, "btn_checkin_talk"), cb.CheckInReply(case_id, "talk"))],
        [Button.of(texts.t(lang, "btn_exit"), cb.Exit())]])
    message_id = await send_screen(app, chat_id, screen)
    await keep_for_deletion(app, chat_id, [message_id], sent=SentBefore(client.exited_at))


async def _pending(session: AsyncSession, kind: str, ref_id: int) -> datetime | None:
    return await session.scalar(
        select(DueTime.due_at).where(DueTime.kind == kind, DueTime.ref_id == ref_id,
                                     DueTime.done_at.is_(None))
    )


@scheduling.runner(AUTODELETE)
async def autodelete(app: SezimApp, client_id: int) -> None:
    """Delete her messages older than the period she chose; come back for the rest."""
    data = app.bot_data
    now = data.clock.now()
    async with data.sessions() as session:
        client = await session.get(Client, client_id)
        if client is None or not client.auto_delete_minutes:
            return
        period = timedelta(minutes=client.auto_delete_minutes)
        chat_id = data.crypto.decrypt_int(client.chat_id_enc)
    await delete_messages(app, client_id=client_id, chat_id=chat_id, older_than=now - period)
    async with data.sessions() as session, session.begin():
        oldest = await session.scalar(
            select(ChatMessage.sent_at).where(ChatMessage.client_id == client_id)
            .order_by(ChatMessage.sent_at).limit(1)
        )
        if oldest is not None:
            await due_times.schedule(session, kind=AUTODELETE, ref_id=client_id,
                                      due_at=max(now + timedelta(seconds=30), oldest + period))


@scheduling.runner(REDELETE)
async def redelete(app: SezimApp, client_id: int) -> None:
    """Messages in her chat whose deletion failed (a 5xx, the network): try again. A record
    kept after /forget only for them goes once they are gone."""
    data = app.bot_data
    async with data.sessions() as session:
        client = await session.get(Client, client_id)
        if client is None:
            return
        chat_id = data.crypto.decrypt_int(client.chat_id_enc)
        erased = client.erased
    left = await delete_messages(app, client_id=client_id, chat_id=chat_id, only_failed=True)
    if erased and not left:
        async with data.sessions() as session, session.begin():
            await retention.drop_erased(session, client_id=client_id, now=data.clock.now())


@scheduling.runner(PURGE)
async def daily_purge(app: SezimApp, _ref: int) -> None:
    """Apply the retention policy, then come back tomorrow."""
    data = app.bot_data
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        await retention.purge(session, settings=data.settings, now=now)
        await due_times.schedule(session, kind=PURGE, ref_id=PURGE_REF,
                                  due_at=now + timedelta(days=1))


async def ensure_daily_purge(app: SezimApp) -> None:
    """The daily purge is a due time like any other; create it once."""
    data = app.bot_data
    async with data.sessions() as session, session.begin():
        row = await session.scalar(
            select(DueTime).where(DueTime.kind == PURGE, DueTime.ref_id == PURGE_REF)
        )
        if row is None:
            due = data.clock.now() + timedelta(hours=1)
            await due_times.schedule(session, kind=PURGE, ref_id=PURGE_REF, due_at=due)


SHIFT = "shift"


def next_shift_start(shift: RosterShift, now: datetime, settings: Settings) -> datetime:
    """The next time (after `now`) this weekly shift begins."""
    tz = settings.organization.tz
    local = now.astimezone(tz)
    days_ahead = (shift.weekday - local.weekday()) % 7
    start = (local + timedelta(days=days_ahead)).replace(
        hour=shift.start_minute // 60, minute=shift.start_minute % 60, second=0,
        microsecond=0)
    if start <= local:
        start += timedelta(days=7)
    return start.astimezone(UTC)


async def schedule_shift_starts(session: AsyncSession, *, settings: Settings,
                                now: datetime) -> int:
    """A due time for the start of every roster shift (the roster was just reloaded)."""
    await session.execute(
        update(DueTime).where(DueTime.kind == SHIFT, DueTime.done_at.is_(None))
        .values(done_at=now)
    )
    shifts = (await session.scalars(select(RosterShift))).all()
    for shift in shifts:
        await due_times.schedule(session, kind=SHIFT, ref_id=shift.id,
                                  due_at=next_shift_start(shift, now, settings))
    return len(shifts)


@scheduling.runner(SHIFT)
async def shift_start(app: SezimApp, shift_id: int) -> None:
    """Her shift begins: tell her what waits, then come back next week."""
    data = app.bot_data
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        shift = await session.get(RosterShift, shift_id)
        if shift is None:
            return
        member = await session.get(Staff, shift.staff_id)
        waiting = await case_service.count_waiting(session)
        await due_times.schedule(session, kind=SHIFT, ref_id=shift_id,
                                  due_at=next_shift_start(shift, now + timedelta(minutes=1),
                                                          data.settings))
    if member is None or not member.active:
        return
    text = data.texts.t(None, "shift_start", count=waiting)
    await send_screen(app, data.crypto.decrypt_int(member.tg_id_enc), Screen(text))


async def resend_undelivered_cards(app: SezimApp) -> int:
    """Cards written to the database but never delivered (the process died between the
    two): send them now, so a crash loses no offer of a waiting case."""
    data = app.bot_data
    now = data.clock.now()
    deliveries = []
    async with data.sessions() as session:
        rows = (await session.execute(
            select(CaseOffer, Case).join(Case, Case.id == CaseOffer.case_id)
            .where(CaseOffer.message_id.is_(None), CaseOffer.passed.is_(False),
                   Case.status.in_((CaseStatus.WAITING, CaseStatus.PAUSED)),
                   Case.owner_id.is_(None))
        )).all()
        language = data.texts.lang(None)
        for offer, case in rows:
            # Untaken cards never show her phone number.
            deliveries.append(case_service.Delivery(
                offer.staff_id,
                case_service.card(case, texts=data.texts, language=language, now=now),
                case.id))
    if deliveries:
        log.info("re-sending %d card(s) not delivered before a restart", len(deliveries))
        await deliver_to_staff(app, deliveries)
    return len(deliveries)
