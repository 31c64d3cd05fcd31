"""Coordinator and admin commands in Telegram: staff management (by role, audited).

Data access: only through `bot.domain.staff` (the roster, the audit) and
`bot.domain.stats` (the reports), in one transaction per command.
"""

from __future__ import annotations

import html
import io
import logging
from datetime import date

from telegram import InputFile, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from bot.domain import callbacks as cb
from bot.domain import staff as staff_service
from bot.domain import stats
from bot.domain.cases import CaseError
from bot.domain.screens import Button, small_number
from bot.telegram.commands import set_staff_commands
from bot.telegram.context import BotContext, SezimApp
from handlers.common import StaffFilter
from handlers.staff import _member, _say, _t, refuse, register_refusals

log = logging.getLogger(__name__)

ADMIN_ROLES = {"admin"}
VIEW_ROLES = {"admin", "coordinator"}


async def on_staff(update: Update, context: BotContext) -> None:
    """/staff list | add ID NAME ROLE[,ROLE] | remove ID: admins change, coordinators view."""
    data = context.bot_data
    args = context.args or []
    now = data.clock.now()
    command = args[0].lower() if args else "list"
    menu: tuple[int, set[str]] | None = None
    async with data.sessions() as session, session.begin():
        member = await _member(session, context, update)
        roles = member.role_names
        if not roles & VIEW_ROLES or (command != "list" and not roles & ADMIN_ROLES):
            answer = _t(context, "not_allowed")
        elif command == "list":
            await staff_service.audit(session, now=now, action="view.staff",
                                      staff_id=member.id)
            members = await staff_service.list_staff(session)
            on_duty = {m.id for m in await staff_service.on_duty(session, settings=data.settings,
                                                                  now=now)}
            lines = [_t(context, "staff_list_title", count=len(members))]
            for m in members:
                mark = " 🟢" if m.id in on_duty else ""
                lines.append(f"• {html.escape(m.name)} — {', '.join(sorted(m.role_names))}"
                             f" · {data.crypto.decrypt_int(m.tg_id_enc)}{mark}")
            answer = "\n".join(lines)
        else:
            try:
                telegram_id = small_number(args[1], 15) if len(args) >= 2 else None
                if command == "add" and len(args) >= 4 and telegram_id is not None:
                    new_roles = staff_service.parse_roles(args[-1])
                    name = " ".join(args[2:-1])
                    change = await staff_service.upsert_staff(
                        session, crypto=data.crypto, telegram_id=telegram_id, name=name,
                        roles=new_roles, now=now, actor="staff", actor_staff_id=member.id)
                    answer = _t(context, "staff_added" if change.created else "staff_updated",
                                name=change.member.name)
                    menu = (telegram_id, set(new_roles))
                elif command == "remove" and len(args) == 2 and telegram_id is not None:
                    removed = await staff_service.remove_staff(
                        session, crypto=data.crypto, telegram_id=telegram_id, now=now,
                        actor="staff", actor_staff_id=member.id)
                    answer = _t(context, "staff_removed", name=removed.name)
                    menu = (telegram_id, set())
                else:
                    answer = _t(context, "staff_usage")
            except staff_service.StaffError as exc:
                answer = _t(context, "staff_error", reason=str(exc))
    # Telegram is asked only after the transaction: writes take turns on SQLite.
    await _say(update, context, answer)
    if menu is not None:
        # Her command menu follows her roles at once (none left: the client's menu).
        await set_staff_commands(context.application, *menu)


async def _stats_request(
    context: BotContext, args: list[str]
) -> tuple[date, date, list[str], str, bool]:
    """Period, breakdown, period name and external flag from /stats or /export arguments."""
    data = context.bot_data
    today = stats.today_in(data.settings.organization.tz, data.clock.now())
    external = "external" in args
    args = [a for a in args if a != "external"]
    period = "this_month"
    by = ["region"]
    dates = [a for a in args if len(a) == 10 and a[4] == "-"]
    names = [a for a in args if a in stats.PERIODS]
    dims = [a for a in args if a not in dates and a not in names]
    if len(dates) == 2:
        try:
            start, end = date.fromisoformat(dates[0]), date.fromisoformat(dates[1])
        except ValueError as exc:
            raise stats.StatsError("bad date") from exc
        if end < start or (end - start).days > 3660:
            raise stats.StatsError("bad period")
        period = "custom"
    elif dates:
        raise stats.StatsError("two dates are needed")
    else:
        period = names[0] if names else period
        start, end = stats.period_bounds(period, today)
    if dims:
        by = stats.parse_by(dims[0])
    return start, end, by, period, external


async def _authorised(update: Update, context: BotContext, action: str) -> bool:
    """Coordinators and admins only; the request is audited."""
    data = context.bot_data
    # The refusals are sent once the transaction is over: no write turn is held while
    # Telegram is asked, and the refusal to a client is recorded in a turn of its own.
    refusal: str | None = None
    async with data.sessions() as session, session.begin():
        try:
            member = await _member(session, context, update)
        except CaseError:
            refusal = "not_staff"
        else:
            if not member.role_names & VIEW_ROLES:
                refusal = "not_allowed"
            else:
                await staff_service.audit(session, now=data.clock.now(), action=action,
                                          staff_id=member.id,
                                          detail=" ".join(context.args or [])[:200] or None)
    if refusal == "not_staff":
        await refuse(update, context)  # perhaps a client's chat: recorded for quick exit
    elif refusal is not None:
        await _say(update, context, _t(context, "not_allowed"))
    return refusal is None


def _stats_buttons(context: BotContext, period: str, by: list[str]) -> list[list[Button]]:
    periods = [Button.of(_t(context, f"btn_{p}"), cb.StatsView(p, by[0]))
               for p in stats.PERIODS if p != period]
    dims = [Button.of(_t(context, f"stats_dim_{d}"), cb.StatsView(period, d))
            for d in ("region", "category", "month", "urgency", "language", "outcome")
            if [d] != by]
    return [periods[:3], periods[3:], dims[:3], dims[3:]]


async def _send_stats(update: Update, context: BotContext, args: list[str]) -> None:
    data = context.bot_data
    chat = update.effective_chat
    assert chat is not None
    try:
        start, end, by, period, external = await _stats_request(context, args)
    except stats.StatsError:
        await _say(update, context, _t(context, "stats_usage"))
        return
    language = data.texts.lang(None)
    async with data.sessions() as session:
        result = await stats.breakdown(session, start=start, end=end, by=by)
    if result.total[0] == 0:
        await _say(update, context, _t(context, "stats_no_data"),
                   _stats_buttons(context, period, by) if period != "custom" else None)
        return
    table = stats.grid(result, texts=data.texts, language=language, external=external)
    text = f"<pre>{html.escape(table.text())}</pre>"
    if len(text) > 4000:
        text = text[:3990] + "…</pre>"
    # matplotlib is heavy: loaded the first time a chart is drawn, not at start-up.
    from bot.domain import charts

    await context.bot.send_photo(chat.id, charts.bar_chart(table))
    buttons = _stats_buttons(context, period, by) if period != "custom" else []
    await _say(update, context, text, buttons)


async def on_stats(update: Update, context: BotContext) -> None:
    """/stats [period] [breakdown]: a table and a chart of anonymous appeal figures."""
    if await _authorised(update, context, "stats.view"):
        await _send_stats(update, context, list(context.args or []))


async def on_stats_button(update: Update, context: BotContext) -> None:
    """A period or breakdown button under a /stats answer."""
    query = update.callback_query
    assert query is not None
    tap = cb.decode(query.data)
    if not isinstance(tap, cb.StatsView) or tap.period not in stats.PERIODS or \
            tap.by not in stats.DIMENSIONS:
        await query.answer(_t(context, "expired_button"))  # forged, or from an old version
        return
    await query.answer()
    if await _authorised(update, context, "stats.view"):
        await _send_stats(update, context, [tap.period, tap.by])


async def on_export(update: Update, context: BotContext) -> None:
    """/export [period] [breakdown] [external]: the same figures as a CSV file."""
    if not await _authorised(update, context, "stats.export"):
        return
    data = context.bot_data
    chat = update.effective_chat
    assert chat is not None
    try:
        start, end, by, _period, external = await _stats_request(context,
                                                                 list(context.args or []))
    except stats.StatsError:
        await _say(update, context, _t(context, "stats_usage"))
        return
    async with data.sessions() as session:
        result = await stats.breakdown(session, start=start, end=end, by=by)
    table = stats.grid(result, texts=data.texts, language=data.texts.lang(None),
                       external=external)
    name = f"appeals-{start}-{end}-{'-'.join(by)}{'-external' if external else ''}.csv"
    caption = data.texts.t(None, "export_caption_external" if external else "export_caption",
                           start=start.isoformat(), end=end.isoformat(), by=", ".join(by))
    await context.bot.send_document(
        chat.id, InputFile(io.BytesIO(table.csv_file()), filename=name),
        caption=caption)


def register(app: SezimApp) -> None:
    is_staff = StaffFilter(app.bot_data) & filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("staff", on_staff, filters=is_staff))
    app.add_handler(CommandHandler("stats", on_stats, filters=is_staff))
    app.add_handler(CommandHandler("export", on_export, filters=is_staff))
    # Period and breakdown buttons; the card handler leaves these alone.
    app.add_handler(CallbackQueryHandler(on_stats_button, pattern=cb.pattern(cb.StatsView)))
    register_refusals(app)
