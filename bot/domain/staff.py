"""Staff, roles, the weekly roster and who is on duty; every staff change is audited.

Data access: ORM statements on the mapped classes, built where they run (one that every
staff update reads, once, with a bound parameter); entities from the session, or typed
rows unpacked into small frozen dataclasses (`DutyMember`, `Actor`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import db
from bot.core.clock import aware
from bot.core.config import ROLES, WEEKDAYS, Settings
from bot.core.crypto import Crypto
from models import AuditEntry, RosterShift, Staff, StaffRole

log = logging.getLogger(__name__)

SPECIALIST_ROLES = ("psychologist", "lawyer", "child_psychologist")


class StaffError(Exception):
    """A staff change that cannot be made, phrased for the person making it."""


_AUDIT = insert(AuditEntry)


async def audit(
    session: AsyncSession,
    *,
    now: datetime,
    action: str,
    actor: str = "staff",
    staff_id: int | None = None,
    case_id: int | None = None,
    detail: str | None = None,
) -> None:
    """Write one audit entry (no client data in `detail`): a Core INSERT, nothing for the
    session to track."""
    await session.flush()  # the member or case it names may be new in this transaction
    await db.run(session, _AUDIT, {"at": now, "actor": actor, "action": action,
                                   "staff_id": staff_id, "case_id": case_id,
                                   "detail": (detail or None) and detail[:200]})


def parse_roles(text: str) -> list[str]:
    roles = [r.strip().lower().replace("-", "_") for r in text.split(",") if r.strip()]
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise StaffError(f"unknown role(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(ROLES)}")
    return sorted(set(roles))


async def find_by_telegram_id(
    session: AsyncSession, crypto: Crypto, telegram_id: int, *, active_only: bool = True
) -> Staff | None:
    query = select(Staff).where(Staff.tg_hmac.in_(crypto.lookups(telegram_id)))
    if active_only:
        query = query.where(Staff.active.is_(True))
    return await session.scalar(query)


async def active_staff_ids(
    session: AsyncSession, crypto: Crypto, telegram_ids: Iterable[int]
) -> dict[int, int]:
    """Telegram id -> staff id of the active members among `telegram_ids` (one query for a
    whole batch of updates; those not found are not staff)."""
    by_hmac = {h: tid for tid in set(telegram_ids) for h in crypto.lookups(tid)}
    if not by_hmac:
        return {}
    rows = await session.execute(select(Staff.id, Staff.tg_hmac).where(
        Staff.tg_hmac.in_(list(by_hmac)), Staff.active.is_(True)))
    return {by_hmac[bytes(tg_hmac)]: int(staff_id) for staff_id, tg_hmac in rows}


async def active_staff_id(session: AsyncSession, crypto: Crypto, telegram_id: int) -> int | None:
    """The id of the active staff member with this Telegram id, if any."""
    return (await active_staff_ids(session, crypto, [telegram_id])).get(telegram_id)


@dataclass(frozen=True)
class StaffChange:
    member: Staff
    created: bool  # a new member (else her name and roles were changed)


async def upsert_staff(
    session: AsyncSession,
    *,
    crypto: Crypto,
    telegram_id: int,
    name: str,
    roles: Iterable[str],
    now: datetime,
    actor: str = "cli",
    actor_staff_id: int | None = None,
) -> StaffChange:
    """Add a member, or give one already known (active or removed) this name and these
    roles: the same command may be run again. Two active members may not share a name
    (the roster names its members)."""
    name = " ".join(name.split())
    if not 1 <= len(name) <= 64:
        raise StaffError("a name of 1 to 64 characters is needed")
    if not 0 < telegram_id < 2**63:
        raise StaffError("a Telegram id is a positive number")
    wanted = set(roles)
    if not wanted:
        raise StaffError("at least one role is needed")
    member = await find_by_telegram_id(session, crypto, telegram_id, active_only=False)
    # Compared here, not in SQL: SQLite's lower() knows only ASCII letters (not Айгүл).
    others = (await session.execute(select(Staff.id, Staff.name).where(
        Staff.active.is_(True)))).all()
    if any(n.casefold() == name.casefold() and (member is None or i != member.id)
           for i, n in others):
        raise StaffError(f"another active member is already called {name!r}; the roster "
                         "matches members by name, so give this one another (with an "
                         "initial, say)")
    created = member is None
    if member is None:
        member = Staff(tg_hmac=crypto.lookup(telegram_id), tg_id_enc=crypto.encrypt(telegram_id),
                       name=name, active=True, created_at=now)
        member.roles = [StaffRole(role=r) for r in sorted(wanted)]
        session.add(member)
    else:
        member.name = name
        member.active = True
        member.removed_at = None
        # Changed in place: the roles she keeps stay the same rows (replacing the list
        # would insert a role before deleting its twin, against the unique key).
        for role in [r for r in member.roles if r.role not in wanted]:
            member.roles.remove(role)
        have = member.role_names
        member.roles.extend(StaffRole(role=r) for r in sorted(wanted - have))
    await session.flush()
    await audit(session, now=now, actor=actor,
                action="staff.add" if created else "staff.change", staff_id=actor_staff_id,
                detail=f"member {member.id} roles {','.join(sorted(wanted))}")
    return StaffChange(member, created)


async def remove_staff(
    session: AsyncSession,
    *,
    crypto: Crypto,
    telegram_id: int,
    now: datetime,
    actor: str = "cli",
    actor_staff_id: int | None = None,
) -> Staff:
    """Take away all access at once; her cases stay for the coordinators."""
    member = await find_by_telegram_id(session, crypto, telegram_id)
    if member is None:
        raise StaffError("no active staff member with that Telegram id")
    member.active = False
    member.removed_at = now
    member.duty_override = None
    await session.execute(delete(RosterShift).where(RosterShift.staff_id == member.id))
    await audit(session, now=now, actor=actor, action="staff.remove", staff_id=actor_staff_id,
                detail=f"member {member.id}")
    return member


async def list_staff(session: AsyncSession, *, include_removed: bool = False) -> list[Staff]:
    query = select(Staff).order_by(Staff.name)
    if not include_removed:
        query = query.where(Staff.active.is_(True))
    return list((await session.scalars(query)).all())


async def sync_roster(session: AsyncSession, *, settings: Settings) -> int:
    """Replace the roster table with the configuration's `[[roster]]`; returns shifts loaded."""
    await session.execute(delete(RosterShift))
    members = {m.name.casefold(): m for m in await list_staff(session)}
    count = 0
    for index, shift in enumerate(settings.roster):
        member = members.get(shift.member.casefold())
        if member is None:
            log.warning("roster entry %d names no active staff member; skipped", index + 1)
            continue
        if shift.role not in member.role_names:
            log.warning("roster entry %d: the member lacks role %s; skipped", index + 1,
                        shift.role)
            continue
        for day in shift.days:
            session.add(RosterShift(
                staff_id=member.id, role=shift.role, weekday=WEEKDAYS.index(day),
                start_minute=_minutes(shift.start), end_minute=_minutes(shift.end),
            ))
            count += 1
    return count


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute


def in_shift(weekday: int, start_minute: int, end_minute: int, local: datetime) -> bool:
    """Whether local time `local` falls in a weekly shift starting on `weekday`.

    A shift whose end is not after its start runs across midnight into the next day;
    start == end is a 24-hour shift.
    """
    day = local.weekday()
    minute = local.hour * 60 + local.minute
    if start_minute < end_minute:
        return day == weekday and start_minute <= minute < end_minute
    if day == weekday and minute >= start_minute:
        return True
    return day == (weekday + 1) % 7 and minute < end_minute


def local_time(now: datetime, tz: ZoneInfo) -> datetime:
    return aware(now).astimezone(tz)


@dataclass(frozen=True)
class DutyMember:
    """Who is on duty, as routing needs it: no entity loaded (it runs for every case)."""

    id: int
    name: str
    role_names: frozenset[str]
    chat_enc: bytes  # her Telegram id, encrypted: where her cards go


# Built once: every request is routed by them.
_MEMBERS_ON_DUTY = (
    select(Staff.id, Staff.name, Staff.duty_override, Staff.duty_override_until,
           Staff.tg_id_enc, StaffRole.role)
    .outerjoin(StaffRole, StaffRole.staff_id == Staff.id)
    .where(Staff.active.is_(True)).order_by(Staff.name, Staff.id))
_SHIFTS = select(RosterShift.staff_id, RosterShift.role, RosterShift.weekday,
                 RosterShift.start_minute, RosterShift.end_minute)


async def on_duty(
    session: AsyncSession, *, settings: Settings, now: datetime, role: str | None = None
) -> list[DutyMember]:
    """Active members on duty now (roster or `/duty on`, minus `/duty off`), by role.

    Two plain reads (members with their roles; the roster), ordered by name."""
    local = local_time(now, settings.organization.tz)
    await session.flush()  # a member or shift changed in this transaction counts
    rows = (await db.run(session, _MEMBERS_ON_DUTY)).all()
    members: dict[int, tuple[str, bool | None, datetime | None, bytes, set[str]]] = {}
    for staff_id, name, override, until, chat_enc, role_name in rows:
        entry = members.setdefault(staff_id, (name, override, until, bytes(chat_enc), set()))
        if role_name is not None:
            entry[4].add(role_name)
    shifts = (await db.run(session, _SHIFTS)).all()
    result = []
    for staff_id, (name, override, until, chat_enc, roles) in members.items():
        if role is not None and role not in roles:
            continue
        member = DutyMember(staff_id, name, frozenset(roles), chat_enc)
        if override is not None and (until is None or aware(until) > now):
            if override:
                result.append(member)
            continue
        if any(
            shift_staff == staff_id
            and (role is None or shift_role == role)
            and in_shift(weekday, start, end, local)
            for shift_staff, shift_role, weekday, start, end in shifts
        ):
            result.append(member)
    return result


@dataclass(frozen=True)
class Actor:
    """A staff member as acting on a case needs her (take, close, call again): her row and
    roles in one read, no entity loaded."""

    id: int
    name: str
    role_names: frozenset[str]
    active_case_id: int | None


# Built once, with a bound parameter: it is read for nearly every update from staff.
_ACTOR = (select(Staff.id, Staff.name, Staff.active_case_id, StaffRole.role)
          .outerjoin(StaffRole, StaffRole.staff_id == Staff.id)
          .where(Staff.id == bindparam("staff_id"), Staff.active.is_(True)))


async def actor(session: AsyncSession, staff_id: int) -> Actor | None:
    """The active staff member `staff_id`, or None."""
    rows = (await db.run(session, _ACTOR, {"staff_id": staff_id})).all()
    if not rows:
        return None
    found_id, name, active_case_id, _ = rows[0]
    return Actor(found_id, name, frozenset(role for *_, role in rows if role is not None),
                 active_case_id)


# "fetch": a member the session holds reads the new value too.
_SET_ACTIVE_CASE = (update(Staff).where(Staff.id == bindparam("staff_id"))
                    .values(active_case_id=bindparam("case_id"))
                    .execution_options(synchronize_session="fetch"))


async def set_active_case(session: AsyncSession, member: Actor, case_id: int | None) -> None:
    """The case her plain messages go to (None: none)."""
    await session.execute(_SET_ACTIVE_CASE, {"staff_id": member.id, "case_id": case_id})


def is_specialist(member: Staff | DutyMember | Actor) -> bool:
    return bool(member.role_names & set(SPECIALIST_ROLES))
