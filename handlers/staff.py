"""The specialist's side: duty, cards (Take, Pass), the relay, /queue, /cases, /close.

Every handler here matches only updates from active staff (the identify handler looked the
sender up in the database for this very update), so a removed member loses access at once,
her old buttons included. Staff commands from anyone else get a refusal.

Data access: ORM statements on the mapped classes; entities from the session, her record
as a typed row unpacked into `HerRecord` (`_TO_RATING` alone is still on the table).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.core.clock import aware
from bot.core.i18n import LANGUAGE_NAMES
from bot.domain import appeals as appeal_service
from bot.domain import blocks as block_service
from bot.domain import callbacks as cb
from bot.domain import cases as case_service
from bot.domain import checkin as checkin_service
from bot.domain import clients as client_service
from bot.domain import code_word as code_word_service
from bot.domain import flow as client_flow
from bot.domain import handover as handover_service
from bot.domain import staff as staff_service
from bot.domain.hours import Hours, when_label
from bot.domain.screens import Button, Screen, small_number
from bot.domain.staff import SPECIALIST_ROLES
from bot.domain.stats import today_in
from bot.telegram import relay, scheduling
from bot.telegram.commands import staff_commands
from bot.telegram.context import BotContext, SezimApp
from bot.telegram.delivery import (
    SentBefore,
    answer_button,
    deliver_to_staff,
    edit_screen,
    keep_for_deletion,
    say_to_chat,
    send_screen,
    side_by_side,
)
from handlers.common import StaffFilter
from models import Case, CaseStatus, HandoverCard, Staff

log = logging.getLogger(__name__)

STAFF_COMMANDS = ("duty", "queue", "cases", "close", "reply", "handover", "log", "codeword",
                  "roster", "block", "unblock", "staff", "stats", "export")


def _t(context: BotContext, key: str, **values: Any) -> str:
    return context.bot_data.texts.t(None, key, **values)


async def _member(session: AsyncSession, context: BotContext, update: Update) -> Staff:
    staff_id = context.bot_data.actors.get(update.update_id)
    # Her roles in the same read (one joined query instead of two).
    member = await session.get(Staff, staff_id, options=[joinedload(Staff.roles)]) \
        if staff_id is not None else None
    if member is None or not member.active:
        raise case_service.CaseError("not_staff")
    return member


async def _actor(session: AsyncSession, context: BotContext,
                 update: Update) -> staff_service.Actor:
    """The sender as a case action needs her (one read, no entity); `CaseError` if she is
    not active staff."""
    staff_id = context.bot_data.actors.get(update.update_id)
    member = await staff_service.actor(session, staff_id) if staff_id is not None else None
    if member is None:
        raise case_service.CaseError("not_staff")
    return member


async def _say(update: Update, context: BotContext, text: str,
               buttons: list[list[Button]] | None = None) -> None:
    chat = update.effective_chat
    assert chat is not None
    await send_screen(context.application, chat.id, Screen(text, buttons or []))


async def on_staff_start(update: Update, context: BotContext) -> None:
    """/start or /help from staff: what she can do here."""
    async with context.bot_data.sessions() as session:
        member = await _member(session, context, update)
        roles = ", ".join(_t(context, f"role_{r}") for r in sorted(member.role_names))
    lines = [_t(context, "staff_help", name=member.name, roles=roles)]
    lines += [f"/{c}: {_t(context, f'cmd_{c}')}" for c in staff_commands(member.role_names)
              if c != "help"]
    lines.append(_t(context, "staff_help_footer"))
    await _say(update, context, "\n".join(lines))


async def on_duty(update: Update, context: BotContext) -> None:
    """/duty on|off: override the roster until the end of the day (or /duty auto)."""
    data = context.bot_data
    arg = (context.args or [""])[0].lower()
    if not context.args:
        # Alone: where she stands now, and why.
        async with data.sessions() as session:
            member = await _member(session, context, update)
            on = any(m.id == member.id for m in await staff_service.on_duty(
                session, settings=data.settings, now=data.clock.now()))
            overridden = member.duty_override is not None and (
                member.duty_override_until is None
                or aware(member.duty_override_until) > data.clock.now())
        source = _t(context, "duty_by_you" if overridden else "duty_by_roster")
        await _say(update, context, _t(context, "duty_now_on" if on else "duty_now_off",
                                       source=source))
        return
    if arg not in ("on", "off", "auto"):
        await _say(update, context, _t(context, "duty_usage"))
        return
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        member = await _member(session, context, update)
        member.duty_override = None if arg == "auto" else arg == "on"
        member.duty_override_until = None
        await staff_service.audit(session, now=now, action=f"duty.{arg}", staff_id=member.id)
        waiting = await case_service.waiting_cases(session) if arg == "on" else []
        count = await case_service.count_waiting(session) if waiting else 0
    await _say(update, context, _t(context, f"duty_{arg}"))
    if waiting:
        await _send_queue(update, context, waiting, count)


async def _send_queue(update: Update, context: BotContext, waiting: list[Case],
                      count: int) -> None:
    now = context.bot_data.clock.now()
    if not waiting:
        await _say(update, context, _t(context, "queue_empty"))
        return
    lines = [_t(context, "queue_title", count=count)]
    buttons = []
    for case in waiting:
        minutes = int((now - aware(case.created_at)).total_seconds() // 60)
        mark = "⏸ " if case.status == CaseStatus.PAUSED else ""
        lines.append(mark + _t(context, "queue_line", number=case.id,
                        urgency=_t(context, f"urgency_{case.urgency}"),
                        category=_t(context, f"cat_{case.category}") if case.category else "—",
                        minutes=minutes))
        buttons.append([Button.of(_t(context, "btn_take_n", number=case.id), cb.Take(case.id))])
    await _say(update, context, "\n".join(lines), buttons)


async def on_queue(update: Update, context: BotContext) -> None:
    """/queue: what waits, by urgency and waiting time."""
    data = context.bot_data
    async with data.sessions() as session, session.begin():
        member = await _member(session, context, update)
        waiting = await case_service.waiting_cases(session)
        count = await case_service.count_waiting(session)
        await staff_service.audit(session, now=data.clock.now(), action="view.queue",
                                  staff_id=member.id)
    await _send_queue(update, context, waiting, count)


async def on_roster(update: Update, context: BotContext) -> None:
    """/roster: who is on duty now, and the gaps of the next seven days by role."""
    data = context.bot_data
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        member = await _member(session, context, update)
        duty = await staff_service.on_duty(session, settings=data.settings, now=now)
        members = {m.name.casefold(): set(m.role_names)
                   for m in await staff_service.list_staff(session)}
        await staff_service.audit(session, now=now, action="view.roster", staff_id=member.id)
    texts, tz = data.texts, data.settings.organization.tz

    on = [f"• {m.name} ({_roles_text(context, m.role_names)})" for m in duty
          if staff_service.is_specialist(m)]
    lines = [_t(context, "roster_now")] + (on or [_t(context, "roster_nobody")])
    lines.append("")
    lines.append(_t(context, "roster_gaps"))
    hours = Hours.of(data.settings, members)
    for role in SPECIALIST_ROLES:
        gaps = hours.gaps(role, now)
        name = _t(context, f"role_{role}")
        if not gaps:
            lines.append(_t(context, "roster_role_covered", role=name))
            continue
        shown = ", ".join(
            f"{when_label(texts, None, a, now=now, tz=tz)} – {b.astimezone(tz):%H:%M}"
            if (b - a) < timedelta(days=1) and a.date() == b.date()
            else f"{when_label(texts, None, a, now=now, tz=tz)} – "
                 f"{when_label(texts, None, b, now=now, tz=tz)}"
            for a, b in gaps[:6])
        more = _t(context, "roster_more", count=len(gaps) - 6) if len(gaps) > 6 else ""
        lines.append(_t(context, "roster_role_gaps", role=name, gaps=shown + more))
    await _say(update, context, "\n".join(lines))


async def on_cases(update: Update, context: BotContext) -> None:
    """/cases: her active cases; a tap makes one the case her plain messages go to."""
    data = context.bot_data
    async with data.sessions() as session, session.begin():
        member = await _member(session, context, update)
        mine = await case_service.staff_cases(session, member=member)
        active = member.active_case_id
        await staff_service.audit(session, now=data.clock.now(), action="view.cases",
                                  staff_id=member.id)
    if not mine:
        await _say(update, context, _t(context, "cases_empty"))
        return
    lines = [_t(context, "cases_title")]
    buttons = []
    for case in mine:
        mark = ("▶ " if case.id == active else "") + \
            ("⏸ " if case.status == CaseStatus.PAUSED else "")
        lines.append(mark + _t(context, "queue_line", number=case.id,
                               urgency=_t(context, f"urgency_{case.urgency}"),
                               category=_t(context, f"cat_{case.category}")
                               if case.category else "—", minutes=0).rsplit(" · ", 1)[0])
        buttons.append([Button.of(_t(context, "btn_use_n", number=case.id), cb.UseCase(case.id))])
    await _say(update, context, "\n".join(lines), buttons)


async def on_close(update: Update, context: BotContext) -> None:
    """/close [N]: ask the outcome of her active case (or case N)."""
    if context.args:
        case_id: int | None = small_number(context.args[0].lstrip("#"))
        if case_id is None:
            await _say(update, context, _t(context, "close_usage"))
            return
    else:
        async with context.bot_data.sessions() as session:
            case_id = (await _member(session, context, update)).active_case_id
    try:
        if not case_id:
            raise case_service.CaseError("no_active_case")
        await _ask_outcome(update, context, case_id, closed_key="no_active_case")
    except case_service.CaseError as exc:
        await _say(update, context, _t(context, exc.key, **exc.values))


async def on_code_word(update: Update, context: BotContext) -> None:
    """/codeword N: let the client's code word work again after too many wrong tries (her
    own specialist, or a coordinator); audited."""
    args = context.args or []
    case_number = small_number(args[0].lstrip("#")) if args else None
    if case_number is None:
        await _say(update, context, _t(context, "code_word_reset_usage"))
        return
    data = context.bot_data
    now = data.clock.now()
    try:
        async with data.sessions() as session, session.begin():
            member = await _actor(session, context, update)
            case = await session.get(Case, case_number)
            if case is None or case.client_id is None:
                raise case_service.CaseError("case_gone")
            if not case_service.may_act(member, case.owner_id):
                raise case_service.CaseError("not_your_case", number=case.id)
            done = await code_word_service.reset(session, client_id=case.client_id)
            await staff_service.audit(session, now=now, action="code_word.reset",
                                      staff_id=member.id, case_id=case.id)
        await _say(update, context, _t(context, "code_word_reset_done" if done
                                       else "code_word_reset_none", number=case.id))
    except case_service.CaseError as exc:
        await _say(update, context, _t(context, exc.key, **exc.values))


async def on_block(update: Update, context: BotContext) -> None:
    """/block N [DAYS] REASON: a coordinator blocks the sender of case N (audited). They
    still get the emergency numbers to every message; nothing of theirs reaches staff."""
    args = context.args or []
    number = small_number(args[0].lstrip("#")) if args else None
    days = block_service.DEFAULT_DAYS
    rest = args[1:]
    if rest and small_number(rest[0]) is not None:
        days, rest = int(rest[0]), rest[1:]
    reason = rest[0].lower() if len(rest) == 1 else ""
    if number is None or reason not in block_service.REASONS:
        await _say(update, context, _t(context, "block_usage"))
        return
    data = context.bot_data
    now = data.clock.now()
    try:
        async with data.sessions() as session, session.begin():
            member = await _actor(session, context, update)
            done = await block_service.block(session, crypto=data.crypto, case_id=number,
                                             member=member, days=days, reason=reason,
                                             now=now)
    except case_service.CaseError as exc:
        await _say(update, context, _t(context, exc.key, **exc.values))
        return
    until = done.until.astimezone(data.settings.organization.tz).strftime("%d.%m.%Y")
    text = _t(context, "blocked", number=number, until=until,
              reason=_t(context, f"block_reason_{reason}"))
    if done.open_cases:
        text += "\n" + _t(context, "blocked_open_cases",
                           numbers=", ".join(f"#{n}" for n in done.open_cases))
    await _say(update, context, text)


async def on_unblock(update: Update, context: BotContext) -> None:
    """/unblock N: the sender of case N may write to staff again (audited)."""
    args = context.args or []
    number = small_number(args[0].lstrip("#")) if len(args) == 1 else None
    if number is None:
        await _say(update, context, _t(context, "unblock_usage"))
        return
    data = context.bot_data
    try:
        async with data.sessions() as session, session.begin():
            member = await _actor(session, context, update)
            done = await block_service.unblock(session, case_id=number, member=member,
                                               now=data.clock.now())
    except case_service.CaseError as exc:
        await _say(update, context, _t(context, exc.key, **exc.values))
        return
    await _say(update, context, _t(context, "unblocked" if done else "not_blocked",
                                   number=number))


def _case_asked(args: list[str], member: staff_service.Actor) -> int:
    """The case a command names (`N` or `#N`), else her current one; `CaseError` if none."""
    number = small_number(args[0].lstrip("#")) if args else None
    case_id = number or member.active_case_id
    if case_id is None:
        raise case_service.CaseError("no_active_case")
    return case_id


async def on_reply(update: Update, context: BotContext) -> None:
    """/reply [N]: the center's quick replies and the library's topics, to send to the
    client of case N (else her current case) in the client's language, one tap each."""
    data = context.bot_data
    try:
        async with data.sessions() as session:
            member = await _actor(session, context, update)
            case_id = _case_asked(context.args or [], member)
            case, client = await _conversation(session, member, case_id)
    except case_service.CaseError as exc:
        await _say(update, context, _t(context, exc.key, **exc.values))
        return
    texts, staff_lang = data.texts, data.texts.lang(None)
    rows = [[Button.of(texts.reply(staff_lang, rid).title, cb.QuickReply(case.id, rid))]
            for rid in texts.reply_ids]
    rows += [[Button.of(texts.resource(staff_lang, rid).title, cb.QuickTopic(case.id, rid))]
             for rid in texts.resource_ids]
    language = LANGUAGE_NAMES.get(texts.lang(client.language), "")
    await _say(update, context, _t(context, "quick_title", number=case.id, lang_name=language),
               rows)


async def _conversation(session: AsyncSession, member: staff_service.Actor,
                        case_id: int) -> tuple[Case, HerRecord]:
    """Her own live conversation `case_id` and its client, or `CaseError` saying why not."""
    case = await session.get(Case, case_id)
    if case is None or case.client_id is None:
        raise case_service.CaseError("case_gone")
    if case.owner_id != member.id:
        raise case_service.CaseError("not_your_case", number=case.id)
    if case.status == CaseStatus.PAUSED:
        raise case_service.CaseError("not_delivered_paused", number=case.id)
    if case.status != CaseStatus.ACTIVE:
        raise case_service.CaseError("already_closed", number=case.id)
    if case.contact == "call_later":
        raise case_service.CaseError("call_no_chat", number=case.id)
    client = await _client_of(session, case.client_id)
    if client is None:
        raise case_service.CaseError("case_gone")
    return case, client


async def _send_quick(update: Update, context: BotContext,
                      tap: cb.QuickReply | cb.QuickTopic) -> None:
    """A quick reply or a topic, in the client's language, to the client of its case."""
    data = context.bot_data
    texts = data.texts
    case_id = tap.case_id
    kind, item_id = ("qr", tap.reply) if isinstance(tap, cb.QuickReply) else ("qt", tap.topic)
    ids = texts.reply_ids if kind == "qr" else texts.resource_ids
    if item_id not in ids:
        raise case_service.CaseError("expired_button")
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        member = await _actor(session, context, update)
        case, client = await _conversation(session, member, case_id)
        await staff_service.audit(session, now=now, action="case.quick_reply",
                                  staff_id=member.id, case_id=case.id, detail=item_id)
    lang = texts.lang(client.language)
    if kind == "qr":
        text = texts.reply(lang, item_id).body
        title = texts.reply(None, item_id).title
    else:
        topic = texts.resource(lang, item_id)
        text = f"<b>{topic.title}</b>\n\n{topic.body}"
        title = texts.resource(None, item_id).title
    delivered = await _tell_client(context, client_id=case.client_id,
                                   chat_id=data.crypto.decrypt_int(client.chat_id_enc),
                                   text=text, facts=client.facts)
    key = "quick_sent" if delivered else "client_unreachable"
    await _say(update, context, _t(context, key, number=case.id, title=title,
                                   lang_name=LANGUAGE_NAMES.get(lang, lang)))


async def on_handover(update: Update, context: BotContext) -> None:
    """/handover [N]: offer the live case N (else her current one) to a colleague on duty
    or to everyone of a role on duty; a coordinator may hand over any case."""
    data = context.bot_data
    try:
        async with data.sessions() as session:
            member = await _actor(session, context, update)
            case_id = _case_asked(context.args or [], member)
            case = await handover_service.live_case(session, case_id=case_id, member=member)
            others = await handover_service.colleagues(session, case=case,
                                                       settings=data.settings,
                                                       now=data.clock.now())
    except case_service.CaseError as exc:
        await _say(update, context, _t(context, exc.key, **exc.values))
        return
    if not others:
        await _say(update, context, _t(context, "handover_nobody"))
        return
    rows = [[Button.of(_t(context, "handover_to", name=c.name,
                          roles=_roles_text(context, c.roles)),
                       cb.HandOverTo(case.id, c.id))] for c in others]
    for role in SPECIALIST_ROLES:
        if any(handover_service.covers_role(c, role) for c in others):
            rows.append([Button.of(_t(context, "handover_to_role",
                                      role=_t(context, f"role_{role}")),
                                   cb.HandOverToRole(case.id, role))])
    await _say(update, context, _t(context, "handover_ask", number=case.id), rows)


def _roles_text(context: BotContext, roles: Iterable[str]) -> str:
    return ", ".join(_t(context, f"role_{r}") for r in sorted(roles) if r in SPECIALIST_ROLES)


async def _offer_handover(update: Update, context: BotContext,
                          tap: cb.HandOverTo | cb.HandOverToRole) -> None:
    query = update.callback_query
    assert query is not None
    data = context.bot_data
    app = context.application
    now = data.clock.now()
    case_id = tap.case_id
    to_staff = tap.staff_id if isinstance(tap, cb.HandOverTo) else None
    role = tap.role if isinstance(tap, cb.HandOverToRole) and \
        tap.role in SPECIALIST_ROLES else None
    if to_staff is None and role is None:
        raise case_service.CaseError("expired_button")
    async with data.sessions() as session, session.begin():
        member = await _actor(session, context, update)
        offered = await handover_service.offer(session, case_id=case_id, member=member,
                                               settings=data.settings, now=now,
                                               to_staff_id=to_staff, role=role)
        # The menu becomes the prompt a note replies to: known before anything is sent,
        # so a note never goes anywhere else, a restart in between or not.
        if query.message is not None:
            offered.handover.prompt_message_id = query.message.message_id
        case = await session.get(Case, case_id)
        assert case is not None
        earlier = await case_service.earlier_cases(session, case=case, settings=data.settings,
                                                   now=now)
        giver = await session.get(Staff, offered.handover.from_staff_id) \
            if offered.handover.from_staff_id else None
        handover_id = offered.handover.id
    card = case_service.card(case, texts=data.texts, language=data.texts.lang(None), now=now,
                             with_buttons=False, earlier=earlier)
    screen = Screen(card.text + "\n\n" + _t(context, "handover_card",
                                             name=giver.name if giver else "—"),
                    [[Button.of(_t(context, "btn_take_over"), cb.TakeOver(handover_id))]],
                    urgent=card.urgent)
    sent: list[tuple[int, int]] = []
    for colleague in offered.targets:
        try:
            message_id = await send_screen(app, data.crypto.decrypt_int(colleague.chat_enc),
                                           screen)
        except TelegramError as exc:
            log.warning("handover card not delivered: %s", type(exc).__name__)
            continue
        sent.append((colleague.id, message_id))
    who = ", ".join(c.name for c in offered.targets) if to_staff is not None else \
        _t(context, "handover_to_role", role=_t(context, f"role_{role}")).removeprefix("→ ")
    prompt = Screen(_t(context, "handover_offered", number=case_id, who=who))
    if query.message is not None:
        await edit_screen(app, query.message.chat.id, query.message.message_id, prompt)
    async with data.sessions() as session, session.begin():
        for staff_id, message_id in sent:
            session.add(HandoverCard(handover_id=handover_id, staff_id=staff_id,
                                     message_id=message_id))


async def _show_taken(context: BotContext, cards: Sequence[tuple[bytes, int]],
                      screen: Screen) -> None:
    """Colleagues' cards (her Telegram id, encrypted; message id) of a case one of them
    took, all at once. One who blocked the bot stops neither the others' cards nor the
    rest of the take."""
    crypto = context.bot_data.crypto

    async def change(chat: bytes, message_id: int) -> None:
        try:
            await edit_screen(context.application, crypto.decrypt_int(chat), message_id,
                              screen)
        except TelegramError as exc:
            log.warning("a colleague's card not changed: %s", type(exc).__name__)
    await side_by_side(*(change(chat, message_id) for chat, message_id in cards))


async def _take_over(update: Update, context: BotContext, handover_id: int) -> None:
    query = update.callback_query
    assert query is not None
    data = context.bot_data
    app = context.application
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        member = await _actor(session, context, update)
        done = await handover_service.take_over(session, handover_id=handover_id,
                                                member=member, now=now)
        case = done.case
        client = await _client_of(session, case.client_id)
        previous = await session.get(Staff, done.from_staff_id) if done.from_staff_id else None
    if query.message is not None:
        await edit_screen(app, query.message.chat.id, query.message.message_id,
                          Screen(_t(context, "handover_taken_you", number=case.id)))
    await answer_button(query)
    await _show_taken(context, done.others,
                      Screen(_t(context, "taken_by", number=case.id, name=member.name)))
    if previous is not None:
        await say_to_chat(app, data.crypto.decrypt_int(previous.tg_id_enc),
                          _t(context, "handover_done", number=case.id, name=member.name))
    if client is not None and client.chat_id_enc is not None:
        texts = data.texts
        language = client.language
        await _tell_client(
            context, client_id=case.client_id, chat_id=data.crypto.decrypt_int(client.chat_id_enc),
            text=texts.t(language, "specialist_changed",
                         role=texts.t(language, f"role_{done.role}")),
            buttons=[[Button.of(texts.t(language, "btn_info"), cb.Library())],
                     [Button.of(texts.t(language, "btn_end"), cb.End())]],
            facts=client.facts)


# /log: an appeal that came by the hotline or in person, in a few taps. Each button carries
# the choices so far (indices), so nothing is kept between the taps.
_LOG_CHANNELS = {"h": "hotline", "w": "walk_in"}  # `cb.LogAppeal.channel`


async def on_log(update: Update, context: BotContext) -> None:
    """/log: record an appeal that came by the hotline or in person (anonymous)."""
    async with context.bot_data.sessions() as session:
        member = await _actor(session, context, update)
    if not staff_service.is_specialist(member) and "coordinator" not in member.role_names:
        await _say(update, context, _t(context, "not_allowed"))
        return
    await _say(update, context, _t(context, "log_channel"), [
        [Button.of(_t(context, "channel_hotline"), cb.LogAppeal("h")),
         Button.of(_t(context, "channel_walk_in"), cb.LogAppeal("w"))]])


def _log_step(context: BotContext, tap: cb.LogAppeal) -> Screen | None:
    """The next question after the choices `tap` carries, or None when all are made.
    Raises ValueError for choices no button of ours carries."""
    settings = context.bot_data.settings
    lists: list[tuple[str, Sequence[str], str]] = [
        ("log_region", [r.code for r in settings.regions], "region"),
        ("log_kind", case_service.CATEGORIES, "cat_"),
        ("log_for", case_service.FOR_WHOM, "for_"),
        ("log_outcome", appeal_service.OFFLINE_OUTCOMES, "outcome_"),
    ]
    if tap.channel not in _LOG_CHANNELS or len(tap.picks) > len(lists):
        raise ValueError("log")
    for index, chosen in enumerate(tap.picks):
        if chosen is not None and chosen >= len(lists[index][1]):
            raise ValueError("log")
    step = len(tap.picks)
    if step == len(lists):
        return None
    question, values, prefix = lists[step]
    lang = context.bot_data.texts.lang(None)

    def then(pick: int | None) -> cb.LogAppeal:
        return cb.LogAppeal(tap.channel, (*tap.picks, pick))
    buttons = [Button.of(context.bot_data.texts.region_name(lang, v) if prefix == "region"
                         else _t(context, f"{prefix}{v}"), then(i))
               for i, v in enumerate(values)]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([Button.of(_t(context, "btn_skip"), then(None))])
    return Screen(_t(context, question), rows)


async def on_log_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    data = context.bot_data
    async with data.sessions() as session:
        try:
            member = await _actor(session, context, update)
        except case_service.CaseError as exc:
            await answer_button(query, _t(context, exc.key, **exc.values), show_alert=True)
            return
    if not staff_service.is_specialist(member) and "coordinator" not in member.role_names:
        await answer_button(query, _t(context, "not_allowed"), show_alert=True)
        return
    tap = cb.decode(query.data)
    try:
        if not isinstance(tap, cb.LogAppeal):
            raise ValueError("log")
        screen = _log_step(context, tap)
    except ValueError:
        await answer_button(query, _t(context, "expired_button"), show_alert=True)
        return
    if screen is not None and query.message is not None:
        await edit_screen(context.application, query.message.chat.id,
                          query.message.message_id, screen)
        await answer_button(query)
        return

    def pick(index: int, values: Sequence[str]) -> str | None:
        chosen = tap.picks[index]
        return None if chosen is None else values[chosen]

    appeal = appeal_service.OfflineAppeal(
        day=today_in(data.settings.organization.tz, data.clock.now()),
        channel=_LOG_CHANNELS[tap.channel],
        region=pick(0, [r.code for r in data.settings.regions]),
        category=pick(1, case_service.CATEGORIES), for_whom=pick(2, case_service.FOR_WHOM),
        outcome=pick(3, appeal_service.OFFLINE_OUTCOMES))
    now = data.clock.now()
    try:
        async with data.sessions() as session, session.begin():
            member = await _actor(session, context, update)
            await appeal_service.record(session, [appeal], settings=data.settings)
            await staff_service.audit(session, now=now, action="appeal.log",
                                      staff_id=member.id, detail=appeal.channel)
    except case_service.CaseError as exc:
        await answer_button(query, _t(context, exc.key, **exc.values), show_alert=True)
        return
    lang = data.texts.lang(None)
    summary = ", ".join(x for x in (
        _t(context, f"channel_{appeal.channel}"),
        data.texts.region_name(lang, appeal.region) if appeal.region else None,
        _t(context, f"cat_{appeal.category}") if appeal.category else None,
        _t(context, f"for_{appeal.for_whom}") if appeal.for_whom else None,
        _t(context, f"outcome_{appeal.outcome}") if appeal.outcome else None) if x)
    if query.message is not None:
        await edit_screen(context.application, query.message.chat.id,
                          query.message.message_id,
                          Screen(_t(context, "log_done", summary=summary)))
    await answer_button(query)


async def on_card_button(update: Update, context: BotContext) -> None:
    """Take, Pass, Close with outcome, Use: every one checked against the database."""
    query = update.callback_query
    assert query is not None
    data = context.bot_data
    now = data.clock.now()
    try:
        match cb.decode(query.data):
            case cb.Take(case_id):
                await _take(update, context, case_id)  # answers the button itself
                return
            case cb.Pass(case_id):
                async with data.sessions() as session, session.begin():
                    member = await _member(session, context, update)
                    outcome = await case_service.pass_case(
                        session, case_id=case_id, member=member, settings=data.settings,
                        texts=data.texts, crypto=data.crypto, now=now)
                await query.answer(_t(context, "passed", number=case_id))
                if query.message is not None:
                    await edit_screen(context.application, query.message.chat.id,
                                      query.message.message_id,
                                      Screen(_t(context, "passed", number=case_id)))
                await deliver_to_staff(context.application, outcome.deliveries)
                return
            case cb.Close(case_id, outcome_code):
                await _close(update, context, case_id, outcome_code)  # answers the button
                return
            case cb.Called(case_id):
                await _ask_outcome(update, context, case_id)
            case cb.NoAnswer(case_id):
                await _call_again(update, context, case_id, minutes=30)
            case cb.TryLater(case_id):
                await _call_again(update, context, case_id, minutes=120)
            case cb.OfferCheckIn(case_id):
                await _offer_check_in(update, context, case_id)
            case cb.HandOverTo() | cb.HandOverToRole() as tap:
                await _offer_handover(update, context, tap)
            case cb.TakeOver(handover_id):
                await _take_over(update, context, handover_id)  # answers the button itself
                return
            case cb.QuickReply() | cb.QuickTopic() as tap:
                await _send_quick(update, context, tap)
            case cb.UseCase(case_id):
                async with data.sessions() as session, session.begin():
                    member = await _member(session, context, update)
                    case = await session.get(Case, case_id)
                    if case is None or case.owner_id != member.id or \
                            case.status != CaseStatus.ACTIVE:
                        raise case_service.CaseError("not_your_case", number=case_id)
                    member.active_case_id = case.id
                await query.answer(_t(context, "now_active", number=case_id))
                await _say(update, context, _t(context, "now_active", number=case_id))
                return
            case _:  # forged, from an old version, or not staff's
                raise case_service.CaseError("expired_button")
    except case_service.CaseError as exc:
        # A stranger is answered in her own language; staff in the center's.
        language = query.from_user.language_code if exc.key == "not_staff" else None
        await answer_button(query, data.texts.t(language, exc.key, **exc.values),
                            show_alert=True)
        return
    await answer_button(query)


async def _ask_outcome(update: Update, context: BotContext, case_id: int, *,
                       closed_key: str = "already_closed") -> None:
    """The outcome menu for a case she may close; `CaseError` otherwise."""
    async with context.bot_data.sessions() as session:
        member = await _actor(session, context, update)
        case = await session.get(Case, case_id)
        if case is None or case.status == CaseStatus.CLOSED:
            raise case_service.CaseError(closed_key, number=case_id)
        if not case_service.may_act(member, case.owner_id):
            raise case_service.CaseError("not_your_case", number=case_id)
    data = context.bot_data
    await _say(update, context, _t(context, "close_ask", number=case_id),
               case_service.outcome_buttons(data.texts, data.texts.lang(None), case_id))


async def _call_again(update: Update, context: BotContext, case_id: int, *,
                      minutes: int) -> None:
    """No answer, or not now: the call goes back to the queue for a later time."""
    data = context.bot_data
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        member = await _actor(session, context, update)
        due = await case_service.call_again(session, case_id=case_id, member=member, now=now,
                                            minutes=minutes)
    scheduling.arm(context.application, case_service.CONTACT_DUE, case_id, due)
    query = update.callback_query
    if query is not None and query.message is not None:
        local = staff_service.local_time(due, data.settings.organization.tz)
        await edit_screen(context.application, query.message.chat.id, query.message.message_id,
                          Screen(_t(context, "call_rescheduled", number=case_id,
                                    time=local.strftime("%H:%M"))))


async def _take(update: Update, context: BotContext, case_id: int) -> None:
    data = context.bot_data
    app = context.application
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        member = await _actor(session, context, update)
        result = await case_service.take(session, case_id=case_id, member=member, now=now)
        case = result.case
        client = await _client_of(session, case.client_id)
        client_chat = data.crypto.decrypt_int(client.chat_id_enc) if client else None
        client_lang = client.language if client else None
        facts = client.facts if client else None
        phone = case_service.call_phone(case, data.crypto)
        earlier = await case_service.earlier_cases(session, case=case, settings=data.settings,
                                                   now=now)
        name = member.name
        role = case_service.role_for(case.category)
        query = update.callback_query
        assert query is not None  # a tap on the card
        if query.message is not None:
            await case_service.remember_card(session, case_id=case.id, staff_id=member.id,
                                             message_id=query.message.message_id, now=now)
        paused = case.status == CaseStatus.PAUSED
        # What she wrote while she waited is the taker's now (copied below, once).
        waiting = await relay.take_waiting(session, case_id=case.id) \
            if client_chat is not None and not paused and query.message is not None else []

    async def my_card() -> None:
        if query.message is not None:
            card = case_service.card(case, texts=data.texts, language=data.texts.lang(None),
                                     now=now, phone=phone, with_buttons=False,
                                     earlier=earlier)
            buttons: list[list[Button]] = []
            if case.contact == "call_later":
                # A call: the number is shown only here, with what came of the call.
                buttons = [[Button.of(_t(context, "btn_called"), cb.Called(case.id))],
                           [Button.of(_t(context, "btn_no_answer"), cb.NoAnswer(case.id)),
                            Button.of(_t(context, "btn_try_later"), cb.TryLater(case.id))]]
            await edit_screen(app, query.message.chat.id, query.message.message_id,
                              Screen(card.text + "\n\n" + _t(context, "taken_you_short"),
                                     buttons))

    async def for_the_others() -> None:
        await _show_taken(context, result.others,
                          Screen(_t(context, "taken_by", number=case.id, name=name)))

    async def for_her() -> None:
        # Nothing reaches her chat that she did not choose: not while she is away (quick
        # exit), not for a phone call.
        if client_chat is None or paused or case.contact == "call_later":
            return
        texts = data.texts
        rows = [[Button.of(texts.t(client_lang, "btn_info"), cb.Library())]]
        if facts is not None and facts.offer_code_word:
            rows.append([Button.of(texts.t(client_lang, "btn_code_word"), cb.ChooseCodeWord())])
        rows.append([Button.of(texts.t(client_lang, "btn_end"), cb.End())])
        await _tell_client(
            context, client_id=case.client_id, chat_id=client_chat,
            text=texts.t(client_lang, "specialist_joined",
                         role=texts.t(client_lang, f"role_{role}")),
            buttons=rows, facts=facts)

    if paused:
        note = "taken_paused"
    else:
        note = "taken_call" if case.contact == "call_later" else "taken_you"
    # All at once, my card first: her notice and the other cards are other chats, and my
    # card is changed in place, so my new note below it needs no order with it.
    await side_by_side(my_card(), answer_button(query),
                       _say(update, context, _t(context, note, number=case.id)),
                       for_the_others(), for_her())
    if waiting and client_chat is not None and query.message is not None:
        # What she wrote while she waited, right after the card and the note, in order:
        # she does not have to tell it again.
        await _say(update, context, _t(context, "waiting_copies", count=len(waiting)))
        missing = await relay.copy_waiting(app, waiting, case_id=case.id, staff_id=member.id,
                                           client_chat_id=client_chat,
                                           staff_chat_id=query.message.chat.id)
        if missing:
            await _say(update, context, _t(context, "waiting_copies_missing", count=missing))


@dataclass(frozen=True)
class ClientFacts:
    """What a message to her needs of her record: her language, her auto-delete time, her
    last quick exit (a message on its way across a new one is deleted on arrival)."""

    language: str | None
    auto_delete_minutes: int | None
    exited_at: datetime | None = None
    offer_code_word: bool = True


@dataclass(frozen=True)
class HerRecord:
    """What taking or closing a case needs of her record: one read of a few columns."""

    id: int
    chat_id_enc: bytes
    language: str | None
    auto_delete_minutes: int | None
    step: str
    exited_at: datetime | None
    offer_code_word: bool

    @property
    def facts(self) -> ClientFacts:
        return ClientFacts(self.language, self.auto_delete_minutes, self.exited_at,
                           self.offer_code_word)


async def _client_of(session: AsyncSession, client_id: int | None) -> HerRecord | None:
    if client_id is None:
        return None
    row = await client_service.for_staff(session, client_id)
    return HerRecord(*row) if row is not None else None


async def _tell_client(context: BotContext, *, client_id: int | None, chat_id: int, text: str,
                       buttons: list[list[Button]] | None = None,
                       facts: ClientFacts | None = None) -> bool:
    """A message to a client, recorded for quick exit; it becomes her menu if it has buttons.
    `facts`: her record's, when the caller has just read them. Whether it reached her and
    stays (not deleted on arrival because she left meanwhile)."""
    data = context.bot_data
    found = facts
    if client_id and found is None:
        async with data.sessions() as session:
            row = await _client_of(session, client_id)
        found = row.facts if row else None
    language = found.language if found else None
    # Quick exit stays one tap away on every screen she gets.
    rows = [*(buttons or []), [Button.of(data.texts.t(language, "btn_exit"), cb.Exit())]]
    try:
        message_id = await send_screen(context.application, chat_id, Screen(text, rows))
    except TelegramError as exc:
        log.warning("message to a client not delivered: %s", type(exc).__name__)
        return False
    if client_id is None or found is None:
        return True
    # Recorded for quick exit, and her menu now, in one transaction; deleted at once had
    # she left or erased herself meanwhile.
    async def her_menu(session: AsyncSession, her_id: int) -> None:
        await client_service.set_menu(session, her_id, message_id)

    return await keep_for_deletion(context.application, chat_id, [message_id],
                                   sent=SentBefore(found.exited_at), along=her_menu)


async def _close(update: Update, context: BotContext, case_id: int, outcome: str) -> None:
    data = context.bot_data
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        member = await _actor(session, context, update)
        case = await case_service.close(session, case_id=case_id, member=member,
                                        outcome=outcome, now=now)
        client = await _client_of(session, case.client_id)
        client_chat = data.crypto.decrypt_int(client.chat_id_enc) if client else None
        client_lang = client.language if client else None
        facts = client.facts if client else None
        if case.tell_client and client is not None:
            # Her next menu asks her to rate it, if she was waiting in it.
            await client_flow.ask_for_rating(session, client_id=client.id, case_id=case.id)
        card_message: int | None = None
        card_chat: int | None = None
        closed_card: Screen | None = None
        closed_row = await session.get(Case, case.id) if case.contact == "call_later" else None
        if closed_row is not None:
            # The number is on the taker's card, whoever closes the case (a coordinator may).
            taker = await session.get(Staff, closed_row.owner_id or member.id)
            card_message = await case_service.card_of(session, case_id=case.id,
                                                      staff_id=taker.id if taker else member.id)
            card_chat = data.crypto.decrypt_int(taker.tg_id_enc) if taker else None
            closed_card = case_service.card(closed_row, texts=data.texts,
                                            language=data.texts.lang(None), now=now,
                                            with_buttons=False)
    query = update.callback_query
    assert query is not None  # a tap on the outcome menu

    # A conversation that ended in this chat may be followed by a check-in she agrees to.
    offer_check_in = case.tell_client and case.contact != "call_later"

    async def for_me() -> None:
        if query.message is not None:
            closed = Screen(_t(context, "closed", number=case_id,
                               outcome=_t(context, f"outcome_{outcome}")),
                            [[Button.of(_t(context, "btn_offer_checkin"),
                                        cb.OfferCheckIn(case_id))]]
                            if offer_check_in else [])
            await edit_screen(context.application, query.message.chat.id,
                              query.message.message_id, closed)
            if card_message is not None and closed_card is not None and card_chat is not None:
                # Her phone number leaves the call card once the case is closed.
                await edit_screen(context.application, card_chat, card_message,
                                  Screen(closed_card.text + "\n\n" + closed.text))

    async def for_her() -> None:
        # Only a conversation in this chat that was open (not paused by quick exit, not a
        # phone call) ends with a word to her and the rating.
        if client_chat is not None and case.tell_client:
            texts = data.texts
            await _tell_client(context, client_id=case.client_id, chat_id=client_chat,
                               text=texts.t(client_lang, "conversation_closed"),
                               buttons=client_flow.rating_rows(), facts=facts)

    await side_by_side(for_me(), answer_button(query), for_her())


async def _offer_check_in(update: Update, context: BotContext, case_id: int) -> None:
    """The specialist offers the client a check-in later: she is asked, in her language,
    and chooses a time or says no."""
    query = update.callback_query
    assert query is not None
    data = context.bot_data
    now = data.clock.now()
    async with data.sessions() as session, session.begin():
        member = await _actor(session, context, update)
        case = await session.get(Case, case_id)
        if case is None or not checkin_service.allowed(case):
            raise case_service.CaseError("checkin_not_possible", number=case_id)
        if not case_service.may_act(member, case.owner_id):
            raise case_service.CaseError("not_your_case", number=case_id)
        client = await _client_of(session, case.client_id)
        if client is None or not checkin_service.may_reach(case, client, now):
            # She left with quick exit since, or it is long after: nothing writes to her.
            raise case_service.CaseError("checkin_not_possible", number=case_id)
        if await checkin_service.pending(session, case_id=case_id):
            raise case_service.CaseError("checkin_offered", number=case_id)
        await staff_service.audit(session, now=now, action="case.check_in_offer",
                                  staff_id=member.id, case_id=case_id)
    texts, lang = data.texts, client.language

    def label(slot: str) -> str:
        at = checkin_service.when(slot, now=now, settings=data.settings)
        return when_label(texts, lang, at, now=now, tz=data.settings.organization.tz)

    rows = [[Button.of(label(a), cb.CheckInTime(case_id, a)),
             Button.of(label(b), cb.CheckInTime(case_id, b))]
            for a, b in (("3d11", "3d17"), ("7d11", "7d17"))]
    rows.append([Button.of(texts.t(lang, "btn_checkin_no"), cb.CheckInTime(case_id, "no"))])
    delivered = await _tell_client(context, client_id=case.client_id,
                                   chat_id=data.crypto.decrypt_int(client.chat_id_enc),
                                   text=texts.t(lang, "checkin_offer"), buttons=rows,
                                   facts=client.facts)
    if query.message is not None:
        await edit_screen(context.application, query.message.chat.id,
                          query.message.message_id,
                          Screen(_t(context, "checkin_offered" if delivered
                                    else "client_unreachable", number=case_id)))


async def _copy_handover_note(update: Update, context: BotContext, member_id: int,
                              prompt_message_id: int) -> bool:
    """A reply to her handover offer: copied to the colleagues (active staff only), never
    stored. False if that message was no handover offer of hers."""
    data = context.bot_data
    message, staff_chat = update.effective_message, update.effective_chat
    assert message is not None and staff_chat is not None
    async with data.sessions() as session:
        colleagues = await handover_service.note_target(
            session, staff_id=member_id, prompt_message_id=prompt_message_id)
        if colleagues is None:
            return False
        chats = [data.crypto.decrypt_int(m.tg_id_enc) for m in
                 [await session.get(Staff, c) for c in colleagues] if m is not None and m.active]
    for chat_id in chats:
        try:
            await context.bot.copy_message(chat_id, staff_chat.id, message.message_id)
        except TelegramError as exc:
            log.warning("handover note not delivered: %s", type(exc).__name__)
    await _say(update, context, _t(context, "handover_note_sent", count=len(chats)))
    return True


async def on_staff_message(update: Update, context: BotContext) -> None:
    """A specialist's message: to the client of the replied-to copy, or of her active case."""
    message = update.effective_message
    assert message is not None
    data = context.bot_data
    app = context.application
    staff_chat = update.effective_chat
    assert staff_chat is not None
    member_id = data.actors.get(update.update_id)
    if member_id is None:
        raise case_service.CaseError("not_staff")
    replied = message.reply_to_message
    target = await relay.staff_reply_target(
        app, staff_id=member_id, replied_message_id=replied.message_id if replied else None)
    if replied is not None and (target is None or target.reply_to_client_message is None):
        # Not an answer to one of the client's messages: a handover note, or else a reply
        # to one of the bot's own messages (a card, a notice), which is not meant for her.
        if await _copy_handover_note(update, context, member_id, replied.message_id):
            return
        if not await relay.is_relayed(app, staff_id=member_id, message_id=replied.message_id):
            await _say(update, context, _t(context, "reply_not_relayed"))
            return
    if target is None:
        await _say(update, context, _t(context, "no_active_case"))
        return
    try:
        await relay.staff_to_client(app, target=target, staff_id=member_id,
                                    staff_chat_id=staff_chat.id, message_id=message.message_id)
    except relay.ClientLeft:
        await _say(update, context, _t(context, "not_delivered_paused", number=target.case_id))
    except relay.PhoneCall:
        await _say(update, context, _t(context, "call_no_chat", number=target.case_id))
    except relay.RelayFailed:
        await _say(update, context, _t(context, "client_unreachable", number=target.case_id))


async def on_staff_edited(update: Update, context: BotContext) -> None:
    """A specialist edited a message she had sent a client: the client's copy is edited
    too. Not relayed (she left with quick exit, the copy is gone): she is told."""
    message = update.effective_message
    member_id = context.bot_data.actors.get(update.update_id)
    if message is None or member_id is None:
        return
    done = await relay.edit_client_copy(context.application, staff_id=member_id,
                                        edited=message)
    if done is False:
        await _say(update, context, _t(context, "edit_not_delivered"))


async def refuse(update: Update, context: BotContext) -> None:
    """A staff command from someone who is not (or no longer) staff."""
    chat = update.effective_chat
    if chat is not None:
        user = update.effective_user
        # Recorded like every message in a client's chat: quick exit deletes it too.
        await say_to_chat(context.application, chat.id, context.bot_data.texts.t(
            user.language_code if user else None, "not_staff"))


def register(app: SezimApp) -> None:
    is_staff = StaffFilter(app.bot_data) & filters.ChatType.PRIVATE
    app.add_handler(CommandHandler(["start", "help"], on_staff_start, filters=is_staff))
    app.add_handler(CommandHandler("duty", on_duty, filters=is_staff))
    app.add_handler(CommandHandler("queue", on_queue, filters=is_staff))
    app.add_handler(CommandHandler("cases", on_cases, filters=is_staff))
    app.add_handler(CommandHandler("roster", on_roster, filters=is_staff))
    app.add_handler(CommandHandler("reply", on_reply, filters=is_staff))
    app.add_handler(CommandHandler("log", on_log, filters=is_staff))
    app.add_handler(CommandHandler("handover", on_handover, filters=is_staff))
    app.add_handler(CommandHandler("block", on_block, filters=is_staff))
    app.add_handler(CommandHandler("unblock", on_unblock, filters=is_staff))
    app.add_handler(CommandHandler("close", on_close, filters=is_staff))
    app.add_handler(CommandHandler("codeword", on_code_word, filters=is_staff))
    # Card buttons: matched for staff only; from anyone else they fall to the client's
    # handler, which answers "this menu has expired".
    app.add_handler(CallbackQueryHandler(on_log_button, pattern=cb.pattern(cb.LogAppeal)))
    app.add_handler(CallbackQueryHandler(on_card_button,
                                         pattern=cb.staff_pattern(cb.LogAppeal, cb.StatsView)))
    app.add_handler(
        MessageHandler(is_staff & filters.UpdateType.MESSAGE & ~filters.COMMAND,
                       on_staff_message)
    )
    app.add_handler(MessageHandler(is_staff & filters.UpdateType.EDITED, on_staff_edited))


def register_refusals(app: SezimApp) -> None:
    """After the admin handlers: staff commands from non-staff get a clear refusal."""
    app.add_handler(CommandHandler(list(STAFF_COMMANDS), refuse,
                                   filters=filters.ChatType.PRIVATE))
