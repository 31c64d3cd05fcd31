"""What a stolen database file, the logs or an export would reveal: no Telegram id, name,
phone number or message text of a client. Retention and key rotation cut the links."""

from __future__ import annotations

import io
import logging
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.cli import setup_logging
from bot.core.clock import FakeClock
from bot.core.crypto import Crypto
from bot.dev.harness import Harness
from bot.domain import retention, stats
from models import Appeal, ChatMessage, Client, RelayLink
from tests.helpers import cases, client_asks, clients, t

SECRET_WORDS = "my husband Bakyt hides my passport in the wardrobe"
PHONE = "+996 555 987 654"
CODE_WORD = "Tulpar"


def _database_bytes(db_url: str) -> bytes:
    path = Path(db_url.split("///", 1)[1])
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_nothing_personal_in_the_database_logs_or_exports(
    db_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    setup_logging()
    logging.getLogger().setLevel(logging.INFO)
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    h = Harness(db_url, clock=clock)
    await h.start()
    try:
        lawyer = await h.add_staff("Aigul", ["lawyer"])
        client = h.phone("Gulzat", language_code="en")
        client.user.username = "gulzat_private"
        await client.send("/start")
        await h.settle()
        for label in ("I need help", "No, only me", "Me", "Legal"):
            await client.press(label)
            await h.settle()
        await client.press("Naryn region")
        await h.settle()
        for label in ("Skip", "Phone call at a safe time", "In 1 h"):
            await client.press(label)
            await h.settle()
        await client.send(PHONE)
        await h.settle()
        await client.press("Yes, send")
        await h.settle()
        # Her code word, chosen on the screen after sending.
        await client.press(t(h, "en", "btn_code_word"))
        await h.settle()
        await client.send(CODE_WORD)
        await h.settle()
        clock.advance(hours=1, minutes=1)
        assert h.app is not None
        from bot.telegram import scheduling
        await scheduling.run_due(h.app)
        await h.settle()
        assert PHONE not in lawyer.text()  # not on a card anyone may still take
        await lawyer.press(t(h, None, "btn_take"))
        await h.settle()
        assert PHONE in lawyer.text()  # shown where it is needed, and only there
        await client.send(SECRET_WORDS)
        await client.send("он меня убьёт")
        await h.settle()
        # Quick exit, a wrong word from whoever holds the phone, then hers.
        await client.press(t(h, "en", "btn_exit"))
        await h.settle()
        await client.send("Kitten")
        await client.send(CODE_WORD)
        await h.settle()
        (case,) = await cases(h)
        assert case.status == "active"  # she is back
        # Exports: what a coordinator downloads.
        async with h.app.bot_data.sessions() as session:
            result = await stats.breakdown(session, start=date.today() - timedelta(days=400),
                                           end=date.today() + timedelta(days=400),
                                           by=["region", "category"])
            report = await stats.annual_report(session, start=date.today() - timedelta(400),
                                               end=date.today() + timedelta(days=400))
        grid = stats.grid(result)
        exports = grid.csv() + stats.breakdown_json(grid, result=result, external=False) + \
            stats.report_csv(report)
    finally:
        await h.stop()
        logging.getLogger().removeHandler(handler)

    secrets_of_hers = [str(client.id), "Gulzat", "gulzat_private", SECRET_WORDS, "Bakyt",
                       "убьёт", PHONE, "555987654", "555 987 654", "987654", CODE_WORD,
                       CODE_WORD.lower(), "Kitten", "kitten"]
    data = _database_bytes(db_url)
    logs = captured.getvalue()
    assert "case 1 created" in logs  # the log does say what happened
    for item in secrets_of_hers:
        assert item.encode() not in data, f"{item!r} is in the database file"
        assert item not in logs, f"{item!r} is in the log"
        assert item not in exports, f"{item!r} is in an export"
    assert h.emulator.token.split(":")[1] not in logs


async def test_retention_purges_links_but_keeps_the_anonymous_record(
    harness: Harness, clock: FakeClock
) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness)
    await lawyer.press(t(harness, None, "btn_take"))
    await harness.settle()
    await client.send("hello")
    await harness.settle()
    await lawyer.send("/close")
    await harness.settle()
    await lawyer.press(t(harness, None, "outcome_legal"))
    await harness.settle()
    assert harness.app is not None and harness.settings is not None
    data = harness.app.bot_data
    # Not yet: the retention period has not passed.
    clock.advance(days=29)
    async with data.sessions() as session, session.begin():
        report = await retention.purge(session, settings=harness.settings, now=clock.now())
    assert report.cases == 0
    clock.advance(days=2)
    async with data.sessions() as session, session.begin():
        report = await retention.purge(session, settings=harness.settings, now=clock.now())
    assert report.cases == 1 and report.clients == 1
    (case,) = await cases(harness)
    assert case.client_id is None and case.phone_enc is None and case.purged_at is not None
    assert await clients(harness) == []
    async with data.sessions() as session:
        assert (await session.scalars(select(RelayLink))).all() == []
        assert (await session.scalars(select(ChatMessage))).all() == []
        appeal = await session.get(Appeal, case.appeal_id)
    assert appeal is not None and appeal.outcome == "legal"


async def test_key_rotation_without_downtime(harness: Harness) -> None:
    client = harness.phone("Client", language_code="en")
    await client.send("/start")
    await harness.settle()
    staff_phone = await harness.add_staff("Aigul", ["lawyer"])
    assert harness.app is not None and harness.settings is not None
    old_secret = harness.settings.secret_key
    assert old_secret is not None
    new_secret = "N" * 48
    from bot.core import keys

    # 1. Both keys configured (new first): the bot still finds everyone.
    both = Crypto(f"{new_secret},{old_secret}")
    harness.app.bot_data.crypto = both
    await client.send("/help")
    await harness.settle()
    assert "What I can do" in client.last().plain()
    # 2. Rotate: every id and phone re-encrypted, every lookup re-keyed.
    async with harness.app.bot_data.sessions() as session, session.begin():
        counts = await keys.rotate(session, crypto=both)
    assert counts["clients"] == 1 and counts["staff"] == 1
    # 3. The old key can go.
    harness.app.bot_data.crypto = Crypto(new_secret)
    await client.send("/help")
    await harness.settle()
    assert client.last().plain().count("What I can do") == 1
    await staff_phone.send("/queue")
    await harness.settle()
    assert staff_phone.last().plain() == t(harness, None, "queue_empty")
    async with harness.app.bot_data.sessions() as session:
        (row,) = (await session.scalars(select(Client))).all()
    assert Crypto(new_secret).decrypt_int(row.chat_id_enc) == client.id
