"""Small helpers for end-to-end tests: the bot's texts and the database's state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.harness import Harness
from models import Case, ChatMessage, Client


def t(h: Harness, language: str | None, key: str, **values: Any) -> str:
    """A text as the bot shows it (HTML tags removed, as the phone shows them)."""
    from bot.emulator.server import parse_html

    assert h.app is not None
    return parse_html(h.app.bot_data.texts.t(language, key, **values))


async def cases(h: Harness) -> list[Case]:
    assert h.app is not None
    async with h.app.bot_data.sessions() as session:
        return list((await session.scalars(select(Case).order_by(Case.id))).all())


async def clients(h: Harness) -> list[Client]:
    assert h.app is not None
    async with h.app.bot_data.sessions() as session:
        return list((await session.scalars(select(Client))).all())


async def message_ids(h: Harness) -> list[int]:
    assert h.app is not None
    async with h.app.bot_data.sessions() as session:
        return list((await session.scalars(select(ChatMessage.message_id))).all())
