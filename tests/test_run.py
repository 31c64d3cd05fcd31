"""`sezim-bot run` as a real process, long polling the emulator over HTTP."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.dev.emulator import BotAPIEmulator, Phone

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
            f'[database]\nurl = "sqlite+aiosqlite:///{workdir / "bot.core.db"}"\n',
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

    from bot.core.redact import Redactor

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


async def _cli(workdir: Path, env: dict[str, str], *argv: str) -> tuple[int, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SEZIM_")}
    full.update(env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *argv, cwd=workdir, env=full,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return int(proc.returncode or 0), out.decode()


async def _check(workdir: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    code, out = await _cli(workdir, env, "check")
    return code, out.splitlines()


async def test_check_before_going_live_names_each_problem_on_one_line(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    bot = BotProcess(emulator, tmp_path)
    env = {"SEZIM_BOT_TOKEN": emulator.token, "SEZIM_SECRET_KEY": bot.secret}
    # A fresh machine: nothing migrated yet, and no staff.
    code, lines = await _check(tmp_path, env)
    assert code == 1
    assert any(line.startswith("FAIL  database") and "db upgrade" in line for line in lines)
    assert any(line.startswith("ok    token") for line in lines)
    # Migrated, a lawyer on the roster on weekdays only: the weekend shows as a gap.
    for argv in (["db", "upgrade"], ["staff", "add", "--telegram-id", "42", "--name", "Aigul",
                                     "--role", "lawyer"]):
        assert (await _cli(tmp_path, env, *argv))[0] == 0
    with (tmp_path / "config.toml").open("a", encoding="utf-8") as fh:
        fh.write('[[roster]]\nmember = "Aigul"\nrole = "lawyer"\n'
                 'days = ["mon", "tue", "wed", "thu", "fri"]\nstart = 09:00:00\n'
                 'end = 18:00:00\n')
    code, lines = await _check(tmp_path, env)
    assert any(line.startswith("ok    key") for line in lines)
    assert any(line.startswith("note  duty") and "lawyer: nobody on duty" in line
               for line in lines)
    assert any(line.startswith("note  duty") and "psychologist: no member" in line
               for line in lines)
    assert code == 0 and lines[-1] == "all checks passed"
    # A mistyped key and a token Telegram refuses: each said on its own line.
    code, lines = await _check(tmp_path, {"SEZIM_BOT_TOKEN": "123456:" + "z" * 35,
                                          "SEZIM_SECRET_KEY": secrets.token_urlsafe(48)})
    assert any(line.startswith("FAIL  key") and "not the key" in line for line in lines)
    assert any(line.startswith("FAIL  token") and "rejected" in line for line in lines)
    assert all("z" * 35 not in line for line in lines)


async def test_a_backup_taken_while_the_bot_works_restores_staff_and_cases(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    import shutil
    import sqlite3
    import stat

    live = tmp_path / "live"
    live.mkdir()
    bot = BotProcess(emulator, live)
    env = {"SEZIM_SECRET_KEY": bot.secret}
    assert (await _cli(live, env, "staff", "add", "--telegram-id", "42", "--name", "Aigul",
                       "--role", "psychologist"))[0] == 0
    await bot.start()
    try:
        client = Phone.new(emulator, "Aida", language_code="en")
        await client.send("/start")
        await client.wait_reply(timeout=60)
        await client.press("🆘 Yes, I'm in danger now")
        await client.wait_reply(timeout=30)
        await client.press("Yes, write to me here")  # a case, offered to the psychologist
        await client.wait_reply(timeout=30)
        # Others keep writing while the backup is taken.
        others = [Phone.new(emulator, f"P{i}", language_code="en") for i in range(10)]
        sends = asyncio.gather(*(p.send("/start") for p in others))
        code, out = await _cli(live, env, "backup", str(tmp_path / "copy.db"))
        await sends
        assert code == 0, out
    finally:
        assert await bot.stop() == 0
    copy = tmp_path / "copy.db"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    # Restored into a fresh directory: the same key reads it, staff and cases are there.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    restored = BotProcess(emulator, fresh)
    shutil.copy(copy, fresh / "bot.core.db")
    with sqlite3.connect(fresh / "bot.core.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM cases").fetchone()[0] == 1
    code, out = await _cli(fresh, env, "staff", "list")
    assert code == 0 and "\nAigul\tpsychologist\t42\t" in "\n" + out
    restored.secret = bot.secret
    await restored.start()
    try:
        late = Phone.new(emulator, "Late", language_code="en")
        await late.send("/start")
        (reply,) = await late.wait_reply(timeout=60)
        assert "Are you in danger right now?" in reply.plain()
    finally:
        assert await restored.stop() == 0


async def test_under_systemd_it_says_ready_pings_the_watchdog_and_says_stopping(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    import socket

    path = Path("/tmp") / f"sezim-notify-{os.getpid()}-{secrets.token_hex(4)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    received: list[str] = []

    async def collect(until: str, timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while until not in received and loop.time() < deadline:
            try:
                received.append(sock.recv(256).decode())
            except BlockingIOError:
                await asyncio.sleep(0.05)

    bot = BotProcess(emulator, tmp_path)
    os.environ["NOTIFY_SOCKET"] = str(path)
    os.environ["WATCHDOG_USEC"] = "1000000"  # a ping at least every half second
    try:
        await bot.start()
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    try:
        await collect("READY=1")
        assert "READY=1" in received
        received.clear()
        await collect("WATCHDOG=1", timeout=10)
        assert "WATCHDOG=1" in received
    finally:
        assert await bot.stop() == 0
        await collect("STOPPING=1", timeout=5)
        sock.close()
        path.unlink()
    assert "STOPPING=1" in received


async def test_a_bot_api_away_at_start_is_waited_for(tmp_path: Path) -> None:
    """The server reboots and the bot comes up before the network: it waits, one line per
    attempt and no traceback (whose URL would carry the token), and then answers."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    emulator = BotAPIEmulator()
    (tmp_path / "config.toml").write_text(
        f'[telegram]\nbase_url = "http://127.0.0.1:{port}/bot"\n'
        f'base_file_url = "http://127.0.0.1:{port}/file/bot"\npoll_timeout = 1\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "bot.core.db"}"\n', encoding="utf-8")
    bot = BotProcess.__new__(BotProcess)
    bot.emulator, bot.workdir, bot.proc = emulator, tmp_path, None
    bot.secret, bot.log = secrets.token_urlsafe(48), tmp_path / "bot.log"
    await bot.start()
    try:
        async def logged(text: str) -> None:
            for _ in range(100):
                if text in bot.log.read_text():
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(bot.log.read_text())

        await logged("the Bot API cannot be reached")
        await emulator.start(port=port)
        await logged("the Bot API is back")
        client = Phone.new(emulator, "Aida", language_code="en")
        await client.send("/start")
        (reply,) = await client.wait_reply(timeout=60)
        assert "Are you in danger right now?" in reply.plain()
    finally:
        code = await bot.stop()
        await emulator.stop()
    log = bot.log.read_text()
    assert code == 0, log
    assert "Traceback" not in log and emulator.token.split(":")[1] not in log


async def test_a_connection_lost_inside_a_handler_logs_no_token(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    """Telegram's connection drops under every try of an answer: the failure is logged (the
    error handler, with its traceback), and the token is in none of it."""
    from bot.dev.emulator.server import Fault

    bot = BotProcess(emulator, tmp_path)
    await bot.start()
    try:
        first = Phone.new(emulator, "Aida", language_code="en")
        await first.send("/start")
        await first.wait_reply(timeout=60)
        emulator.faults.append(Fault("drop", method="sendMessage", times=5))
        await first.send("/help")
        for _ in range(300):
            if "failed" in bot.log.read_text():
                break
            await asyncio.sleep(0.1)
    finally:
        assert await bot.stop() == 0
    log = bot.log.read_text()
    assert "update 2 (message) failed: NetworkError" in log and "Traceback" in log
    assert emulator.token not in log and emulator.token.split(":")[1] not in log


def test_the_bot_has_its_russian_dictionary_before_the_first_message(tmp_path: Path) -> None:
    """Reading Russian words needs a dictionary that takes a while to load: loaded on the
    first message in Russian, it held up every chat, someone in danger too. The bot loads it
    as it starts (a process of its own: the suite's may have loaded it already)."""
    script = (
        "import asyncio, sys\n"
        "from bot.dev.harness import Harness\n"
        "async def main():\n"
        "    h = Harness(sys.argv[1])\n"
        "    await h.start()\n"
        "    try:\n"
        "        print('loaded' if 'pymorphy3' in sys.modules else 'not loaded')\n"
        "    finally:\n"
        "        await h.stop()\n"
        "asyncio.run(main())\n")
    url = f"sqlite+aiosqlite:///{tmp_path / 'sezim.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEZIM_")}
    done = subprocess.run([sys.executable, "-c", script, url], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "loaded"
