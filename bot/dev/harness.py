"""The real bot against the loopback emulator in one process: for the demo, tests and bench.

The bot runs exactly as `sezim-bot run` does (`bot.telegram.polling.serve`: migrations, durable long
polling over real HTTP); people are simulated by `Phone`s on the emulator's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.dev.emulator import BotAPIEmulator, Phone
from bot.domain import staff as staff_service
from bot.telegram.context import SezimApp
from bot.telegram.polling import serve


def emulator_settings(
    emulator: BotAPIEmulator, database_url: str, **sections: dict[str, Any]
) -> Settings:
    """Settings pointing the bot at `emulator`, with a fresh random secret."""
    data: dict[str, Any] = {
        "telegram": {"base_url": emulator.base_url, "base_file_url": emulator.base_file_url,
                     "token": emulator.token, "poll_timeout": 1},
        "database": {"url": database_url},
        "security": {"secret_key": secrets.token_urlsafe(48)},
        # Simulated people act faster than people: the per-chat sending limit would only
        # slow the tests down (bench/load.py --surge and tests/test_transport.py keep it).
        "limits": {"per_chat_per_second": 0},
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            data.setdefault(name, {}).update(values)
        else:
            data[name] = values
    return Settings.model_validate(data)


class Harness:
    """An emulator, the bot serving it, and the people who talk to it."""

    def __init__(self, database_url: str, *, clock: Clock | None = None,
                 **sections: Any) -> None:
        self.database_url = database_url
        self.clock = clock or Clock()
        self.sections = sections
        self.emulator = BotAPIEmulator()
        self.settings: Settings | None = None
        self.app: SezimApp | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> SezimApp:
        if self.emulator.port is None:
            await self.emulator.start()
        if self.settings is None:
            self.settings = emulator_settings(self.emulator, self.database_url, **self.sections)
        return await self.start_bot()

    async def start_bot(self) -> SezimApp:
        """Start (or restart) the bot process part; the emulator keeps its state."""
        assert self.settings is not None
        ready: asyncio.Future[SezimApp] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()

        async def on_ready(app: SezimApp) -> None:
            ready.set_result(app)

        self._task = asyncio.create_task(serve(
            self.settings, token=self.emulator.token, stop=self._stop, clock=self.clock,
            on_ready=on_ready))
        waiters: set[asyncio.Future[Any]] = {self._task, ready}
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            self._task.result()  # raises what made start-up fail
        self.app = ready.result()
        return self.app

    @property
    def running(self) -> bool:
        """Whether the bot is still serving (it has not stopped or crashed)."""
        return self._task is not None and not self._task.done()

    async def stop_bot(self) -> None:
        """Stop the bot cleanly (as SIGTERM would)."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def kill_bot(self) -> None:
        """Stop the bot abruptly, as SIGKILL would: whatever was in flight is cut off."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.app is not None:
            for task in list(self.app.bot_data.background):
                task.cancel()  # a killed process does not finish anything
            with contextlib.suppress(Exception):
                if self.app.job_queue is not None and self.app.job_queue.scheduler.running:
                    self.app.job_queue.scheduler.shutdown(wait=False)
            engine = getattr(self.app.bot_data, "engine", None)
            if engine is not None:
                with contextlib.suppress(Exception):
                    await engine.dispose()
            with contextlib.suppress(Exception):
                await self.app.bot.shutdown()

    async def stop(self) -> None:
        await self.stop_bot()
        await self.emulator.stop()

    def phone(self, first_name: str, *, language_code: str | None = "ru") -> Phone:
        return Phone.new(self.emulator, first_name, language_code=language_code)

    async def add_staff(self, first_name: str, roles: list[str], *,
                        on_duty: bool | None = True) -> Phone:
        """A staff member: her Telegram account, her staff record, her duty status."""
        assert self.app is not None
        phone = self.phone(first_name)
        data = self.app.bot_data
        async with data.sessions() as session, session.begin():
            change = await staff_service.upsert_staff(
                session, crypto=data.crypto, telegram_id=phone.id, name=first_name,
                roles=roles, now=self.clock.now())
            change.member.duty_override = on_duty
        return phone

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until the bot has handled (and so confirmed) every update sent so far.

        The bot asks for the next updates only after handling the previous batch, so an
        empty queue on the emulator means everything was handled and answered.
        """
        emu = self.emulator
        await emu.wait_for(lambda: not emu.updates, timeout)
        # Work the bot goes on with after an update (case cards), then anything it caused.
        while self.app is not None and self.app.bot_data.background:
            await asyncio.wait(set(self.app.bot_data.background), timeout=timeout)
            await emu.wait_for(lambda: not emu.updates, timeout)
