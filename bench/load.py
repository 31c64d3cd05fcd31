"""Load benchmark: sezim-bot against a stock python-telegram-bot echo bot, same emulator.

    .venv/bin/python bench/load.py [--clients 50,200] [--echo-messages 20]
                                   [--database-url URL] [--seed-cases 10000] [--surge]
                                   [--rtt 100] [--only-rtt] [--json FILE] [--rounds 3]

Both bots run as real processes (`sezim-bot run`; bench/echo_bot.py) long-polling the
project's Bot API emulator over loopback HTTP; the simulated people run in this process.

- Echo baseline: N clients each send messages one after another, waiting for each echo.
- sezim-bot: N clients each go through a whole journey (start, triage, request, a
  specialist takes the case, messages relayed both ways, close, rating); specialists are
  simulated too and take every card they get.
- Surge (--surge): ordinary traffic at ten times Telegram's bulk limit (300 updates/s)
  while people in danger press "Yes, I'm in danger now"; with Telegram's own limits
  (30 messages/s, about 1 per chat per second) in force in the bot.
- Round trip (--rtt MS): every Bot API call takes MS milliseconds there and back, as over
  a real network; people press "Yes, I'm in danger now" one after another, and the time
  from the update's hand-out to the emergency numbers arriving at the Bot API is measured
  (one round trip is the least it can take: any call or wait before it shows).

Each bot's log goes to its temporary directory, or to $SEZIM_BENCH_LOGS if set. With
$SEZIM_BENCH_DEBUG set, each journey run also prints its Bot API calls by method and its
slowest updates, each with what its chat had in hand just before it.

Reported: updates/s, latency per update (handed out by getUpdates to the bot's first
answer in that chat) at p50/p95/p99, and as she feels it (from her send, through
Telegram's queue, to that answer: `felt_`), escalation latency (the request sent to the
card at a specialist), the emergency answer's latency under the surge, peak RSS and CPU
time per update of each bot process, how busy each bot and this process were (CPU seconds
a second: which side set the pace), sezim-bot's latency by journey step; our figures as
ratios to the echo bot's. Compare only within one run: the machine is noisy (CPU per
update is the steadier figure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.dev.emulator import BotAPIEmulator, EmuMessage, Phone  # noqa: E402

CARD = re.compile(r"(?:№|#)(\d+)")
CONCURRENCY = 16


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Result:
    name: str
    clients: int
    updates: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    felt: list[float] = field(default_factory=list)  # from her send (see `felt`)
    escalations: list[float] = field(default_factory=list)
    emergencies: list[float] = field(default_factory=list)
    rss_mb: float = float("nan")
    cpu: float = 0.0  # the bot process's CPU seconds during the measurement
    # This process's (the emulator's and the simulated people's): near 1 s a second, it is
    # the bench that sets the pace, not the bot.
    bench_cpu: float = 0.0
    by_step: dict[str, list[float]] = field(default_factory=dict)
    felt_by_step: dict[str, list[float]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0

    def row(self) -> dict[str, Any]:
        ms = 1000
        return {
            "name": self.name, "clients": self.clients, "updates": self.updates,
            "updates_per_s": round(self.rate, 1),
            "p50_ms": round(pct(self.latencies, 0.50) * ms, 1),
            "p95_ms": round(pct(self.latencies, 0.95) * ms, 1),
            "p99_ms": round(pct(self.latencies, 0.99) * ms, 1),
            "felt_p50_ms": round(pct(self.felt, 0.50) * ms, 1) if self.felt else None,
            "felt_p99_ms": round(pct(self.felt, 0.99) * ms, 1) if self.felt else None,
            "escalation_p50_ms": round(pct(self.escalations, 0.5) * ms, 1)
            if self.escalations else None,
            "escalation_p99_ms": round(pct(self.escalations, 0.99) * ms, 1)
            if self.escalations else None,
            "emergency_p50_ms": round(pct(self.emergencies, 0.50) * ms, 1)
            if self.emergencies else None,
            "emergency_p99_ms": round(pct(self.emergencies, 0.99) * ms, 1)
            if self.emergencies else None,
            "emergencies_ms": [round(x * ms) for x in self.emergencies] or None,
            "peak_rss_mb": round(self.rss_mb, 1),
            "bot_cpu_ms_per_update": round(self.cpu / self.updates * ms, 2)
            if self.updates and self.cpu else None,
            "bot_busy": round(self.cpu / self.seconds, 2) if self.seconds and self.cpu else None,
            "bench_busy": round(self.bench_cpu / self.seconds, 2)
            if self.seconds and self.bench_cpu else None,
            "steps": {step: {"n": len(v), "p50_ms": round(pct(v, 0.5) * ms, 1),
                             "p99_ms": round(pct(v, 0.99) * ms, 1),
                             **({"felt_p50_ms": round(pct(f, 0.5) * ms, 1),
                                 "felt_p99_ms": round(pct(f, 0.99) * ms, 1)}
                                if (f := self.felt_by_step.get(step)) else {})}
                      for step, v in sorted(self.by_step.items())} or None,
        }


class Process:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.args, self.env, self.cwd = args, env, cwd
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Process:
        log_dir = Path(os.environ.get("SEZIM_BENCH_LOGS", self.cwd))
        log_dir.mkdir(parents=True, exist_ok=True)
        name = "echo" if any("echo_bot" in a for a in self.args) else "sezim"
        log = (log_dir / f"{name}-{os.getpid()}.log").open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, env=self.env, cwd=self.cwd, stdout=log, stderr=log)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


async def _answered(emu: BotAPIEmulator, update_id: int | None) -> None:
    assert update_id is not None
    await emu.wait_answered(update_id, timeout=120)


# update id -> the journey step it was (for latency by step).
STEPS: dict[int, str] = {}
# update id -> when the simulated person sent it (perf_counter): the latency she feels runs
# from here, through Telegram's queue (the emulator's), to the bot's first answer.
SENT: dict[int, float] = {}
# update id -> the chat it came from (for the slowest updates, SEZIM_BENCH_DEBUG).
CHATS: dict[int, int] = {}


def felt(emu: BotAPIEmulator) -> list[float]:
    """Each answered update's time from her send to the bot's first answer."""
    return [emu.handed_out[uid] + latency - SENT[uid]
            for uid, latency in emu.answered.items() if uid in SENT]


def _step(phone: Phone, what: str) -> str:
    who = "specialist" if phone.user.first_name.startswith("Spec") else "client"
    return f"{who} {what}"


async def send(phone: Phone, text: str, **kw: Any) -> EmuMessage:
    sent = time.perf_counter()
    msg = await phone.emu.user_message(phone.id, text=text, **kw)
    assert msg.update_id is not None
    SENT[msg.update_id] = sent
    CHATS[msg.update_id] = phone.id
    STEPS[msg.update_id] = _step(phone, text.split()[0] if text.startswith("/") else "text")
    await _answered(phone.emu, msg.update_id)
    return msg


def _has(phone: Phone, label: str, message: EmuMessage | None) -> bool:
    try:
        phone.find_button(label, message)
    except AssertionError:
        return False
    return True


async def press(phone: Phone, label: str, message: EmuMessage | None = None) -> None:
    # The spinner stops (the first answer) before the screen changes: wait for the button.
    await phone.emu.wait_for(lambda: _has(phone, label, message), 120, chat_id=phone.id)
    msg, data = phone.find_button(label, message)
    sent = time.perf_counter()
    cq = await phone.emu.user_presses(phone.id, msg, data)
    update_id = phone.emu.callback_updates[cq]
    SENT[update_id] = sent
    CHATS[update_id] = phone.id
    STEPS[update_id] = _step(phone, ":".join(data.split(":")[:2]))
    await _answered(phone.emu, update_id)


# ---------------------------------------------------------------------- the echo baseline


async def run_echo(emu: BotAPIEmulator, clients: int, messages: int, tmp: Path) -> Result:
    env = {**os.environ}
    result = Result("echo (stock PTB)", clients)
    phones = [Phone.new(emu, f"E{i}") for i in range(clients)]
    async with Process([sys.executable, str(ROOT / "bench" / "echo_bot.py"), emu.base_url,
                        emu.token], env, tmp) as proc:
        await send(phones[0], "warm up")
        emu.answered.clear()

        async def one(phone: Phone) -> None:
            for i in range(messages):
                await send(phone, f"message {i}")

        t0, cpu0, own0 = time.perf_counter(), cpu_seconds(proc.pid), time.process_time()
        await asyncio.gather(*(one(p) for p in phones))
        result.seconds = time.perf_counter() - t0
        result.cpu = cpu_seconds(proc.pid) - cpu0
        result.bench_cpu = time.process_time() - own0
        result.rss_mb = peak_rss_mb(proc.pid)
    result.updates = len(emu.answered)
    result.latencies = list(emu.answered.values())
    result.felt = felt(emu)
    return result


# ---------------------------------------------------------------------- sezim-bot


def _config(tmp: Path, emu: BotAPIEmulator, db_url: str, *, real_limits: bool) -> Path:
    """The bot's configuration for a run. Simulated people tap faster than people do, so
    the per-person flood limits are raised; Telegram's own sending limits are in force
    only for the surge (the emulator does not enforce them, the bot's limiter does)."""
    config = tmp / "config.toml"
    sending = "" if real_limits else "telegram_per_second = 0\nper_chat_per_second = 0\n"
    config.write_text(
        f'[telegram]\nbase_url = "{emu.base_url}"\nbase_file_url = "{emu.base_file_url}"\n'
        f'poll_timeout = 1\nconcurrency = {CONCURRENCY}\n[database]\nurl = "{db_url}"\n'
        f"[limits]\nmessages_per_minute = 600\ntaps_per_minute = 600\n{sending}",
        encoding="utf-8")
    return config


async def _add_staff(tmp: Path, env: dict[str, str], phones: list[Phone]) -> None:
    for phone in phones:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "staff", "add", "--telegram-id", str(phone.id),
            "--name", phone.user.first_name, "--role", "psychologist,lawyer",
            env=env, cwd=tmp, stdout=asyncio.subprocess.DEVNULL)
        assert await proc.wait() == 0


def _seed(db_path: Path, secret: str, count: int) -> None:
    """Open cases and idle clients the bot must not keep in memory."""
    from datetime import UTC, datetime, timedelta

    from bot.core.crypto import Crypto

    crypto = Crypto(secret)
    now = datetime.now(UTC)
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO staff (tg_hmac, tg_id_enc, name, active, created_at) "
                 "VALUES (?, ?, 'Seed', 1, ?)", (crypto.lookup(1), crypto.encrypt(1), now))
    staff_id = conn.execute("SELECT max(id) FROM staff").fetchone()[0]
    for i in range(count):
        tg = 9_000_000_000 + i
        conn.execute(
            "INSERT INTO clients (chat_hmac, chat_id_enc, language, step, step_data, "
            "created_at, last_seen_at) VALUES (?, ?, 'ru', 'waiting', '{}', ?, ?)",
            (crypto.lookup(tg), crypto.encrypt(tg), now, now))
        client_id = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        conn.execute(
            "INSERT INTO appeals (day, month, person, urgency, language, out_of_hours) "
            "VALUES (?, ?, ?, 'standard', 'ru', 0)",
            (now.date(), now.year * 100 + now.month, crypto.pseudonym(tg, now.year)))
        appeal_id = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        conn.execute(
            "INSERT INTO cases (client_id, appeal_id, status, urgency, language, contact, "
            "escalation_level, created_at, owner_id, taken_at) "
            "VALUES (?, ?, 'active', 'standard', 'ru', 'chat_now', 0, ?, ?, ?)",
            (client_id, appeal_id, now, staff_id, now))
        case_id = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        conn.execute("INSERT INTO due_times (kind, ref_id, due_at, attempts) "
                     "VALUES ('contact', ?, ?, 0)", (case_id, now + timedelta(days=7)))
        tg2 = 8_000_000_000 + i  # an idle client who only said hello
        conn.execute(
            "INSERT INTO clients (chat_hmac, chat_id_enc, language, step, step_data, "
            "created_at, last_seen_at) VALUES (?, ?, 'ky', 'home', '{}', ?, ?)",
            (crypto.lookup(tg2), crypto.encrypt(tg2), now, now))
    conn.commit()
    # The seed's log copied into the database now, not by the bot's first commit in the
    # measurement (it made one run's bot wait on the disk a second).
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


class Watch:
    """New messages from the bot in one chat that match, read once each: a specialist's
    chat grows long, and hundreds of waiters re-reading it would make the benchmark, not
    the bot, the slow part."""

    def __init__(self, phone: Phone, match: Callable[[EmuMessage], bool], *,
                 start: int | None = None) -> None:
        self.phone, self.match = phone, match
        self.cursor = len(phone.emu.chat(phone.id).messages) if start is None else start
        self.found: list[EmuMessage] = []

    def _scan(self, count: int) -> bool:
        messages = self.phone.emu.chat(self.phone.id).messages
        while len(self.found) < count and self.cursor < len(messages):
            m = messages[self.cursor]
            self.cursor += 1
            if m.from_bot and self.match(m):
                self.found.append(m)
        return len(self.found) >= count

    async def wait(self, count: int = 1) -> EmuMessage:
        """The `count`-th match."""
        await self.phone.emu.wait_for(lambda: self._scan(count), 120, chat_id=self.phone.id)
        return self.found[count - 1]


async def _specialist(me: Phone, lock: asyncio.Lock, case: int, client: Phone) -> None:
    """Take the case, answer her second message, close it."""
    # Her messages arrive in my chat as copies (the first may be there already).
    copies = Watch(me, lambda m: bool(m.source) and m.source[0] == client.id, start=0)
    async with lock:
        card = next(m for m in reversed(me.bot_messages())
                    if (f := CARD.search(m.plain() or "")) and f.group(1) == str(case)
                    and m.buttons)
        await press(me, "Взять", card)
    first = await copies.wait(2)
    async with lock:
        await send(me, "Здравствуйте, я на связи. Расскажите, что случилось.",
                   reply_to=first.message_id)
    await copies.wait(3)
    async with lock:
        menu = Watch(me, lambda m: f"№{case}:" in m.plain() and bool(m.buttons))
        await send(me, f"/close {case}")
        await press(me, "Психологическая консультация", await menu.wait())


async def _journey(emu: BotAPIEmulator, client: Phone, region: str,
                   escalations: list[float], cases: dict[int, Phone],
                   case_numbers: asyncio.Queue[int]) -> None:
    await send(client, "/start")
    for label in ("Нужна помощь или совет", "Нет, только я", "Мне", "Психологическая",
                  region, "Пропустить", "Переписка здесь сейчас"):
        await press(client, label)
    t0 = time.perf_counter()
    await press(client, "Да, отправить")
    await emu.wait_for(lambda: any(CARD.search(m.plain()) for m in client.bot_messages()),
                       120, chat_id=client.id)
    number = next(int(m.group(1)) for m in
                  (CARD.search(x.plain()) for x in reversed(client.bot_messages())) if m)
    cases[number] = client
    await case_numbers.put(number)
    await _card_seen(number)
    escalations.append(_carded[number] - t0)
    await emu.wait_for(lambda: any("Подключился" in m.plain() for m in client.bot_messages()),
                       120, chat_id=client.id)
    await send(client, "Он снова кричал и угрожал. Я не знаю, что делать.")
    await send(client, "Можно поговорить сейчас?")
    await emu.wait_for(lambda: any(m.source for m in client.bot_messages()), 120, chat_id=client.id)
    await send(client, "Спасибо.")
    await emu.wait_for(lambda: any("⭐⭐⭐⭐⭐" in " ".join(client.buttons(m))
                                   for m in client.bot_messages()), 120, chat_id=client.id)
    await press(client, "⭐⭐⭐⭐⭐")


_carded: dict[int, float] = {}
_card_events: dict[int, asyncio.Event] = {}


async def _card_seen(number: int) -> None:
    """Wait until case `number`'s card was on a specialist's screen."""
    await asyncio.wait_for(_card_events.setdefault(number, asyncio.Event()).wait(), 120)


async def _watch_cards(emu: BotAPIEmulator, staff: list[Phone], stop: asyncio.Event) -> None:
    """Note when each case's card reaches a specialist: woken by each change in a
    specialist's chat (polling every 10 ms had added up to 10 ms to every case)."""

    async def one(phone: Phone) -> None:
        seen = 0
        msgs = emu.chat(phone.id).messages
        while not stop.is_set():
            try:
                await emu.wait_for(lambda at=seen: len(msgs) > at, 0.5, chat_id=phone.id)
            except TimeoutError:
                continue
            for m in msgs[seen:]:
                if m.from_bot and m.buttons and (found := CARD.search(m.plain() or "")):
                    number = int(found.group(1))
                    _carded.setdefault(number, time.perf_counter())
                    _card_events.setdefault(number, asyncio.Event()).set()
            seen = len(msgs)

    await asyncio.gather(*(one(p) for p in staff))


async def _empty_database(url: str) -> None:
    """Every run starts from an empty database, as with SQLite's new file: a second round
    would otherwise find the first's cases, staff and handled update ids (the emulator
    numbers its updates from 1 again)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def run_sezim(emu: BotAPIEmulator, clients: int, tmp: Path, db_url: str | None,
                    seed: int) -> Result:
    secret = secrets.token_urlsafe(48)
    url = db_url or f"sqlite+aiosqlite:///{tmp / 'sezim.db'}"
    if db_url:
        await _empty_database(db_url)
    _config(tmp, emu, url, real_limits=False)
    env = {**os.environ, "SEZIM_BOT_TOKEN": emu.token, "SEZIM_SECRET_KEY": secret,
           "SEZIM_CONFIG": str(tmp / "config.toml")}
    staff = [Phone.new(emu, f"Spec{i}") for i in range(max(4, clients // 5))]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "db", "upgrade",
                                                env=env, cwd=tmp,
                                                stdout=asyncio.subprocess.DEVNULL)
    await proc.wait()
    await _add_staff(tmp, env, staff)
    if seed and url.startswith("sqlite"):
        _seed(Path(url.split("///", 1)[1]), secret, seed)
    result = Result("sezim-bot" + (f" (+{seed} open cases)" if seed else ""), clients)
    phones = [Phone.new(emu, f"C{i}") for i in range(clients)]
    async with Process([sys.executable, "-m", "bot", "run"], env, tmp) as bot:
        for s in staff:
            await send(s, "/duty on")
        emu.answered.clear()
        emu.calls.clear()
        _carded.clear()
        _card_events.clear()
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch_cards(emu, staff, stop))
        cases: dict[int, Phone] = {}
        numbers: asyncio.Queue[int] = asyncio.Queue()
        # A specialist works on her cases side by side, as a person with several chats
        # would; the lock per case only keeps each case's own steps in order.
        locks = {n: asyncio.Lock() for n in range(1, clients + 1)}

        async def dispatcher() -> None:
            tasks = []
            load = {s.id: 0 for s in staff}
            for _ in range(clients):
                number = await numbers.get()
                await _card_seen(number)
                # The card goes to every specialist on duty; the least busy one takes it
                # (one specialist per five people, as the bench promises).
                holders = [s for s in staff if any(
                    m.buttons and (f := CARD.search(m.plain() or "")) and int(f.group(1))
                    == number for m in s.bot_messages())]
                holder = min(holders, key=lambda s: load[s.id])
                load[holder.id] += 1
                tasks.append(asyncio.create_task(_specialist(
                    holder, locks.setdefault(number, asyncio.Lock()), number, cases[number])))
            await asyncio.gather(*tasks)

        regions = ["г. Бишкек", "Чуйская область", "г. Ош", "Нарынская область"]
        t0, cpu0, own0 = time.perf_counter(), cpu_seconds(bot.pid), time.process_time()
        await asyncio.gather(
            dispatcher(),
            *(_journey(emu, p, regions[i % len(regions)], result.escalations, cases, numbers)
              for i, p in enumerate(phones)))
        result.seconds = time.perf_counter() - t0
        result.cpu = cpu_seconds(bot.pid) - cpu0
        result.bench_cpu = time.process_time() - own0
        stop.set()
        await watcher
        result.rss_mb = peak_rss_mb(bot.pid)
    result.updates = len(emu.answered)
    result.latencies = list(emu.answered.values())
    result.felt = felt(emu)
    for update_id, latency in emu.answered.items():
        result.by_step.setdefault(STEPS.get(update_id, "other"), []).append(latency)
        if update_id in SENT:
            result.felt_by_step.setdefault(STEPS.get(update_id, "other"), []).append(
                emu.handed_out[update_id] + latency - SENT[update_id])
    if os.environ.get("SEZIM_BENCH_DEBUG"):
        _slowest(emu)
    return result


def _slowest(emu: BotAPIEmulator, count: int = 8) -> None:
    """The slowest updates, each with what its chat had handed out just before it (an
    update waits for the one before it in its chat)."""
    start = min(emu.handed_out.values(), default=0.0)
    calls = Counter(method for method, _ in emu.calls)
    print(f"Bot API calls: {', '.join(f'{m} {n}' for m, n in calls.most_common())}",
          file=sys.stderr)
    for uid, latency in sorted(emu.answered.items(), key=lambda x: -x[1])[:count]:
        at = emu.handed_out[uid]
        before = [f"{STEPS.get(u, '?')} +{(emu.handed_out[u] - start) * 1000:.0f}"
                  f"/{emu.answered.get(u, float('nan')) * 1000:.0f}"
                  for u in sorted(emu.handed_out) if u < uid and CHATS.get(u) == CHATS.get(uid)
                  and at - emu.handed_out[u] < 0.3]
        print(f"slow: {STEPS.get(uid, '?')} at +{(at - start) * 1000:.0f} ms took "
              f"{latency * 1000:.0f} ms; its chat before: {', '.join(before) or '-'}",
              file=sys.stderr)


async def run_surge(emu: BotAPIEmulator, tmp: Path, seconds: float = 10.0,
                    rate: float = 300.0) -> Result:
    """Ordinary traffic at ten times Telegram's bulk limit, emergencies in between."""
    secret = secrets.token_urlsafe(48)
    _config(tmp, emu, f"sqlite+aiosqlite:///{tmp / 'surge.db'}", real_limits=True)
    env = {**os.environ, "SEZIM_BOT_TOKEN": emu.token, "SEZIM_SECRET_KEY": secret,
           "SEZIM_CONFIG": str(tmp / "config.toml")}
    result = Result("sezim-bot surge", int(rate))
    crowd = [Phone.new(emu, f"S{i}") for i in range(int(rate))]
    endangered = [Phone.new(emu, f"D{i}") for i in range(int(seconds * 4))]
    async with Process([sys.executable, "-m", "bot", "run"], env, tmp) as bot:
        for phone in endangered:  # each has the first screen already
            await send(phone, "/start")
        emu.answered.clear()
        t0 = time.perf_counter()

        async def ordinary() -> None:
            sent = 0
            while (elapsed := time.perf_counter() - t0) < seconds:
                due = int(elapsed * rate)
                while sent < due:
                    await emu.user_message(crowd[sent % len(crowd)].id, text="/help")
                    sent += 1
                await asyncio.sleep(0.005)

        async def in_danger(phone: Phone, delay: float) -> None:
            await asyncio.sleep(delay)
            msg, data = phone.find_button("🆘")
            start = time.perf_counter()
            cq = await emu.user_presses(phone.id, msg, data)
            await emu.wait_for(lambda: any("102" in m.plain() for m in phone.bot_messages()),
                               120, chat_id=phone.id)
            result.emergencies.append(time.perf_counter() - start)
            uid = emu.callback_updates[cq]
            if os.environ.get("SEZIM_BENCH_DEBUG"):
                queued = (emu.handed_out.get(uid, start) - start) * 1000
                answered = emu.answered.get(uid, float("nan")) * 1000
                print(f"emergency: queued {queued:.0f} ms, first answer {answered:.0f} ms "
                      "after hand-out", file=sys.stderr)

        await asyncio.gather(ordinary(), *(in_danger(p, 0.5 + i * 0.25)
                                           for i, p in enumerate(endangered)))
        result.seconds = time.perf_counter() - t0
        result.rss_mb = peak_rss_mb(bot.pid)
    result.updates = len(emu.answered)
    result.latencies = list(emu.answered.values())
    return result


async def run_rtt(emu: BotAPIEmulator, tmp: Path, people: int = 30,
                  gap: float = 0.3) -> Result:
    """Every Bot API call takes `emu.rtt` there and back (a real network's round trip):
    people press "Yes, I'm in danger now" one after another; the emergency answer's time
    from the update's hand-out by getUpdates to its numbers arriving at the Bot API."""
    secret = secrets.token_urlsafe(48)
    _config(tmp, emu, f"sqlite+aiosqlite:///{tmp / 'rtt.db'}", real_limits=True)
    env = {**os.environ, "SEZIM_BOT_TOKEN": emu.token, "SEZIM_SECRET_KEY": secret,
           "SEZIM_CONFIG": str(tmp / "config.toml")}
    result = Result(f"sezim-bot, round trip {emu.rtt * 1000:.0f} ms", people)
    endangered = [Phone.new(emu, f"R{i}") for i in range(people)]
    async with Process([sys.executable, "-m", "bot", "run"], env, tmp) as bot:
        for phone in endangered:  # each has the first screen already
            await send(phone, "/start")
        t0 = time.perf_counter()

        async def in_danger(phone: Phone, delay: float) -> None:
            await asyncio.sleep(delay)
            msg, data = phone.find_button("🆘")
            cq = await emu.user_presses(phone.id, msg, data)
            await emu.wait_for(lambda: any("102" in m.plain() for m in phone.bot_messages()),
                               120, chat_id=phone.id)
            arrived = time.perf_counter()
            result.emergencies.append(arrived - emu.handed_out[emu.callback_updates[cq]])

        await asyncio.gather(*(in_danger(p, i * gap) for i, p in enumerate(endangered)))
        result.seconds = time.perf_counter() - t0
        result.rss_mb = peak_rss_mb(bot.pid)
    return result


async def _emulator(rtt: float = 0.0) -> BotAPIEmulator:
    """A fresh emulator that times every update and keeps no call log (but for
    SEZIM_BENCH_DEBUG: the calls are counted)."""
    emu = BotAPIEmulator(rtt=rtt)
    emu.track_latency = True
    emu.record_calls = bool(os.environ.get("SEZIM_BENCH_DEBUG"))
    await emu.start()
    return emu


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    counts = [] if args.only_surge or args.only_rtt else \
        [int(c) for c in args.clients.split(",")]
    for clients, round_ in ((c, r) for c in counts for r in range(1, args.rounds + 1)):
        for runner in ("echo", "sezim"):
            emu = await _emulator()
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    if runner == "echo":
                        echo = await run_echo(emu, clients, args.echo_messages, Path(tmp))
                        rows.append({**echo.row(), "round": round_})
                    else:
                        ours = await run_sezim(emu, clients, Path(tmp), args.database_url,
                                               args.seed_cases)
                        row = {**ours.row(), "round": round_}
                        row["ratio_updates_per_s"] = round(ours.rate / echo.rate, 2)
                        row["p99_over_p50"] = round(pct(ours.latencies, 0.99)
                                                    / pct(ours.latencies, 0.5), 2)
                        row["felt_p99_over_p50"] = round(pct(ours.felt, 0.99)
                                                         / pct(ours.felt, 0.5), 2)
                        rows.append(row)
            finally:
                await emu.stop()
            print(json.dumps(rows[-1]), flush=True)
    if args.surge or args.only_surge:
        emu = await _emulator()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append((await run_surge(emu, Path(tmp))).row())
        finally:
            await emu.stop()
        print(json.dumps(rows[-1]), flush=True)
    if args.rtt or args.only_rtt:
        emu = await _emulator(rtt=(args.rtt or 100) / 1000)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append((await run_rtt(emu, Path(tmp))).row())
        finally:
            await emu.stop()
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="50,200")
    parser.add_argument("--echo-messages", type=int, default=16)
    parser.add_argument("--database-url")
    parser.add_argument("--seed-cases", type=int, default=0)
    parser.add_argument("--surge", action="store_true")
    parser.add_argument("--only-surge", action="store_true", help="skip the journeys")
    parser.add_argument("--rtt", type=float, default=0,
                        help="also measure the emergency answer with this many milliseconds "
                             "of round trip added to every Bot API call")
    parser.add_argument("--only-rtt", action="store_true",
                        help="only that (100 ms unless --rtt says otherwise)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="the bot's [telegram] concurrency")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each number of people this many times, echo bot and "
                             "sezim-bot in turn, and report the median ratios (the machine's "
                             "speed drifts between runs)")
    args = parser.parse_args()
    global CONCURRENCY
    CONCURRENCY = args.concurrency
    rows = asyncio.run(main_async(args))
    keys = ["name", "clients", "updates", "updates_per_s", "p50_ms", "p95_ms", "p99_ms",
            "felt_p50_ms", "felt_p99_ms", "escalation_p50_ms", "emergency_p99_ms",
            "peak_rss_mb", "bot_cpu_ms_per_update", "bot_busy", "bench_busy",
            "ratio_updates_per_s", "p99_over_p50", "felt_p99_over_p50"]
    print()
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row.get(k, "")) for k in keys))
    if args.rounds > 1:
        print("\nmedians over the rounds (each ratio against the echo bot of its own round):")
        for clients in sorted({r["clients"] for r in rows if "ratio_updates_per_s" in r}):
            ours = [r for r in rows if r["clients"] == clients and "ratio_updates_per_s" in r]
            print(f"  {clients} people: throughput ratio "
                  f"{statistics.median(r['ratio_updates_per_s'] for r in ours):.2f} "
                  f"({min(r['ratio_updates_per_s'] for r in ours)}-"
                  f"{max(r['ratio_updates_per_s'] for r in ours)}), p99/p50 "
                  f"{statistics.median(r['p99_over_p50'] for r in ours):.2f} "
                  f"({min(r['p99_over_p50'] for r in ours)}-"
                  f"{max(r['p99_over_p50'] for r in ours)}), from her send "
                  f"{statistics.median(r['felt_p99_over_p50'] for r in ours):.2f} "
                  f"({min(r['felt_p99_over_p50'] for r in ours)}-"
                  f"{max(r['felt_p99_over_p50'] for r in ours)})")
    for row in rows:
        if row.get("steps"):
            print(f"\n{row['name']}, {row['clients']} people: latency by step (ms)")
            for step, f in sorted(row["steps"].items(), key=lambda kv: -kv[1]["p50_ms"]):
                print(f"  {step:24} n={f['n']:<5} p50 {f['p50_ms']:>8} p99 {f['p99_ms']:>8}"
                      f"   from her send: p50 {f.get('felt_p50_ms')} p99 {f.get('felt_p99_ms')}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
