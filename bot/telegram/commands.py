"""The command menus: the client's in each language, each staff member's by her roles."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from telegram import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat
from telegram.error import TelegramError

from bot.core.config import LANGUAGES
from bot.telegram.context import SezimApp

log = logging.getLogger(__name__)

# Quick exit first: the first thing she sees when she opens the menu.
CLIENT_COMMANDS = ("exit", "start", "help", "language", "forget")


async def set_commands(app: SezimApp) -> None:
    """The client's commands in each language; Telegram shows them in the menu."""
    texts = app.bot_data.texts
    for lang in LANGUAGES:
        commands = [BotCommand(c, texts.t(lang, f"cmd_{c}")) for c in CLIENT_COMMANDS]
        try:
            await app.bot.set_my_commands(
                commands, scope=BotCommandScopeAllPrivateChats(),
                language_code=None if lang == "en" else lang,
            )
        except TelegramError as exc:  # commands are a convenience; never block start-up
            log.warning("could not set commands for %s: %s", lang, exc)


# Each role's commands, in the order her menu shows them.
SPECIALIST_COMMANDS = ("duty", "queue", "cases", "reply", "handover", "close", "log",
                       "codeword", "roster")
ROLE_COMMANDS = {
    "psychologist": SPECIALIST_COMMANDS,
    "lawyer": SPECIALIST_COMMANDS,
    "child_psychologist": SPECIALIST_COMMANDS,
    "coordinator": (*SPECIALIST_COMMANDS, "block", "unblock", "stats", "export"),
    "admin": ("staff", "stats", "export", "queue"),
}


def staff_commands(roles: Iterable[str]) -> list[str]:
    """The commands of these roles (each once), then /help and /id."""
    found: list[str] = []
    for role in sorted(roles, key=list(ROLE_COMMANDS).index):
        found.extend(c for c in ROLE_COMMANDS.get(role, ()) if c not in found)
    return [*found, "help", "id"]


async def set_staff_commands(app: SezimApp, chat_id: int, roles: Iterable[str]) -> None:
    """Her own command menu in her chat (staff read the center's default language); none
    of her roles left: back to the client's menu."""
    texts = app.bot_data.texts
    scope = BotCommandScopeChat(chat_id)
    names = staff_commands(roles) if roles else []
    try:
        if names:
            await app.bot.set_my_commands(
                [BotCommand(c, texts.t(None, f"cmd_{c}")) for c in names], scope=scope)
        else:
            await app.bot.delete_my_commands(scope=scope)
    except TelegramError as exc:  # a convenience; never in the way of the work
        log.warning("could not set a staff member's commands: %s", type(exc).__name__)
