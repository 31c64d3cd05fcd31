"""`sezim-bot check`: what an admin runs before going live, and after every change.

One line per check, `ok` or `FAIL` (or `note` for what is worth knowing but not wrong):
the configuration, the texts, the server key, the database (reachable, migrated, made
with this key), the bot token (Telegram's getMe), and who is on duty in the next seven
days, with the hours when nobody of a role is. Nothing is changed: no migration runs, no
key check is stored. Exit status 0 only if nothing failed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.core.config import ConfigError, Settings, looks_like_token, require_secret_key
from bot.domain.hours import Hours
from bot.domain.staff import SPECIALIST_ROLES as SPECIALISTS

# The roles a client's request goes to (coordinators and admins are not on a roster).


@dataclass(frozen=True)
class Line:
    status: str  # "ok", "FAIL" or "note"
    what: str
    detail: str

    def __str__(self) -> str:
        return f"{self.status:<5} {self.what:<9} {self.detail}"


async def run(settings: Settings, *, now: datetime | None = None) -> list[Line]:
    lines = [Line("ok", "config", settings.source)]
    from bot.core.i18n import Texts

    try:
        Texts(settings)
        lines.append(Line("ok", "texts", "every text in ky, ru, en; placeholders known"))
    except ConfigError as exc:
        lines.append(Line("FAIL", "texts", str(exc)))
    try:
        secret = require_secret_key(settings)
        lines.append(Line("ok", "key", "SEZIM_SECRET_KEY is set"))
    except ConfigError as exc:
        secret = None
        lines.append(Line("FAIL", "key", str(exc)))
    lines.extend(await _database(settings, secret, now or datetime.now().astimezone()))
    lines.append(await _token(settings))
    return lines


async def _database(settings: Settings, secret: str | None, now: datetime) -> list[Line]:
    from bot.core import keys, migrate
    from bot.core.crypto import Crypto
    from bot.core.db import create_engine, sessionmaker
    from models import KeyCheck, Staff

    engine = create_engine(settings.database.url)
    lines: list[Line] = []
    try:
        try:
            current = await asyncio.wait_for(migrate.current_revision(engine), 15)
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the answer
            return [Line("FAIL", "database", f"cannot be reached: {type(exc).__name__}")]
        head = migrate.head_revision()
        if current != head:
            return [Line("FAIL", "database", f"at schema {current or 'none'}, not {head}: "
                                             "run `sezim-bot db upgrade`")]
        lines.append(Line("ok", "database", f"reachable, at the newest schema ({head})"))
        async with sessionmaker(engine)() as session:
            if secret is not None:
                crypto = Crypto(secret)
                stored = await session.get(KeyCheck, 1) is not None
                try:
                    # The session is never committed: a check value `keys.check` would
                    # store for a database without one is not kept.
                    await keys.check(session, crypto=crypto, now=now)
                    lines.append(Line("ok", "key", "the database was made with this key"
                                      if stored else "this key reads the database"))
                except ConfigError as exc:
                    lines.append(Line("FAIL", "key", str(exc)))
            members = (await session.scalars(select(Staff).where(Staff.active.is_(True)))).all()
            lines.extend(_duty(settings, {m.name.casefold(): m.role_names for m in members},
                               now))
    finally:
        await engine.dispose()
    return lines


def _duty(settings: Settings, members: dict[str, set[str]], now: datetime) -> list[Line]:
    """Who is on the roster in the next seven days, by role, and the gaps."""
    if not members:
        return [Line("FAIL", "staff", "no active staff: sezim-bot staff add --telegram-id N "
                                      "--name NAME --role ROLE")]
    lines = [Line("ok", "staff", f"{len(members)} active member(s)")]
    for index, shift in enumerate(settings.roster, start=1):
        roles = members.get(shift.member.casefold())
        if roles is None:
            lines.append(Line("FAIL", "roster", f"entry {index} names {shift.member!r}, who "
                                                "is no active staff member"))
        elif shift.role not in roles:
            lines.append(Line("FAIL", "roster", f"entry {index}: {shift.member} lacks the "
                                                f"role {shift.role}"))
    hours = Hours.of(settings, members)
    for role in SPECIALISTS:
        gaps = hours.gaps(role, now)
        if not any(role in roles for roles in members.values()):
            lines.append(Line("note", "duty", f"{role}: no member has this role (such "
                                              "requests go to the coordinators)"))
            continue
        if gaps and gaps[0][1] - gaps[0][0] >= timedelta(days=7):
            lines.append(Line("FAIL", "duty", f"{role}: nobody on the roster in the next 7 "
                                              "days (her requests wait for a coordinator)"))
            continue
        if not gaps:
            lines.append(Line("ok", "duty", f"{role}: someone on duty at every hour of the "
                                            "next 7 days"))
            continue
        shown = ", ".join(f"{a:%a %H:%M}-{b:%a %H:%M}" for a, b in gaps[:4])
        more = f" and {len(gaps) - 4} more" if len(gaps) > 4 else ""
        lines.append(Line("note", "duty", f"{role}: nobody on duty {shown}{more}"))
    return lines


async def _token(settings: Settings) -> Line:
    token = settings.token
    if not token:
        return Line("FAIL", "token", "SEZIM_BOT_TOKEN is not set")
    if not looks_like_token(token):
        return Line("FAIL", "token", "SEZIM_BOT_TOKEN does not look like a token from "
                                     "@BotFather")
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError

    bot = Bot(token, base_url=settings.telegram.base_url,
              base_file_url=settings.telegram.base_file_url)
    try:
        me = await asyncio.wait_for(bot.get_me(), 30)
    except InvalidToken:
        return Line("FAIL", "token", "Telegram rejected the bot token (a new one comes from "
                                     "@BotFather)")
    except (TelegramError, TimeoutError) as exc:
        return Line("FAIL", "token", f"Telegram cannot be reached: {type(exc).__name__}")
    return Line("ok", "token", f"accepted by Telegram: @{me.username}")
