"""The client's side in Telegram: read the update, run the flow, show the reply.

Data access: one transaction per update through the flow (`bot.domain.flow`,
`bot.domain.clients`); a case, and her record on /forget, as entities from the session.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Message, Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.domain import callbacks as cb
from bot.domain import cases as case_service
from bot.domain import clients, retention
from bot.domain.cases import Delivery
from bot.domain.flow import Flow, Reply, Step
from bot.domain.screens import Screen
from bot.telegram import relay, scheduling
from bot.telegram.context import BotContext, SezimApp
from bot.telegram.delivery import (
    answer_button,
    delete_messages,
    delete_now,
    deliver_to_staff,
    edit_screen,
    keep_for_deletion,
    record_messages,
    refresh_cards,
    say_to_chat,
    send_screen,
    side_by_side,
    sweep_chat,
)
from bot.telegram.ratelimit import UNCERTAIN
from handlers.common import is_exit
from models import Case, CaseStatus, Client

log = logging.getLogger(__name__)

FlowAction = Callable[[Flow], Awaitable[Reply]]


async def run_flow(update: Update, context: BotContext, action: FlowAction) -> None:
    """One unit of work per update: state written and committed before anything is shown."""
    data = context.bot_data
    chat = update.effective_chat
    user = update.effective_user
    assert chat is not None and user is not None
    now = data.clock.now()
    incoming = update.effective_message
    query = update.callback_query
    async with data.sessions() as session, session.begin():
        client = await clients.load_or_create(
            session, crypto=data.crypto, chat_id=chat.id, language_code=user.language_code,
            now=now)
        before = client.snapshot()
        if incoming is not None and query is None:
            await record_messages(session, client=client.id, message_ids=[incoming.message_id],
                                  now=now, app=context.application,
                                  auto_delete_minutes=client.auto_delete_minutes,
                                  chat_id=chat.id)
        if client.blocked and not _leaving(update):
            # Blocked by a coordinator: the emergency numbers to every message, nothing
            # to staff (a block must never silence a person in danger).
            async def numbers(flow: Flow) -> Reply:
                return Reply([flow.notice("emergency_numbers")])
            action = numbers
        flow = Flow(session=session, client=client, telegram_id=user.id, texts=data.texts,
                    settings=data.settings, crypto=data.crypto, now=now)
        reply = await action(flow)
        await clients.save(session, client, before, now=now)
        client_id = client.id
        menu_id = client.menu_message_id
        auto_delete = client.auto_delete_minutes
        language = client.language
    await show(context, update, client_id=client_id, reply=reply, menu_id=menu_id,
               auto_delete=auto_delete, language=language)


def _leaving(update: Update) -> bool:
    """Quick exit and /forget work for everyone, blocked or not."""
    if is_exit(update):
        return True
    if update.callback_query is not None:
        return isinstance(cb.decode(update.callback_query.data), cb.Forget)
    message = update.message
    return message is not None and \
        (message.text or "").strip().split("@")[0].split(" ")[0] == "/forget"


async def show(context: BotContext, update: Update, *, client_id: int, reply: Reply,
               menu_id: int | None, auto_delete: int | None = None,
               language: str | None = None) -> None:
    """Carry out a reply: delete, relay, send or edit screens, then send staff their cards."""
    query = update.callback_query
    if reply.held is not None:
        # Her request is offered as soon as her answer is on its way (`spawn` begins it
        # after her answer's body has gone out), not after a round trip.
        context.bot_data.spawn(_route_held(context.application, reply.held))
    # Her screen changes at once; a tapped button's spinner stops beside it, not one round
    # trip later.
    await side_by_side(
        _carry_out(context, update, client_id=client_id, reply=reply, menu_id=menu_id,
                   auto_delete=auto_delete, language=language),
        *([answer_button(query, reply.toast)] if query is not None else []))


async def _carry_out(context: BotContext, update: Update, *, client_id: int, reply: Reply,
                     menu_id: int | None, auto_delete: int | None,
                     language: str | None) -> None:
    app = context.application
    data = context.bot_data
    chat = update.effective_chat
    assert chat is not None
    query = update.callback_query
    now = data.clock.now()
    _tell_staff_of_exit(app, reply)
    left = 0
    # A send to her chat may have landed without the bot learning its id: swept wider.
    uncertain = reply.quick_exit and chat.id in UNCERTAIN
    if reply.quick_exit:
        # Her chat is cleared before the one neutral word: nothing of it may stay behind.
        left = await delete_messages(app, client_id=client_id, chat_id=chat.id)
        if reply.forget:
            ended: list[tuple[int, int]] = []
            call_cards: list[tuple[int, int, Screen]] = []
            async with data.sessions() as session, session.begin():
                client = await session.get(Client, client_id)
                if client is not None:
                    report = await retention.forget_client(session, client=client, now=now,
                                                           undeleted=left > 0)
                    ended = report.ended
                    call_cards = await _call_cards_without_number(context, session, ended)
            # Her specialist learns the conversation is over (nothing about why).
            await deliver_to_staff(app, [
                Delivery(staff_id, Screen(data.texts.t(None, "client_left", number=case_id)),
                         case_id, card=False)
                for staff_id, case_id in ended])
            # A call card she was to be rung from loses her number with her record.
            for holder, card_message, card in call_cards:
                await refresh_cards(app, [(holder, card_message)], card)
    if reply.delete_incoming and update.effective_message is not None:
        # Her code word does not stay in her chat.
        await delete_now(app, client_id=client_id, chat_id=chat.id,
                         message_id=update.effective_message.message_id)
    if reply.hold_for_case is not None and update.effective_message is not None:
        async with data.sessions() as session, session.begin():
            await relay.hold_waiting(session, case_id=reply.hold_for_case, now=now,
                                     message_id=update.effective_message.message_id)
    if reply.relay_case_id is not None and update.effective_message is not None and \
            reply.edited and reply.relay_to is not None and await relay.edit_staff_copy(
                app, case_id=reply.relay_case_id, to=reply.relay_to,
                edited=update.effective_message):
        reply.relay_case_id = None  # her specialist's copy now reads as she corrected it
    if reply.relay_case_id is not None and update.effective_message is not None:
        if reply.edited and reply.relay_to is not None:
            await deliver_to_staff(app, [Delivery(
                reply.relay_to[0], Screen(data.texts.t(None, "client_edited")),
                reply.relay_case_id, card=False)])
        try:
            await relay.client_to_staff(app, case_id=reply.relay_case_id, to=reply.relay_to,
                                        client_chat_id=chat.id,
                                        message_id=update.effective_message.message_id)
        except relay.RelayFailed:
            # In her language, and recorded like every message to her (quick exit).
            reply.screens.append(Screen(data.texts.t(language, "relay_failed")))
    sent: list[int] = []
    new_menu: int | None = None
    for index, screen in enumerate(reply.screens):
        message_id = await _show_one(context, query, screen, edit=reply.edit and index == 0,
                                     menu_id=menu_id, chat_id=chat.id)
        if message_id is None:
            continue
        sent.append(message_id)
        if screen.is_menu:
            new_menu = message_id
    # The menu edited in place was recorded when it was first sent: a step of the triage
    # (an edit) needs no second write.
    new_ids = [mid for mid in sent if mid != menu_id]
    menu_changed = new_menu is not None and new_menu != menu_id
    if not reply.forget and (new_ids or menu_changed):
        # One short transaction of Core statements: the ids of what was shown, the menu.
        async with data.sessions() as session, session.begin():
            await record_messages(session, client=client_id, message_ids=new_ids, now=now,
                                  app=app, auto_delete_minutes=auto_delete, chat_id=chat.id)
            if menu_changed and new_menu is not None:
                await clients.set_menu(session, client_id, new_menu)
    if reply.quick_exit and sent:
        # Whatever landed in her chat unrecorded (an answer Telegram lost) goes too.
        await sweep_chat(app, client_id=client_id, chat_id=chat.id, below=min(sent),
                         failing=left > 0, uncertain=uncertain)
    if reply.route is not None and reply.route.deliveries:
        # Cards go out beside the next updates rather than holding this one up: each offer
        # is in the database before it is sent, and start-up re-sends any not delivered.
        data.spawn(deliver_to_staff(app, reply.route.deliveries))


async def _call_cards_without_number(
    context: BotContext, session: AsyncSession, ended: list[tuple[int, int]],
) -> list[tuple[int, int, Screen]]:
    """The takers' cards of call cases just ended by /forget, as they now read: no number."""
    data = context.bot_data
    found = []
    for staff_id, case_id in ended:
        case = await session.get(Case, case_id)
        message_id = await case_service.card_of(session, case_id=case_id, staff_id=staff_id)
        if case is None or case.contact != "call_later" or message_id is None:
            continue
        card = case_service.card(case, texts=data.texts, language=data.texts.lang(None),
                                 now=data.clock.now(), with_buttons=False)
        left = data.texts.t(None, "client_left", number=case_id)
        found.append((staff_id, message_id, Screen(card.text + "\n\n" + left)))
    return found


def _tell_staff_of_exit(app: SezimApp, reply: Reply) -> None:
    """Quick exit or her code word: whoever has her case is told at once (beside her own
    screen, not after it), and the cards of an untaken one show it."""
    data = app.bot_data
    changes: list[case_service.Paused | case_service.Resumed] = [*reply.paused]
    if reply.resumed is not None:
        changes.append(reply.resumed)
    for change in changes:
        data.spawn(deliver_to_staff(app, change.notices))
        if change.card is not None and change.cards:
            data.spawn(refresh_cards(app, change.cards, change.card))


async def _route_held(app: SezimApp, held: case_service.Held) -> None:
    """Offer a new case and send its cards. Should this fail, its due time routes it."""
    data = app.bot_data
    try:
        async with data.sessions() as session, session.begin():
            outcome = await case_service.route_held(
                session, held, settings=data.settings, texts=data.texts, crypto=data.crypto,
                now=data.clock.now())
    except Exception:
        log.exception("routing case %d failed; its due time will route it", held.case.id)
        scheduling.arm(app, case_service.CONTACT_DUE, held.case.id, held.due_at)
        return
    await deliver_to_staff(app, outcome.deliveries)


async def _show_one(context: BotContext, query: object, screen: Screen, *, edit: bool,
                    menu_id: int | None, chat_id: int) -> int | None:
    app = context.application
    message = getattr(query, "message", None)
    if edit and isinstance(message, Message) and message.message_id == menu_id:
        if await edit_screen(app, chat_id, message.message_id, screen):
            return message.message_id
    return await send_screen(app, chat_id, screen)


# ---------------------------------------------------------------------- callbacks


async def on_id(update: Update, context: BotContext) -> None:
    """/id: anyone's own Telegram id (a new staff member needs it to be added), and nothing
    else; in a client's chat it is recorded for quick exit like every message."""
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return
    if update.effective_message is not None:
        await keep_for_deletion(context.application, chat.id,
                                [update.effective_message.message_id])
    text = context.bot_data.texts.t(user.language_code, "your_id", number=user.id)
    await say_to_chat(context.application, chat.id, text)


async def on_start(update: Update, context: BotContext) -> None:
    """/start: greeting, language, quick exit and the danger question."""
    async def action(flow: Flow) -> Reply:
        return flow.start()
    await run_flow(update, context, action)


async def on_exit(update: Update, context: BotContext) -> None:
    """/exit: quick exit."""
    async def action(flow: Flow) -> Reply:
        return await flow.quick_exit()
    await run_flow(update, context, action)


async def on_help(update: Update, context: BotContext) -> None:
    """/help: the commands and the emergency numbers."""
    async def action(flow: Flow) -> Reply:
        return flow.help()
    await run_flow(update, context, action)


async def on_language(update: Update, context: BotContext) -> None:
    """/language: choose the language again."""
    async def action(flow: Flow) -> Reply:
        return flow.ask_language()
    await run_flow(update, context, action)


async def on_forget(update: Update, context: BotContext) -> None:
    """/forget: erase her record after she confirms."""
    async def action(flow: Flow) -> Reply:
        return flow.ask_forget()
    await run_flow(update, context, action)


async def on_autodelete(update: Update, context: BotContext) -> None:
    """/autodelete: let the conversation delete itself after a while."""
    async def action(flow: Flow) -> Reply:
        return flow.ask_autodelete()
    await run_flow(update, context, action)


async def on_unknown_command(update: Update, context: BotContext) -> None:
    """Any other command from a client: say what exists, keep her place."""
    async def action(flow: Flow) -> Reply:
        return Reply([Screen(flow.t("unknown_command")), flow.render()])
    await run_flow(update, context, action)


async def on_text(update: Update, context: BotContext) -> None:
    """Free text: danger check, the step's input, or the relay to her specialist."""
    message = update.effective_message
    assert message is not None and message.text is not None
    text = message.text

    async def action(flow: Flow) -> Reply:
        return await flow.on_text(text)
    await run_flow(update, context, action)


async def on_media(update: Update, context: BotContext) -> None:
    """Photos, voice, stickers, locations, documents: relayed in a conversation, else explained."""
    message = update.effective_message
    assert message is not None
    caption = message.caption or ""
    contact = message.contact
    sender = update.effective_user
    # Only her own card (Telegram's "share my number") is her number; a card from her
    # address book is someone else's.
    own_card = contact is not None and sender is not None and contact.user_id == sender.id

    async def action(flow: Flow) -> Reply:
        if contact is not None and flow.client.step == Step.PHONE:
            if not own_card:
                return Reply([flow.notice("phone_not_yours"), flow.render()])
            return await flow.on_contact_shared(contact.phone_number)
        reply = await flow.on_text(caption) if caption else None
        if reply is not None and (reply.relay_case_id or reply.delete_incoming or
                                  reply.kept_back or reply.hold_for_case or
                                  any(s.urgent for s in reply.screens)):
            # relayed, urgent, kept for her specialist, or her code word (she is back, or
            # it is kept back)
            return reply
        case = await case_service.open_case_brief(flow.session, flow.client.id)
        if case is not None and case.status == CaseStatus.ACTIVE:
            return flow.relay(case)
        if case is not None and case.status == CaseStatus.WAITING and not caption:
            # A photo, a voice message, a document while she waits: for her specialist.
            return Reply([flow.notice("waiting_text")], hold_for_case=case.id)
        return Reply([Screen(flow.t("media_not_read")), flow.render()])
    await run_flow(update, context, action)


async def on_edited(update: Update, context: BotContext) -> None:
    """A message she edited: in a conversation its new version goes to her specialist, told
    it is an edit (her code word is kept back as ever); elsewhere she is asked to send it
    anew."""
    chat, message = update.effective_chat, update.effective_message
    if chat is None or message is None:
        return
    text = message.text or message.caption or ""

    async def action(flow: Flow) -> Reply:
        brief = await case_service.open_case_brief(flow.session, flow.client.id)
        if brief is not None and brief.status == CaseStatus.WAITING and text and \
                await flow.is_her_code_word_text(text):
            # Her code word edited into a message kept for the taker: it is not copied.
            await relay.drop_held(flow.session, case_id=brief.id, message_id=message.message_id)
            return Reply(kept_back=True)
        if brief is not None and brief.status == CaseStatus.ACTIVE:
            reply = await flow.on_text(text) if text else flow.relay(brief)
            if reply.relay_case_id is not None:
                reply.edited = True
            return reply
        return Reply([Screen(flow.t("edited"))])
    await run_flow(update, context, action)


async def on_button(update: Update, context: BotContext) -> None:
    """A tap on a client's button: checked by the flow (`flow.ACTIONS`) before anything."""
    query = update.callback_query
    assert query is not None
    data = cb.decode(query.data)
    message = query.message

    async def action(flow: Flow) -> Reply:
        on_menu = message is not None and message.message_id == flow.client.menu_message_id
        return await flow.on_button(data, on_menu=on_menu)
    await run_flow(update, context, action)


async def on_foreign_button(update: Update, context: BotContext) -> None:
    """Callback data that is not a client's (a staff card forwarded, or forged)."""
    query = update.callback_query
    assert query is not None

    async def action(flow: Flow) -> Reply:
        return flow.expired()
    await run_flow(update, context, action)


def register(app: SezimApp) -> None:
    private = filters.ChatType.PRIVATE
    group = 0  # after staff and admin handlers of the same group, which match staff only
    # /id answers staff and clients alike (no staff handler takes it).
    app.add_handler(CommandHandler("id", on_id, filters=private), group=group)
    app.add_handler(CommandHandler("start", on_start, filters=private), group=group)
    app.add_handler(CommandHandler("exit", on_exit, filters=private), group=group)
    app.add_handler(CommandHandler("help", on_help, filters=private), group=group)
    app.add_handler(CommandHandler("language", on_language, filters=private), group=group)
    app.add_handler(CommandHandler("forget", on_forget, filters=private), group=group)
    app.add_handler(CommandHandler("autodelete", on_autodelete, filters=private), group=group)
    app.add_handler(MessageHandler(private & filters.COMMAND, on_unknown_command), group=group)
    app.add_handler(
        MessageHandler(private & filters.UpdateType.EDITED, on_edited), group=group
    )
    app.add_handler(
        MessageHandler(private & filters.UpdateType.MESSAGE & filters.TEXT, on_text),
        group=group,
    )
    app.add_handler(
        MessageHandler(private & filters.UpdateType.MESSAGE & ~filters.TEXT, on_media),
        group=group,
    )
    app.add_handler(CallbackQueryHandler(on_button, pattern=cb.CLIENT_PATTERN), group=group)
    app.add_handler(CallbackQueryHandler(on_foreign_button), group=group)


__all__ = ["register", "BadRequest"]
