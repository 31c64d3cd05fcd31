"""Coordinator and admin commands in Telegram: staff management (by role, audited)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import CommandHandler, filters

from bot.app import BotContext, SezimApp
from bot.services import staff as staff_service
from handlers.common import StaffFilter
from handlers.staff import _member, _say, _t, register_refusals

log = logging.getLogger(__name__)

ADMIN_ROLES = {"admin"}
VIEW_ROLES = {"admin", "coordinator"}


async def on_staff(update: Update, context: BotContext) -> None:
    """/staff list | add ID NAME ROLE[,ROLE] | remove ID: admins change, coordinators view."""
    data = context.bot_data
    args = context.args or []
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        member = await _member(session, context, update)
        roles = member.role_names
        if not roles & VIEW_ROLES:
            await _say(update, context, _t(context, "not_allowed"))
            return
        command = args[0].lower() if args else "list"
        if command == "list":
            members = await staff_service.list_staff(session)
            on_duty = {m.id for m in await staff_service.on_duty(session, settings=data.settings,
                                                                  now=now)}
            lines = [_t(context, "staff_list_title", count=len(members))]
            for m in members:
                mark = " 🟢" if m.id in on_duty else ""
                lines.append(f"• {m.name} — {', '.join(sorted(m.role_names))}{mark}")
            await _say(update, context, "\n".join(lines))
            return
        if not roles & ADMIN_ROLES:
            await _say(update, context, _t(context, "not_allowed"))
            return
        try:
            if command == "add" and len(args) >= 4 and args[1].isdigit():
                new_roles = staff_service.parse_roles(args[-1])
                name = " ".join(args[2:-1])
                await staff_service.add_staff(
                    session, crypto=data.crypto, telegram_id=int(args[1]), name=name,
                    roles=new_roles, now=now, actor="staff", actor_staff_id=member.id)
                await _say(update, context, _t(context, "staff_added", name=name))
            elif command == "remove" and len(args) == 2 and args[1].isdigit():
                removed = await staff_service.remove_staff(
                    session, crypto=data.crypto, telegram_id=int(args[1]), now=now,
                    actor="staff", actor_staff_id=member.id)
                await _say(update, context, _t(context, "staff_removed", name=removed.name))
            else:
                await _say(update, context, _t(context, "staff_usage"))
        except staff_service.StaffError as exc:
            await _say(update, context, _t(context, "staff_error", reason=str(exc)))


def register(app: SezimApp) -> None:
    is_staff = StaffFilter(app.bot_data) & filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("staff", on_staff, filters=is_staff))
    register_refusals(app)
