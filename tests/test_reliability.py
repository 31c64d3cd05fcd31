"""Faults survived: Telegram's 429s, 5xx and dropped connections, duplicate updates, a
locked database, a webhook without its secret, and the process killed mid-escalation."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from bot.dev.emulator import BotAPIEmulator, Fault, Phone
from bot.dev.harness import Harness
from bot.telegram.polling import open_connections
from tests.helpers import LockHolder, cases, clients, longest_stall
from tests.test_config import run_cli
from tests.test_run import BotProcess

pytestmark = pytest.mark.slow


async def hanging(emulator: BotAPIEmulator) -> None:
    """Until the bot's call that the injected fault hangs has been made."""
    for _ in range(1500):
        if not emulator.faults:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the bot never made the call")


def homes(phone: Phone) -> list[str]:
    return [m.plain() for m in phone.all_bot_messages() if "Are you in danger" in m.plain()]


@pytest.mark.parametrize("fault", [
    Fault("429", method="sendMessage", retry_after=1),
    Fault("500", method="sendMessage"),
    Fault("502", method="sendMessage", times=2),
    Fault("drop", method="sendMessage"),
])
async def test_telegram_faults_are_survived_and_delivered_once(
    harness: Harness, fault: Fault
) -> None:
    harness.emulator.faults.append(fault)
    phone = harness.phone("Aida", language_code="en")
    await phone.send("/start")
    await harness.settle(timeout=30)
    assert not harness.emulator.faults, "the fault was injected"
    assert len(homes(phone)) == 1


async def test_connections_that_cannot_be_opened_ahead_do_not_stop_the_bot(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Before its first update the bot opens its connections; the Bot API refusing that
    (here every getMe fails) is logged and the bot answers all the same."""
    assert harness.app is not None
    harness.emulator.faults.append(Fault("500", method="getMe", times=100))
    await open_connections(harness.app, 4)
    assert "4 of 8 connections could not be opened" in caplog.text
    harness.emulator.faults.clear()
    client = harness.phone("Aida", language_code="en")
    await client.send("/start")
    assert await client.wait_reply(timeout=30)


async def test_the_same_update_delivered_twice_is_handled_once(harness: Harness) -> None:
    phone = harness.phone("Aida", language_code="en")
    await phone.send("/start")
    await harness.settle()
    await phone.press("Yes, I'm in danger now")
    await harness.settle()
    await phone.press("Yes, write to me here")
    await harness.settle()
    for update_id in list(harness.emulator.history):
        await harness.emulator.redeliver(update_id)
    await harness.settle()
    assert len(homes(phone)) == 1
    assert len(await cases(harness)) == 1


async def test_one_slow_answer_does_not_hold_back_the_next_woman(harness: Harness) -> None:
    """Telegram hangs on the answer to one woman for seconds: another who writes meanwhile
    is answered at once, and the first is answered too once Telegram comes back."""
    first = harness.phone("Aida", language_code="en")
    second = harness.phone("Bermet", language_code="en")
    harness.emulator.faults.append(Fault("delay", method="sendMessage", seconds=3))
    await first.send("/start")
    await hanging(harness.emulator)
    await second.send("/start")
    await harness.emulator.wait_for(lambda: bool(homes(second)), timeout=2)
    assert homes(first) == []
    await harness.emulator.wait_for(lambda: bool(homes(first)), timeout=10)
    assert len(homes(first)) == 1 and len(homes(second)) == 1


async def test_a_locked_database_delays_but_loses_nothing(harness: Harness, db_url: str) -> None:
    holder = LockHolder(db_url.split("///", 1)[1], "BEGIN EXCLUSIVE")
    await asyncio.to_thread(holder.start)
    phone = harness.phone("Aida", language_code="en")
    await phone.send("/start")
    await asyncio.sleep(3)
    assert homes(phone) == []  # waiting for the lock, not failing
    await asyncio.to_thread(holder.join)
    await harness.settle(timeout=30)
    assert len(homes(phone)) == 1
    assert len(await clients(harness)) == 1


async def test_in_danger_she_gets_the_next_turn_at_a_busy_database(
    harness: Harness, db_url: str,
) -> None:
    """Twenty people wait for the database (held by another process: a backup, a command)
    when a woman presses "I'm in danger": once it is free, her turn comes next, so her
    answer does not wait for theirs. Then everyone is answered."""
    endangered = harness.phone("Aida", language_code="en")
    await endangered.send("/start")
    await harness.settle()
    holder = LockHolder(db_url.split("///", 1)[1])
    await asyncio.to_thread(holder.start)
    crowd = [harness.phone(f"P{i}", language_code="en") for i in range(20)]
    for phone in crowd:
        await phone.send("/start")
    await asyncio.sleep(0.5)  # all twenty wait for the database
    await endangered.press("Yes, I'm in danger now")
    await asyncio.sleep(0.5)  # so does she, behind them
    await asyncio.to_thread(holder.join)
    await harness.emulator.wait_for(
        lambda: any("102" in m.plain() for m in endangered.bot_messages()), timeout=30)
    # Their answers already under way when her turn ended go out beside hers.
    before_her = sum(1 for phone in crowd if homes(phone))
    assert before_her <= len(crowd) // 2, f"she waited behind {before_her} ordinary answers"
    await harness.emulator.wait_for(lambda: all(homes(p) for p in crowd), timeout=30)


async def test_waiting_for_a_locked_database_does_not_stop_the_bot(db_url: str) -> None:
    """SQLite runs on the event loop's thread; a lock held by another process (a command,
    a backup) is waited for in asyncio, so every other chat, timer and poll goes on."""
    from sqlalchemy import text

    from bot.core.db import create_engine
    from bot.core.migrate import upgrade

    engine = create_engine(db_url)
    await upgrade(engine)
    holder = LockHolder(db_url.split("///", 1)[1])
    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO processed_updates (update_id, at) "
                                    "VALUES (1, '2026-01-01 00:00:00')"))

    await asyncio.to_thread(holder.start)
    try:
        writing = asyncio.create_task(write())
        assert await longest_stall(50) < 0.5
        assert not writing.done()  # still waiting for the lock, not failed
        async with engine.connect() as conn:  # readers are not blocked by a writer
            assert await conn.scalar(text("SELECT count(*) FROM processed_updates")) == 0
        holder.release()
        await asyncio.wait_for(writing, 10)
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM processed_updates")) == 1
    finally:
        await asyncio.to_thread(holder.join)
        await engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_webhook_mode_refuses_requests_without_the_secret(db_url: str) -> None:
    port = _free_port()
    h = Harness(db_url, telegram={"webhook_url": f"http://127.0.0.1:{port}/hook",
                                  "webhook_port": port})
    await h.start()
    try:
        phone = h.phone("Aida", language_code="en")
        await phone.send("/start")
        await h.settle()
        assert len(homes(phone)) == 1
        assert all(status == 200 for _, status in h.emulator.webhook_deliveries)
        forged = {"update_id": 999_999, "message": {
            "message_id": 99, "date": 0, "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            "chat": {"id": phone.id, "type": "private", "first_name": "x"},
            "from": phone.user.as_dict()}}
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
                async with http.post(f"http://127.0.0.1:{port}/hook", json=forged,
                                     headers=headers) as resp:
                    assert resp.status == 403
        await asyncio.sleep(0.3)
        assert len(homes(phone)) == 1  # nothing was processed
        # An update the library cannot read is confirmed (200), not refused for ever.
        await h.emulator.raw_update({"callback_query": {
            "id": "77", "from": phone.user.as_dict(), "data": "c:danger:no"}})
        await phone.send("/start")
        await h.settle()
        assert len(homes(phone)) == 2
        assert all(status == 200 for _, status in h.emulator.webhook_deliveries)
    finally:
        await h.stop()


async def test_killed_mid_update_and_mid_escalation_loses_nothing_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    emulator = BotAPIEmulator()
    await emulator.start()
    bot = BotProcess(emulator, tmp_path)
    with (tmp_path / "config.toml").open("a", encoding="utf-8") as fh:
        fh.write("[escalation]\nemergency_minutes = 0.1\n")  # six seconds
        for name in ("Aigul", "Nazira"):
            fh.write(f'[[roster]]\nmember = "{name}"\nrole = "psychologist"\n'
                     'days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
                     "start = 00:00:00\nend = 00:00:00\n")
    first = Phone.new(emulator, "Aigul")
    second = Phone.new(emulator, "Nazira")
    env = {"SEZIM_SECRET_KEY": bot.secret,
           "SEZIM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.core.db'}"}
    for phone in (first, second):
        added = await asyncio.to_thread(
            run_cli, "staff", "add", "--telegram-id", str(phone.id), "--name",
            phone.user.first_name, "--role", "psychologist", env=env, cwd=tmp_path)
        assert added.returncode == 0, added.stderr
    db = tmp_path / "bot.core.db"

    def case_count() -> int:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT count(*) FROM cases").fetchone()[0])

    def card_count(phone: Phone) -> int:
        return sum(1 for m in phone.all_bot_messages() if "✅" in " ".join(phone.buttons(m)))

    await bot.start()
    try:
        client = Phone.new(emulator, "Client", language_code="en")
        await client.send("/start")
        await client.wait_reply(timeout=60)
        await client.press("Yes, I'm in danger now")
        await client.wait_reply(timeout=30)
        # The answer to "write to me" hangs: the case is written, then the process dies.
        emulator.faults.append(Fault("delay", method="sendMessage", seconds=30))
        await client.press("Yes, write to me here")
        for _ in range(100):
            if await asyncio.to_thread(case_count) == 1:
                break
            await asyncio.sleep(0.1)
        assert await bot.stop(sig=9) == -9
        emulator.faults.clear()
        await asyncio.sleep(7)  # the escalation falls due while the bot is down
        await bot.start()
        # The unconfirmed update comes again: no second case. The card the dead process
        # never sent is sent now, and the escalation reaches the other specialist once.
        await emulator.wait_for(lambda: card_count(first) + card_count(second) >= 2,
                                timeout=60)
        await asyncio.sleep(2.5)  # a repeated escalation would show by now (the next,
        # to everyone, is due six seconds after this one)
        assert await asyncio.to_thread(case_count) == 1
        assert card_count(first) == 1 and card_count(second) == 1
        assert has_quick_exit(client)
    finally:
        await bot.stop()
        await emulator.stop()
    log = bot.log.read_text()
    assert "Traceback" not in log
    assert str(client.id) not in log and "Client" not in log


def has_quick_exit(client: Phone) -> bool:
    """After the restart she still has a menu to act on (and quick exit)."""
    return any("Quick exit" in " ".join(client.buttons(m)) for m in client.bot_messages())


async def test_answers_given_behind_a_hanging_one_are_not_repeated_after_a_crash(
    tmp_path: Path,
) -> None:
    """While one answer hangs, Telegram keeps every update from hers on unconfirmed (the bot
    asks again from the oldest unfinished one). The process dies: after the restart the
    update that hung is handled again, and those already answered behind it are not."""
    emulator = BotAPIEmulator()
    await emulator.start()
    bot = BotProcess(emulator, tmp_path)
    await bot.start()
    try:
        warm = Phone.new(emulator, "Warm", language_code="en")
        await warm.send("/start")
        await warm.wait_reply(timeout=60)  # the bot is up
        first = Phone.new(emulator, "Aida", language_code="en")
        others = [Phone.new(emulator, f"P{i}", language_code="en") for i in range(3)]
        emulator.faults.append(Fault("delay", method="sendMessage", seconds=30))
        await first.send("/start")
        await hanging(emulator)
        for phone in others:
            await phone.send("/start")
        await emulator.wait_for(lambda: all(homes(p) for p in others), timeout=30)
        await asyncio.sleep(0.5)
        assert await bot.stop(sig=9) == -9
        await bot.start()
        await emulator.wait_for(lambda: bool(homes(first)), timeout=60)
        await asyncio.sleep(1.0)  # a repeated answer would show by now
        assert [len(homes(p)) for p in others] == [1, 1, 1]
    finally:
        await bot.stop()
        await emulator.stop()
    assert "Traceback" not in bot.log.read_text()


async def test_the_bot_api_away_while_running_is_waited_for_and_nothing_is_lost(
    harness: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    first = harness.phone("Aida", language_code="en")
    await first.send("/start")
    await harness.settle()
    port = harness.emulator.port
    await harness.emulator.stop()  # the network goes
    await asyncio.sleep(2.5)
    await harness.emulator.start(port=port)
    second = harness.phone("Bermet", language_code="en")
    await second.send("/start")
    await harness.settle(timeout=60)
    assert "Are you in danger right now?" in second.last().plain()
    waits = [r for r in caplog.records if "the Bot API cannot be reached" in r.getMessage()]
    assert waits and all(r.exc_info is None for r in waits)
    assert any("the Bot API is back" in r.getMessage() for r in caplog.records)
    assert harness.running
