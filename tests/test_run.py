"""`sezim-bot run` as a real process, long polling the emulator over HTTP."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.emulator import BotAPIEmulator, Phone

ROOT = Path(__file__).resolve().parent.parent


class BotProcess:
    def __init__(self, emulator: BotAPIEmulator, workdir: Path) -> None:
        self.emulator = emulator
        self.workdir = workdir
        self.secret = secrets.token_urlsafe(48)
        self.proc: asyncio.subprocess.Process | None = None
        config = workdir / "config.toml"
        config.write_text(
            f'[telegram]\nbase_url = "{emulator.base_url}"\n'
            f'base_file_url = "{emulator.base_file_url}"\npoll_timeout = 1\n'
            f'[database]\nurl = "sqlite+aiosqlite:///{workdir / "bot.db"}"\n',
            encoding="utf-8",
        )
        self.log = workdir / "bot.log"

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEZIM_")}
        env.update(SEZIM_BOT_TOKEN=self.emulator.token, SEZIM_SECRET_KEY=self.secret)
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=self.workdir, env=env,
                stdout=log, stderr=log)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await asyncio.wait_for(self.proc.wait(), 30)


@pytest.fixture
async def emulator() -> AsyncIterator[BotAPIEmulator]:
    emu = BotAPIEmulator()
    await emu.start()
    yield emu
    await emu.stop()


async def test_run_answers_start_over_http_and_stops_cleanly(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    bot = BotProcess(emulator, tmp_path)
    await bot.start()
    try:
        client = Phone.new(emulator, "Aida", language_code="en")
        await client.send("/start")
        (reply,) = await client.wait_reply(timeout=60)
        assert "Are you in danger right now?" in reply.plain()
        assert "Quick exit" in " ".join(client.buttons(reply))
        # The commands menu was registered in every language.
        languages = {c.get("language_code") for c in emulator.commands}
        assert {None, "ru", "ky"} <= languages
    finally:
        code = await bot.stop()
    assert code == 0, bot.log.read_text()
    log = bot.log.read_text()
    assert "Traceback" not in log
    # The token must never reach the log (httpx would print it in request lines).
    assert emulator.token.split(":")[1] not in log


async def test_a_rejected_token_is_one_line_with_no_secret_and_exit_2(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    """The emulator answers 401 to a token it does not know, as Telegram does: PTB's
    InvalidToken carries the whole token, and journald would keep it at every restart."""
    bot = BotProcess(emulator, tmp_path)
    rejected = "123456789:AAE" + secrets.token_urlsafe(30).replace("-", "x")[:32]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEZIM_")}
    env.update(SEZIM_BOT_TOKEN=rejected, SEZIM_SECRET_KEY=bot.secret)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    output = (out + err).decode()
    assert proc.returncode == 2, output
    for secret in (rejected, rejected.split(":")[1], bot.secret):
        assert secret not in output
    assert "Traceback" not in output
    assert len([line for line in err.decode().splitlines() if "rejected" in line]) == 1


def test_the_redactor_hides_secrets_in_messages_arguments_and_tracebacks() -> None:
    import io
    import logging

    from bot.redact import Redactor

    token, key, password = "123456:AAEsecretpart-xyz", "k" * 48, "pg-pass word!"
    redactor = Redactor()
    redactor.add(token, f"{key},{'o' * 48}")
    redactor.add_database_url(
        "postgresql+asyncpg://sezim:pg-pass%20word%21@127.0.0.1/sezim")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redactor)
    log = logging.getLogger("test.redact")
    log.addHandler(handler)
    try:
        log.error("GET https://api.telegram.org/bot%s/getMe", token)
        try:
            raise RuntimeError(f"connect to {password} with {key} at /bot{token}/x")
        except RuntimeError:
            log.exception("failed: %s", "o" * 48)
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    for secret in (token, "AAEsecretpart-xyz", key, "o" * 48, password):
        assert secret not in text
    assert text.count("<redacted>") >= 5 and "Traceback" in text
