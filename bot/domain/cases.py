"""Cases: creation with their anonymous appeal record, routing to whoever is on duty,
escalation when nobody takes them.

Routing: a new case goes to one on-duty specialist of the fitting role (legal: lawyer;
child: child psychologist, else psychologist; the rest: psychologist) as a card. Unclaimed
after the urgency's timeout it goes to the next on-duty person of that role, then to every
on-duty specialist and every coordinator. Each step's due time is a `DueTime` row.

A request made in a chat is routed in two steps: `hold` writes, with the case, a due time
ROUTE_GRACE away that would route it; her answer is sent; then `route_held` claims that due
time and offers the case at once. If the process dies in between, the due time routes it;
if anything else saw to the case first (it was taken from the queue, she withdrew it, the
due time ran), the claim fails and nothing is offered twice.

Data access: a case is an entity from the session (`session.get`, `select(Case)`,
`update(Case)...returning(Case)`); reads of a few columns and writes of rows the session
does not hold (offers, the appeal record, waiting messages) are Core statements run with
`db.run`. The statements of a request, its routing, a take and a close are built once, with
bound parameters (building one cost more than running it).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import db
from bot.core.clock import aware
from bot.core.config import Settings
from bot.core.crypto import Crypto
from bot.core.i18n import Texts
from bot.domain import callbacks
from bot.domain import due as due_times
from bot.domain import staff as staff_service
from bot.domain.clients import ClientRecord
from bot.domain.hours import Hours, when_label
from bot.domain.screening import flags_from_text
from bot.domain.screens import Button, Screen
from models import (
    Appeal,
    Case,
    CaseOffer,
    CaseStatus,
    CoverageGap,
    DueTime,
    Staff,
    Urgency,
    WaitingMessage,
)

log = logging.getLogger(__name__)

CATEGORIES = ("psych", "legal", "shelter", "child", "other")
FOR_WHOM = ("me", "child", "other")
CONTACTS = ("chat_now", "chat_later", "call_later")
ESCALATE = "escalate"
CONTACT_DUE = "contact"
LEVEL_BROADCAST = 2
# A new request's routing runs right after her answer; its safety net falls due this late.
ROUTE_GRACE = timedelta(seconds=10)


@dataclass
class Delivery:
    """A message for one staff member, about one case."""

    staff_id: int
    screen: Screen
    case_id: int
    card: bool = True  # a card with Take/Pass: its message id is kept to update it later
    # Her Telegram id (encrypted), when routing has just read it: not read again to send.
    chat_enc: bytes | None = None


@dataclass
class RouteOutcome:
    deliveries: list[Delivery] = field(default_factory=list)
    # Nobody of any specialist role is on duty: the client is told, coordinators alerted.
    nobody_on_duty: bool = False


@dataclass
class Held:
    """A new case whose offer waits until her answer is on its way (`route_held`)."""

    case: Case
    specialists: list[staff_service.DutyMember]  # on duty when it was created
    due_at: datetime  # when its due time routes it, should the offer not follow

    @property
    def nobody_on_duty(self) -> bool:
        return not self.specialists


def role_for(category: str | None) -> str:
    if category == "legal":
        return "lawyer"
    if category == "child":
        return "child_psychologist"
    return "psychologist"


def timeout_for(urgency: str, settings: Settings) -> timedelta:
    esc = settings.escalation
    minutes = {
        Urgency.EMERGENCY: esc.emergency_minutes,
        Urgency.HIGH: esc.high_minutes,
    }.get(Urgency(urgency), esc.standard_minutes)
    return timedelta(minutes=minutes)


def out_of_hours(now: datetime, settings: Settings) -> bool:
    """Outside the weekly office hours, or on a holiday."""
    return not Hours.of(settings).is_open(now)


_NEW_APPEAL = sql_insert(Appeal).returning(Appeal.id)
_NEW_CASE = sql_insert(Case).returning(Case)


async def create_case(
    session: AsyncSession,
    *,
    client: ClientRecord,
    telegram_id: int,
    crypto: Crypto,
    settings: Settings,
    now: datetime,
    urgency: Urgency,
    category: str | None = None,
    for_whom: str | None = None,
    region: str | None = None,
    screen: str | None = None,
    flags: str | None = None,
    contact: str = "chat_now",
    contact_at: datetime | None = None,
    phone_enc: bytes | None = None,
    after_exit: Case | None = None,
) -> Case:
    """A new case and its anonymous appeal record (the yearly pseudonym counts people).
    `after_exit`: the same account's case paused by quick exit, named on the new card."""
    local = staff_service.local_time(now, settings.organization.tz)
    language = client.language or settings.organization.default_language
    # The appeal is only written here: an INSERT returning its id, no entity to track.
    appeal_id = (await db.run(session, _NEW_APPEAL, dict(
        day=local.date(), month=local.year * 100 + local.month,
        person=crypto.pseudonym(telegram_id, local.year), region=region, category=category,
        for_whom=for_whom, urgency=urgency.value, language=language,
        out_of_hours=out_of_hours(now, settings), screen=screen,
    ))).scalar_one()
    values: dict[str, Any] = dict(
        client_id=client.id, appeal_id=appeal_id, status=CaseStatus.WAITING,
        urgency=urgency.value, category=category, for_whom=for_whom, region=region,
        language=language, screen=screen, screen_flags=flags, contact=contact,
        contact_at=contact_at, phone_enc=phone_enc, created_at=now, escalation_level=0,
        owner_id=None, taken_at=None, first_reply_at=None, closed_at=None, outcome=None,
        rating=None, purged_at=None, paused_at=None, paused_from=None,
        after_exit_case_id=after_exit.id if after_exit is not None else None,
        after_exit_at=after_exit.paused_at if after_exit is not None else None,
        chat_hmac=crypto.lookup(telegram_id) if settings.retention.returning_months else None,
    )
    # One INSERT returning the new row as the session's entity (no flush of the unit of
    # work): routing changes it, and the session writes what changed.
    case: Case = (await session.scalars(_NEW_CASE, values)).one()
    log.info("case %d created (%s, %s)", case.id, case.urgency, case.category or "-")
    return case


async def update_region(session: AsyncSession, *, case: Case, region: str | None) -> None:
    case.region = region
    if case.appeal_id is not None:
        appeal = await session.get(Appeal, case.appeal_id)
        if appeal is not None:
            appeal.region = region


async def last_region(session: AsyncSession, client_id: int) -> str | None:
    """The region she gave on her latest request, if any (to name partners near her)."""
    region = await session.scalar(
        select(Case.region).where(Case.client_id == client_id, Case.region.is_not(None),
                                  Case.purged_at.is_(None))
        .order_by(Case.id.desc()).limit(1))
    return None if region in (None, "unspecified", "abroad") else str(region)


# A paused case is not hers to whoever holds her phone now: it is left out (she comes back
# to it only with her code word: `resumable_case_of`).
NOT_OPEN = (CaseStatus.CLOSED, CaseStatus.PAUSED)


async def open_case_of(session: AsyncSession, client_id: int) -> Case | None:
    """The client's newest case that is waiting or active (not closed, not paused)."""
    return await session.scalar(
        select(Case).where(Case.client_id == client_id, Case.status.not_in(NOT_OPEN))
        .order_by(Case.id.desc()).limit(1))


async def open_cases_of(session: AsyncSession, client_id: int) -> list[Case]:
    """Every case of the client that is waiting or active (quick exit pauses them all)."""
    return list((await session.scalars(
        select(Case).where(Case.client_id == client_id, Case.status.not_in(NOT_OPEN))
        .order_by(Case.id))).all())


async def resumable_case_of(session: AsyncSession, client_id: int, *,
                            word_set_at: datetime | None) -> Case | None:
    """The paused case her code word (chosen at `word_set_at`) brings back: her newest one
    paused after the word was chosen, and not one that whoever held her phone asked for
    after her quick exit (such a case is flagged `after_exit_case_id`), unless the word was
    chosen after that case was made (then the word is of the one who made it)."""
    if word_set_at is None:
        return None
    return await session.scalar(
        select(Case).where(
            Case.client_id == client_id, Case.status == CaseStatus.PAUSED,
            Case.paused_at >= word_set_at,
            or_(Case.after_exit_case_id.is_(None), Case.created_at <= word_set_at))
        .order_by(Case.id.desc()).limit(1))


_LEFT_BY_EXIT = (
    select(Case).where(Case.client_id == bindparam("client_id"), Case.paused_at.is_not(None),
                       Case.status.in_([CaseStatus.PAUSED, CaseStatus.CLOSED]))
    .order_by(Case.id.desc()).limit(1))


async def left_by_exit_of(session: AsyncSession, client_id: int) -> Case | None:
    """The client's newest case she left with quick exit and did not come back to, whether
    it is still paused or was closed meanwhile (a new request's card names it)."""
    return await session.scalar(_LEFT_BY_EXIT, {"client_id": client_id})


@dataclass(frozen=True)
class OpenCase:
    """Her newest case that is not closed, as her messages need it: whether it is a
    conversation now, and with whom (her specialist's Telegram id, encrypted; None if
    she is no longer active staff)."""

    id: int
    status: str
    owner_id: int | None
    owner_chat_enc: bytes | None


# Built once, with a bound parameter: every message she sends in a conversation reads it.
_OPEN_CASE_BRIEF = (
    select(Case.id, Case.status, Staff.id, Staff.tg_id_enc)
    .outerjoin(Staff, and_(Staff.id == Case.owner_id, Staff.active.is_(True)))
    .where(Case.client_id == bindparam("client_id"), Case.status.not_in(NOT_OPEN))
    .order_by(Case.id.desc()).limit(1))


async def open_case_brief(session: AsyncSession, client_id: int) -> OpenCase | None:
    """`OpenCase` of the client, in one read of a few columns (every message she sends in a
    conversation asks it)."""
    await session.flush()  # a case changed in this transaction reads as it is now
    row = (await db.run(session, _OPEN_CASE_BRIEF, {"client_id": client_id})).first()
    if row is None:
        return None
    # Outer-joined: the owner's columns are None when she is not active staff.
    case_id, status, owner_id, owner_chat_enc = row
    return OpenCase(case_id, status, cast(int | None, owner_id),
                    bytes(owner_chat_enc) if owner_chat_enc is not None else None)


# Her load: the cases she works on, and the cards of waiting cases still offered to her
# (without those, every request of a busy hour would go to the same specialist until she
# took some, while the others waited idle). The cards are found from the waiting cases
# (few) through their offers: never by reading every card a member was ever sent, nor by
# probing each waiting case for each member (150 waiting, 40 members, 3,000 older offers:
# 0.16 ms, against 0.65 ms for the probes and 1.1 ms for the read of every offer that
# SQLite chose once it had ANALYZE statistics). Built once: every request is routed by it.
_LOADS = (
    select(Case.owner_id.label("staff_id"))
    .where(Case.owner_id.in_(bindparam("staff_ids", expanding=True)),
           Case.status == CaseStatus.ACTIVE)
    .union_all(select(CaseOffer.staff_id).where(
        CaseOffer.case_id.in_(select(Case.id).where(Case.status == CaseStatus.WAITING)),
        CaseOffer.passed.is_(False)))
    .subquery())
_LOAD = select(_LOADS.c.staff_id, func.count()).group_by(_LOADS.c.staff_id)


async def _load(session: AsyncSession, staff_ids: list[int]) -> dict[int, int]:
    """Active cases and unanswered cards per staff member, to offer new ones to the least
    loaded first."""
    if not staff_ids:
        return {}
    await session.flush()  # a card passed in this transaction no longer counts
    rows = await db.run(session, _LOAD, {"staff_ids": staff_ids})
    return {int(owner): count for owner, count in rows.all() if owner is not None}


_OFFERED = select(CaseOffer.staff_id).where(CaseOffer.case_id == bindparam("case_id"))


async def _offered(session: AsyncSession, case_id: int) -> set[int]:
    rows = await db.run(session, _OFFERED, {"case_id": case_id})
    return set(rows.scalars().all())


def card(case: Case, *, texts: Texts, language: str, now: datetime,
         phone: str | None = None, with_buttons: bool = True,
         earlier: Sequence[Earlier] = ()) -> Screen:
    """The case card a specialist sees: everything she needs to decide, nothing more."""
    t = texts.t
    waited = max(0, int((now - aware(case.created_at)).total_seconds() // 60))
    flags = flags_from_text(case.screen_flags)
    lines = [
        t(language, "card_title", number=case.id, urgency=t(language, f"urgency_{case.urgency}")),
        t(language, "card_line", label=t(language, "card_category"),
          value=t(language, f"cat_{case.category}") if case.category else "—"),
        t(language, "card_line", label=t(language, "card_for"),
          value=t(language, f"for_{case.for_whom}") if case.for_whom else "—"),
        t(language, "card_line", label=t(language, "card_region"),
          value=texts.region_name(language, case.region)),
        t(language, "card_line", label=t(language, "card_language"), value=case.language),
        t(language, "card_line", label=t(language, "card_screen"),
          value=t(language, f"screen_{case.screen or 'skipped'}")
          + (f" ({', '.join(str(f) for f in flags)})" if flags else "")),
        t(language, "card_line", label=t(language, "card_contact"),
          value=t(language, f"contact_{case.contact}")),
        t(language, "card_waiting", minutes=waited),
    ]
    tz = texts.settings.organization.tz
    if case.contact_at is not None:
        local = staff_service.local_time(aware(case.contact_at), tz)
        lines.append(t(language, "card_line", label=t(language, "card_when"),
                       value=local.strftime("%d.%m %H:%M")))
    if phone:
        # Only on the card of the one who took the call, while the case is open.
        lines.append(t(language, "card_line", label=t(language, "card_phone"), value=phone))
    if case.after_exit_case_id is not None and case.after_exit_at is not None:
        lines.append(t(language, "card_after_exit", number=case.after_exit_case_id,
                       time=_local_text(aware(case.after_exit_at), tz)))
    if case.status == CaseStatus.PAUSED and case.paused_at is not None:
        key = "card_paused_call" if case.contact == "call_later" else "card_paused"
        lines.append(t(language, key, time=_local_text(aware(case.paused_at), tz)))
    if earlier:
        lines.append(t(language, "card_earlier"))
        for e in earlier:
            lines.append(t(
                language, "card_earlier_line", number=e.id,
                date=staff_service.local_time(e.created_at, tz).strftime("%d.%m.%Y"),
                category=t(language, f"cat_{e.category}") if e.category else "—",
                outcome=t(language, f"outcome_{e.outcome}") if e.outcome else
                t(language, "card_earlier_open"), name=e.owner or "—"))
    buttons: list[list[Button]] = []
    if with_buttons:
        buttons = [[Button.of(t(language, "btn_take"), callbacks.Take(case.id)),
                    Button.of(t(language, "btn_pass"), callbacks.Pass(case.id))]]
    return Screen("\n".join(lines), buttons, urgent=case.urgency != Urgency.STANDARD)


@dataclass(frozen=True)
class Earlier:
    """One of her earlier requests, as her new card lists it."""

    id: int
    created_at: datetime
    category: str | None
    outcome: str | None
    owner_id: int | None
    owner: str | None


EARLIER_SHOWN = 5


# Built once: every card reads it.
_EARLIER = (
    select(Case.id, Case.created_at, Case.category, Case.outcome, Case.owner_id, Staff.name)
    .outerjoin(Staff, Staff.id == Case.owner_id)
    .where(Case.chat_hmac == bindparam("chat_hmac"), Case.id < bindparam("case_id"),
           Case.created_at >= bindparam("since"))
    .order_by(Case.id.desc()).limit(EARLIER_SHOWN))


async def earlier_cases(session: AsyncSession, *, case: Case, settings: Settings,
                        now: datetime) -> list[Earlier]:
    """Her requests before `case` within `[retention] returning_months`, newest first, by
    the HMAC link (gone after /forget). Who handled each is named."""
    if case.chat_hmac is None or not settings.retention.returning_months:
        return []
    since = now - timedelta(days=30 * settings.retention.returning_months)
    rows = (await db.run(session, _EARLIER, {"chat_hmac": case.chat_hmac, "case_id": case.id,
                                            "since": since})).all()
    return [Earlier(case_id, aware(created_at), category, outcome, owner_id, owner)
            for case_id, created_at, category, outcome, owner_id, owner in rows]


def _local_text(moment: datetime, tz: Any) -> str:
    return staff_service.local_time(moment, tz).strftime("%d.%m %H:%M")


def call_phone(case: Case, crypto: Crypto) -> str | None:
    """The number to call, decrypted only for the taker's card of an open call case."""
    if case.phone_enc is None or case.contact != "call_later" or \
            case.status == CaseStatus.CLOSED:
        return None
    return crypto.decrypt(case.phone_enc)


def outcome_buttons(texts: Texts, language: str, case_id: int) -> list[list[Button]]:
    """One button per outcome, closing `case_id` with it."""
    return [[Button.of(texts.t(language, f"outcome_{o}"), callbacks.Close(case_id, o))]
            for o in OUTCOMES]


_NEW_OFFER = sql_insert(CaseOffer)


async def _deliver_cards(
    session: AsyncSession, *, case: Case, staff_ids: list[int], offered: set[int],
    texts: Texts, crypto: Crypto, now: datetime, chats: dict[int, bytes],
    earlier: Sequence[Earlier] = (),
) -> list[Delivery]:
    """Cards for `staff_ids`; an offer row for each not `offered` the case before.
    `chats`: the encrypted Telegram ids known of them."""
    deliveries = []
    language = texts.settings.organization.default_language
    new_offers = [{"case_id": case.id, "staff_id": staff_id, "offered_at": now}
                  for staff_id in staff_ids if staff_id not in offered]
    if new_offers:
        await db.run(session, _NEW_OFFER, new_offers)
    for staff_id in staff_ids:
        # No phone number here: it is shown only to whoever takes the call.
        deliveries.append(Delivery(staff_id, card(case, texts=texts, language=language,
                                                   now=now, earlier=earlier), case.id,
                                   chat_enc=chats.get(staff_id)))
    return deliveries


async def route_case(
    session: AsyncSession, *, case: Case, settings: Settings, texts: Texts, crypto: Crypto,
    now: datetime,
) -> RouteOutcome:
    """Route a waiting case whose time has come (her safe time, or the due time `hold`
    wrote); one whose safe time is still ahead waits for it."""
    if (later := _safe_time_ahead(case, now)) is not None:
        # She chose a safe time: nobody is asked before then.
        await due_times.schedule(session, kind=CONTACT_DUE, ref_id=case.id, due_at=later)
        return RouteOutcome()
    return await _offer_next(session, case=case, settings=settings, texts=texts, crypto=crypto,
                             now=now)


async def hold(session: AsyncSession, *, case: Case, settings: Settings,
               now: datetime) -> Held | None:
    """The first step of routing a case created in this transaction: a due time that routes
    it ROUTE_GRACE from now (or at her safe time: then None, nothing more to do now), and
    who is on duty (her answer says if nobody is)."""
    if (later := _safe_time_ahead(case, now)) is not None:
        await due_times.schedule(session, kind=CONTACT_DUE, ref_id=case.id, due_at=later,
                                  new=True)
        return None
    due_at = now + ROUTE_GRACE
    await due_times.schedule(session, kind=CONTACT_DUE, ref_id=case.id, due_at=due_at,
                              new=True)
    return Held(case, await _specialists_on_duty(session, settings=settings, now=now), due_at)


def routable(case: Case) -> bool:
    """Whether the case is still to be offered: waiting, or a phone call nobody has taken
    that she left with quick exit after asking for it (the call still reaches the role,
    flagged, and the specialist decides). A paused chat is not started."""
    if case.status == CaseStatus.WAITING:
        return True
    return case.status == CaseStatus.PAUSED and case.owner_id is None and \
        case.contact == "call_later"


def _safe_time_ahead(case: Case, now: datetime) -> datetime | None:
    """The time she chose to be contacted, if she chose one and it has not come."""
    if case.contact == "chat_now" or case.contact_at is None:
        return None
    later = aware(case.contact_at)
    return later if later > now else None


_CLAIM_HELD = (
    sql_update(DueTime)
    .where(DueTime.kind == CONTACT_DUE, DueTime.ref_id == bindparam("case_id"),
           DueTime.done_at.is_(None), DueTime.claimed_until.is_(None))
    .values(done_at=bindparam("now")))


async def route_held(
    session: AsyncSession, held: Held, *, settings: Settings, texts: Texts, crypto: Crypto,
    now: datetime,
) -> RouteOutcome:
    """The second step: offer the held case now, unless its due time was already done,
    cancelled or claimed (then whoever did that routes it, or it needs no routing)."""
    # Only a due time no run has claimed: a claimed one belongs to that run. The session is
    # new and holds none.
    claimed = await db.run(session, _CLAIM_HELD, {"case_id": held.case.id, "now": now})
    if claimed.rowcount != 1:
        return RouteOutcome()
    session.add(held.case)  # detached since the first step; nothing to read again
    # Nothing was offered or scheduled for it since the first step: the claim says so.
    return await _offer_next(session, case=held.case, settings=settings, texts=texts,
                             crypto=crypto, now=now, new=True, specialists=held.specialists)


async def _specialists_on_duty(session: AsyncSession, *, settings: Settings,
                               now: datetime) -> list[staff_service.DutyMember]:
    return [m for m in await staff_service.on_duty(session, settings=settings, now=now)
            if staff_service.is_specialist(m)]


async def _offer_next(
    session: AsyncSession, *, case: Case, settings: Settings, texts: Texts, crypto: Crypto,
    now: datetime, new: bool = False,
    specialists: list[staff_service.DutyMember] | None = None,
) -> RouteOutcome:
    offered = set() if new else await _offered(session, case.id)
    if specialists is None:
        specialists = await _specialists_on_duty(session, settings=settings, now=now)
    outcome = RouteOutcome(nobody_on_duty=not specialists)
    if new:
        outcome.deliveries.extend(await _coverage(session, case=case, settings=settings,
                                                  texts=texts, now=now,
                                                  specialists=specialists))
    earlier = await earlier_cases(session, case=case, settings=settings, now=now) \
        if new else []
    chats = {m.id: m.chat_enc for m in specialists}
    chosen: list[int] = []
    if case.escalation_level < LEVEL_BROADCAST and specialists:
        role = role_for(case.category)
        fitting = [m for m in specialists if role in m.role_names and m.id not in offered]
        if not fitting and role == "child_psychologist":
            fitting = [m for m in specialists
                       if "psychologist" in m.role_names and m.id not in offered]
        last = earlier[0].owner_id if earlier else None
        if last is not None and any(m.id == last for m in fitting):
            # She wrote before: first to the one who helped her then, if on duty for it.
            chosen = [last]
        elif fitting:
            load = await _load(session, [m.id for m in fitting])
            # Among equally loaded, the case number picks who is first: requests created at
            # the same moment (on PostgreSQL their transactions do not see each other's
            # offers) go round the team instead of all to the lowest staff id.
            by_id = sorted(m.id for m in fitting)
            turn = {staff_id: (i - case.id) % len(by_id) for i, staff_id in enumerate(by_id)}
            fitting.sort(key=lambda m: (load.get(m.id, 0), turn[m.id]))
            chosen = [fitting[0].id]
    if not chosen:
        # Nobody left to ask one by one: every on-duty specialist and every coordinator.
        case.escalation_level = LEVEL_BROADCAST
        coordinators = [m for m in await staff_service.list_staff(session)
                        if m.role_names & {"coordinator", "admin"}]
        chats.update((m.id, m.tg_id_enc) for m in coordinators)
        for staff_id in [m.id for m in specialists] + [m.id for m in coordinators]:
            if staff_id not in chosen:
                chosen.append(staff_id)
    outcome.deliveries += await _deliver_cards(session, case=case, staff_ids=chosen,
                                               offered=offered, texts=texts, crypto=crypto,
                                               now=now, chats=chats, earlier=earlier)
    if case.escalation_level < LEVEL_BROADCAST:
        await due_times.schedule(session, kind=ESCALATE, ref_id=case.id,
                                  due_at=now + timeout_for(case.urgency, settings), new=new)
    log.info("case %d offered at level %d to %d member(s)", case.id, case.escalation_level,
             len(chosen))
    return outcome


def covers(role_names: Collection[str], role: str) -> bool:
    """Whether someone with `role_names` can take a case for `role` (a psychologist, a
    child's case)."""
    return role in role_names or (role == "child_psychologist" and "psychologist" in role_names)


async def _coverage(
    session: AsyncSession, *, case: Case, settings: Settings, texts: Texts, now: datetime,
    specialists: list[staff_service.DutyMember],
) -> list[Delivery]:
    """A new case whose role nobody on duty has: the coordinators are told, once per gap,
    when the role's next shift begins. A role covered again ends its gap."""
    role = role_for(case.category)
    gap = await session.get(CoverageGap, role)
    if any(covers(m.role_names, role) for m in specialists):
        if gap is not None:
            await session.delete(gap)
        return []
    if gap is not None and (aware(gap.until) > now if gap.until is not None
                            else aware(gap.alerted_at) > now - timedelta(days=1)):
        return []  # told already, this gap
    hours = Hours.of(settings)
    until = hours.next_on_duty(role, now) if hours.has_roster(role) else None
    if gap is None:
        session.add(CoverageGap(role=role, alerted_at=now, until=until))
    else:
        gap.alerted_at, gap.until = now, until
    role_name = texts.t(None, f"role_{role}")
    text = texts.t(None, "coverage_gap", number=case.id, role=role_name,
                   time=when_label(texts, None, until, now=now, tz=settings.organization.tz)) \
        if until is not None else texts.t(None, "coverage_gap_none", number=case.id,
                                          role=role_name)
    coordinators = [m for m in await staff_service.list_staff(session)
                    if "coordinator" in m.role_names]
    log.info("case %d: no %s on duty; %d coordinator(s) told", case.id, role,
             len(coordinators))
    return [Delivery(m.id, Screen(text), case.id, card=False) for m in coordinators]


async def escalate(
    session: AsyncSession, *, case_id: int, settings: Settings, texts: Texts, crypto: Crypto,
    now: datetime,
) -> RouteOutcome:
    """The case's timeout passed: offer it to the next on-duty person, or to everyone."""
    case = await session.get(Case, case_id)
    if case is None or not routable(case):
        return RouteOutcome()
    case.escalation_level = min(LEVEL_BROADCAST, case.escalation_level + 1)
    return await _offer_next(session, case=case, settings=settings, texts=texts, crypto=crypto,
                             now=now)


class CaseError(Exception):
    """A staff action on a case that cannot be done; `key` names the text to show."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


OUTCOMES = ("legal", "psych", "child_psych", "shelter", "court_civil", "court_criminal",
            "rights_civil", "rights_criminal", "referral", "partner", "no_contact",
            "client_left")


@dataclass
class TakeResult:
    case: Case  # as the UPDATE that took it left it
    # Other members' cards to update: (her Telegram id, encrypted; card message id).
    others: list[tuple[bytes, int]] = field(default_factory=list)


def may_act(member: Staff | staff_service.Actor, owner_id: int | None) -> bool:
    """Her own case (owned by `owner_id`), or any case for a coordinator. An admin manages
    the staff, not the conversations: she may not close a colleague's."""
    return owner_id == member.id or "coordinator" in member.role_names


# Built once, with bound parameters: every take runs them. The UPDATE returns the taken
# case as an entity; "fetch" also brings up to date one a caller had read before.
_FOR_TAKING = (
    select(Case.category, CaseOffer.staff_id)
    .outerjoin(CaseOffer, and_(CaseOffer.case_id == Case.id,
                               CaseOffer.staff_id == bindparam("staff_id")))
    .where(Case.id == bindparam("case_id")))
_TAKE_WAITING = (
    sql_update(Case).where(Case.id == bindparam("case_id"), Case.status == CaseStatus.WAITING)
    .values(status=CaseStatus.ACTIVE, owner_id=bindparam("owner"), taken_at=bindparam("now"))
    .returning(Case).execution_options(synchronize_session="fetch"))
_TAKE_PAUSED = (
    sql_update(Case).where(Case.id == bindparam("case_id"), Case.status == CaseStatus.PAUSED,
                           Case.owner_id.is_(None))
    .values(owner_id=bindparam("owner"), taken_at=bindparam("now"),
            paused_from=CaseStatus.ACTIVE)
    .returning(Case).execution_options(synchronize_session="fetch"))
_OTHER_CARDS = (
    select(Staff.tg_id_enc, CaseOffer.message_id)
    .join(Staff, Staff.id == CaseOffer.staff_id)
    .where(CaseOffer.case_id == bindparam("case_id"), CaseOffer.staff_id != bindparam("staff_id"),
           CaseOffer.message_id.is_not(None)))


async def take(session: AsyncSession, *, case_id: int, member: staff_service.Actor,
               now: datetime) -> TakeResult:
    """Take a waiting case; the first Take wins even when two press at once."""
    if not staff_service.is_specialist(member) and not member.role_names & {"coordinator"}:
        raise CaseError("not_allowed")
    if "coordinator" not in member.role_names:
        # A specialist takes a case of her role, or one offered to her (a forged or old
        # button does not reach another role's client).
        found = (await db.run(session, _FOR_TAKING,
                              {"case_id": case_id, "staff_id": member.id})).first()
        if found is not None and found[1] is None and \
                role_for(found[0]) not in member.role_names:
            raise CaseError("not_allowed")
    taking = {"case_id": case_id, "owner": member.id, "now": now}
    # One conditional UPDATE: the first Take wins (the others find it no longer waiting);
    # it returns the case as the card shows it, in the same statement.
    case: Case | None = await session.scalar(_TAKE_WAITING, taking)
    if case is None:
        # A paused case nobody had taken yet can be taken too (to make the call she asked
        # for, or to close it): it stays paused, and becomes her conversation should she
        # come back.
        case = await session.scalar(_TAKE_PAUSED, taking)
    if case is None:  # not waiting (any more), or not there at all
        case = await session.get(Case, case_id)
        if case is None or case.purged_at is not None:
            raise CaseError("case_gone")
        if case.owner_id == member.id:
            raise CaseError("already_yours", number=case.id)
        owner = await session.get(Staff, case.owner_id) if case.owner_id else None
        raise CaseError("already_taken", number=case.id, name=owner.name if owner else "—")
    await due_times.cancel(session, kind=(ESCALATE, CONTACT_DUE), ref_id=case.id, now=now)
    if case.contact != "call_later":
        # A call is made by phone: her plain messages keep going to the chat she is in.
        await staff_service.set_active_case(session, member, case.id)
    await staff_service.audit(session, now=now, action="case.take", staff_id=member.id,
                              case_id=case.id)
    offers = await db.run(session, _OTHER_CARDS, {"case_id": case.id, "staff_id": member.id})
    log.info("case %d taken by member %d", case.id, member.id)
    return TakeResult(case, [(chat, int(message_id))
                             for chat, message_id in offers if message_id is not None])


_SET_CARD = (sql_update(CaseOffer)
             .where(CaseOffer.case_id == bindparam("of_case"),
                    CaseOffer.staff_id == bindparam("of_staff"))
             .values(message_id=bindparam("card_message")))


async def remember_card(session: AsyncSession, *, case_id: int, staff_id: int,
                        message_id: int, now: datetime) -> None:
    """The message that is the taker's card (from a card or from /queue): changed again
    when the case closes, so her phone number does not stay on it."""
    result = await db.run(session, _SET_CARD, {"of_case": case_id, "of_staff": staff_id,
                                               "card_message": message_id})
    if result.rowcount == 0:
        await db.run(session, _NEW_OFFER, {"case_id": case_id, "staff_id": staff_id,
                                           "offered_at": now, "message_id": message_id,
                                           "passed": False})


async def card_of(session: AsyncSession, *, case_id: int, staff_id: int) -> int | None:
    """The message id of the card `staff_id` holds for the case, if any."""
    value = await session.scalar(select(CaseOffer.message_id).where(
        CaseOffer.case_id == case_id, CaseOffer.staff_id == staff_id))
    return int(value) if value is not None else None


async def pass_case(
    session: AsyncSession, *, case_id: int, member: Staff, settings: Settings, texts: Texts,
    crypto: Crypto, now: datetime,
) -> RouteOutcome:
    """She cannot take it: it goes to the next person at once."""
    case = await session.get(Case, case_id)
    if case is None or case.purged_at is not None:
        raise CaseError("case_gone")
    if case.status != CaseStatus.WAITING:
        raise CaseError("already_taken", number=case.id, name="—")
    offer = await session.scalar(
        select(CaseOffer).where(CaseOffer.case_id == case_id, CaseOffer.staff_id == member.id)
    )
    if offer is None:
        raise CaseError("not_allowed")
    offer.passed = True
    await staff_service.audit(session, now=now, action="case.pass", staff_id=member.id,
                              case_id=case.id)
    if case.escalation_level >= LEVEL_BROADCAST:
        return RouteOutcome()
    return await _offer_next(session, case=case, settings=settings, texts=texts, crypto=crypto,
                             now=now)


@dataclass(frozen=True)
class Closed:
    """A case just closed, as its closer needs it."""

    id: int
    client_id: int | None
    # She is to be told (and asked to rate): only a conversation in this chat that was
    # open, not paused by quick exit, not a phone call.
    tell_client: bool = False
    contact: str = "chat_now"


_DROP_WAITING = sql_delete(WaitingMessage).where(WaitingMessage.case_id == bindparam("case_id"))


async def close(
    session: AsyncSession, *, case_id: int, member: staff_service.Actor, outcome: str,
    now: datetime,
) -> Closed:
    """Close with an outcome; the appeal record gets the outcome and time to first reply.
    The case is read, then changed (the session writes it with the next statement)."""
    if outcome not in OUTCOMES:
        raise CaseError("bad_outcome")
    case = await session.get(Case, case_id)
    if case is None or case.purged_at is not None:
        raise CaseError("case_gone")
    if not may_act(member, case.owner_id):
        raise CaseError("not_your_case", number=case.id)
    if case.status == CaseStatus.CLOSED and case.outcome is not None:
        raise CaseError("already_closed", number=case.id)
    was_active = case.status == CaseStatus.ACTIVE
    # A case the client ended is closed already and waits only for its outcome.
    case.status = CaseStatus.CLOSED
    case.closed_at = case.closed_at or now
    case.outcome = outcome
    await due_times.cancel(session, kind=ESCALATE, ref_id=case.id, now=now)
    # Closed before anyone took it: what she wrote meanwhile goes to no one.
    await db.run(session, _DROP_WAITING, {"case_id": case.id})
    await _record_outcome(session, appeal_id=case.appeal_id, outcome=outcome,
                          first_reply_at=case.first_reply_at, created_at=case.created_at)
    if member.active_case_id == case.id:
        await staff_service.set_active_case(session, member, None)
    await staff_service.audit(session, now=now, action="case.close", staff_id=member.id,
                              case_id=case.id, detail=outcome)
    log.info("case %d closed: %s", case.id, outcome)
    tell = was_active and case.contact != "call_later" and \
        outcome not in ("no_contact", "client_left")
    return Closed(case.id, case.client_id, tell_client=tell, contact=case.contact)


async def call_again(
    session: AsyncSession, *, case_id: int, member: staff_service.Actor, now: datetime,
    minutes: int,
) -> datetime:
    """A callback that did not happen: back to waiting, offered again after `minutes`."""
    case = await session.get(Case, case_id)
    if case is None or case.purged_at is not None:
        raise CaseError("case_gone")
    if case.contact != "call_later" or case.status != CaseStatus.ACTIVE:
        raise CaseError("expired_button")
    if not may_act(member, case.owner_id):
        raise CaseError("not_your_case", number=case.id)
    case.status = CaseStatus.WAITING
    case.owner_id = None
    case.taken_at = None
    case.escalation_level = 0
    case.contact_at = now + timedelta(minutes=minutes)
    await session.execute(sql_delete(CaseOffer).where(CaseOffer.case_id == case.id))
    if member.active_case_id == case.id:
        await staff_service.set_active_case(session, member, None)
    await due_times.schedule(session, kind=CONTACT_DUE, ref_id=case.id, due_at=case.contact_at)
    await staff_service.audit(session, now=now, action="case.call_again", staff_id=member.id,
                              case_id=case.id, detail=f"{minutes} min")
    return case.contact_at


async def end_by_client(
    session: AsyncSession, *, case: Case, texts: Texts, now: datetime
) -> RouteOutcome:
    """The client ends: the case closes; its specialist is asked for the outcome."""
    outcome = RouteOutcome()
    was_active = case.status == CaseStatus.ACTIVE
    case.status = CaseStatus.CLOSED
    case.closed_at = now
    await due_times.cancel(session, kind=(ESCALATE, CONTACT_DUE), ref_id=case.id, now=now)
    if not was_active or case.owner_id is None:
        case.outcome = "no_contact"
        await _record_outcome(session, appeal_id=case.appeal_id, outcome=case.outcome,
                              first_reply_at=case.first_reply_at, created_at=case.created_at)
        return outcome
    owner = await session.get(Staff, case.owner_id)
    if owner is not None and owner.active_case_id == case.id:
        owner.active_case_id = None
    language = texts.settings.organization.default_language
    outcome.deliveries.append(Delivery(
        case.owner_id, Screen(texts.t(language, "client_ended", number=case.id),
                              outcome_buttons(texts, language, case.id)),
        case.id, card=False))
    log.info("case %d ended by the client", case.id)
    return outcome


# The appeal record is written, never read, by the journeys: no entity of it is in a session.
_OUTCOME = (sql_update(Appeal).where(Appeal.id == bindparam("appeal_id"))
            .values(outcome=bindparam("new_outcome"), minutes_to_reply=bindparam("minutes")))


async def _record_outcome(session: AsyncSession, *, appeal_id: int | None, outcome: str,
                          first_reply_at: datetime | None, created_at: datetime) -> None:
    """The appeal record's outcome and minutes to the first reply."""
    if appeal_id is None:
        return
    minutes = None if first_reply_at is None else max(0, int(
        (aware(first_reply_at) - aware(created_at)).total_seconds() // 60))
    await db.run(session, _OUTCOME, {"appeal_id": appeal_id, "new_outcome": outcome,
                                     "minutes": minutes})


async def rate(session: AsyncSession, *, case_id: int, client_id: int, rating: int) -> bool:
    """The client's one-tap rating of a closed case of hers, on the case and its appeal
    record: two UPDATEs."""
    if not 1 <= rating <= 5:
        return False
    # Only her own closed case, rated once.
    rated = (await session.execute(
        sql_update(Case)
        .where(Case.id == case_id, Case.client_id == client_id,
               Case.status == CaseStatus.CLOSED, Case.rating.is_(None))
        .values(rating=rating).returning(Case.appeal_id))).first()
    if rated is None:
        return False
    (appeal_id,) = rated
    if appeal_id is not None:
        await session.execute(sql_update(Appeal).where(Appeal.id == appeal_id)
                              .values(rating=rating))
    return True


async def staff_cases(session: AsyncSession, *, member: Staff) -> list[Case]:
    """Her conversations: active, or paused by the client's quick exit."""
    return list((await session.scalars(
        select(Case).where(Case.owner_id == member.id,
                           Case.status.in_((CaseStatus.ACTIVE, CaseStatus.PAUSED)))
        .order_by(Case.taken_at)
    )).all())


async def waiting_cases(session: AsyncSession, *, limit: int = 20) -> list[Case]:
    """What waits, most urgent first, then longest waiting (the first `limit`)."""
    order = sql_case((Case.urgency == Urgency.EMERGENCY.value, 0),
                     (Case.urgency == Urgency.HIGH.value, 1), else_=2)
    return list((await session.scalars(
        select(Case).where(_untaken(), Case.purged_at.is_(None))
        .order_by(order, Case.created_at).limit(limit)
    )).all())


async def count_waiting(session: AsyncSession) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(Case)
        .where(_untaken(), Case.purged_at.is_(None))) or 0)


def _untaken() -> Any:
    """Waiting cases, and paused ones nobody has taken (they can be taken and closed)."""
    return or_(Case.status == CaseStatus.WAITING,
               and_(Case.status == CaseStatus.PAUSED, Case.owner_id.is_(None)))


# ---------------------------------------------------------------------- quick exit


@dataclass
class Paused:
    """A case she left with quick exit: who is told, and which cards now say so."""

    case_id: int
    notices: list[Delivery] = field(default_factory=list)
    # Cards of the untaken case to show as paused: (staff id, message id), and the card.
    cards: list[tuple[int, int]] = field(default_factory=list)
    card: Screen | None = None


async def _holders(session: AsyncSession, case: Case) -> list[tuple[int, int | None]]:
    """Who has the case: its specialist, or everyone still holding its card (staff id,
    card message id)."""
    if case.owner_id is not None:
        return [(case.owner_id, None)]
    rows = await session.execute(
        select(CaseOffer.staff_id, CaseOffer.message_id)
        .where(CaseOffer.case_id == case.id, CaseOffer.passed.is_(False)))
    return [(int(staff_id), message_id) for staff_id, message_id in rows.all()]


async def pause(session: AsyncSession, *, case: Case, texts: Texts, now: datetime) -> Paused:
    """Quick exit: the case is paused, not closed and not hidden. Whoever has it is told
    at once, in one message, that someone may be reading her phone; a chat is neither
    started nor escalated while it is paused, a phone call still reaches the role."""
    case.paused_from = case.status
    case.status = CaseStatus.PAUSED
    case.paused_at = now
    if case.contact != "call_later":
        await due_times.cancel(session, kind=(ESCALATE, CONTACT_DUE), ref_id=case.id, now=now)
    language = texts.settings.organization.default_language
    key = "paused_notice_call" if case.contact == "call_later" and case.owner_id is None \
        else "paused_notice"
    result = Paused(case.id)
    for staff_id, message_id in await _holders(session, case):
        result.notices.append(Delivery(staff_id, Screen(texts.t(language, key, number=case.id)),
                                       case.id, card=False))
        if message_id is not None:
            result.cards.append((staff_id, int(message_id)))
    if result.cards:
        result.card = card(case, texts=texts, language=language, now=now)
    log.info("case %d paused by quick exit", case.id)
    return result


@dataclass
class Resumed:
    case_id: int
    active: bool  # back in a conversation (else her request waits again)
    role: str
    notices: list[Delivery] = field(default_factory=list)
    cards: list[tuple[int, int]] = field(default_factory=list)
    card: Screen | None = None


async def resume(session: AsyncSession, *, case: Case, settings: Settings, texts: Texts,
                 now: datetime) -> Resumed:
    """She came back with her code word: the case is hers again where it was. Nothing sent
    meanwhile is replayed; whoever has it is told she is back (and writes again)."""
    active = case.owner_id is not None
    case.status = CaseStatus.ACTIVE if active else CaseStatus.WAITING
    case.paused_at = None
    case.paused_from = None
    language = texts.settings.organization.default_language
    result = Resumed(case.id, active, role_for(case.category))
    holders = await _holders(session, case)
    for staff_id, message_id in holders:
        result.notices.append(Delivery(
            staff_id, Screen(texts.t(language, "client_back", number=case.id)), case.id,
            card=False))
        if message_id is not None and not active:
            result.cards.append((staff_id, int(message_id)))
    if not active:
        if result.cards:
            result.card = card(case, texts=texts, language=language, now=now)
        if (later := _safe_time_ahead(case, now)) is not None:
            await due_times.schedule(session, kind=CONTACT_DUE, ref_id=case.id, due_at=later)
        elif holders:
            await due_times.schedule(session, kind=ESCALATE, ref_id=case.id,
                                      due_at=now + timeout_for(case.urgency, settings))
        else:
            # Never offered (she left before it was): it is routed now.
            await due_times.schedule(session, kind=CONTACT_DUE, ref_id=case.id, due_at=now)
    log.info("case %d resumed with the code word", case.id)
    return result
