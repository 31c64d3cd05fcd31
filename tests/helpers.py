"""Small helpers for end-to-end tests: the bot's texts and the database's state."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from typing import Any

from sqlalchemy import select

from bot.dev.emulator import Phone
from bot.dev.harness import Harness
from models import Case, ChatMessage, Client


def t(h: Harness, language: str | None, key: str, **values: Any) -> str:
    """A text as the bot shows it (HTML tags removed, as the phone shows them)."""
    from bot.dev.emulator.server import parse_html

    assert h.app is not None
    return parse_html(h.app.bot_data.texts.t(language, key, **values))


async def client_asks(h: Harness, *, category: str = "legal", lang: str = "en",
                      name: str = "Client", send: bool = True,
                      contact: str = "chat_now") -> Phone:
    """A client's quickest request: help, skip everything, the given kind of help, the
    given contact (and, unless not `send`, send it)."""
    phone = h.phone(name, language_code=lang)
    await phone.send("/start")
    await h.settle()
    for label in ("btn_danger_no", "btn_safe_private", "btn_skip", f"cat_{category}",
                  "btn_skip", "btn_skip", f"contact_{contact}",
                  *(["btn_send"] if send else [])):
        await phone.press(t(h, lang, label))
        await h.settle()
    return phone


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


async def longest_stall(beats: int) -> float:
    """A heartbeat every 10 ms, `beats` times: the longest gap between two, in seconds.
    Had anything slept on the event loop's thread (SQLite's busy handler), one beat would
    have waited for it."""
    loop = asyncio.get_running_loop()
    longest, last = 0.0, loop.time()
    for _ in range(beats):
        await asyncio.sleep(0.01)
        longest, last = max(longest, loop.time() - last), loop.time()
    return longest


class LockHolder:
    """Another process's connection holding SQLite's write lock until `release()`: a
    `sezim-bot` command, a backup. `begin` is how it takes the lock."""

    def __init__(self, path: str, begin: str = "BEGIN IMMEDIATE", *,
                 then: str | None = None) -> None:
        self._locked, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._hold, args=(path, begin, then))

    def _hold(self, path: str, begin: str, then: str | None) -> None:
        conn = sqlite3.connect(path, timeout=30)
        conn.execute(begin)
        if then:
            conn.execute(then)
        self._locked.set()
        self._release.wait(10)
        conn.commit()
        conn.close()

    def start(self) -> None:
        """Take the lock; return once it is held."""
        self._thread.start()
        if not self._locked.wait(10):
            raise TimeoutError("the lock was not taken")

    def release(self) -> None:
        self._release.set()

    def join(self) -> None:
        self.release()
        self._thread.join()
