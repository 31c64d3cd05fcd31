"""Blocking a sender (issue 21 item 5): a coordinator blocks the sender of a case for N days
with a reason (audited); the blocked sender gets the emergency numbers to every message and
reaches nobody; /unblock lifts it; a block expires and is purged; /forget does not lift it."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.core.clock import FakeClock
from bot.dev.harness import Harness
from bot.domain import retention
from models import AuditEntry, Block
from tests.helpers import cases, client_asks, t


def s(h: Harness, key: str, **values: object) -> str:
    return t(h, None, key, **values)


async def blocks_kept(h: Harness) -> int:
    assert h.app is not None
    async with h.app.bot_data.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Block)) or 0)


async def test_a_blocked_sender_gets_the_numbers_and_reaches_nobody(
    harness: Harness, clock: FakeClock,
) -> None:
    coordinator = await harness.add_staff("Gulnara", ["coordinator"], on_duty=None)
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    sender = await client_asks(harness, category="legal", name="Prankster")
    await coordinator.send("/block 1 7 prank")
    await harness.settle()
    reply = coordinator.last().plain()
    assert reply.startswith(s(harness, "blocked", number=1, until="08.12.2026",
                              reason=s(harness, "block_reason_prank")))
    assert s(harness, "blocked_open_cases", numbers="#1") in reply
    numbers = t(harness, "en", "emergency_numbers")
    seen_by_lawyer = len(lawyer.bot_messages())
    for text in ("hello?", "/start", "he has a knife", "/help"):
        await sender.send(text)
        await harness.settle()
        assert sender.last().plain() == numbers, text
    assert "102" in numbers and "+996 312 512640" in numbers  # the hotline too
    assert len(lawyer.bot_messages()) == seen_by_lawyer
    assert len(await cases(harness)) == 1  # no new request was made
    # Quick exit still works for anyone.
    await sender.send("/exit")
    await harness.settle()
    assert sender.last().plain() == t(harness, "en", "exit_done")
    # /forget does not lift it: the block is kept by the HMAC of the Telegram id.
    await sender.send("/forget")
    await harness.settle()
    await sender.press(t(harness, "en", "btn_forget_yes"))
    await harness.settle()
    await sender.send("hello again")
    await harness.settle()
    assert sender.last().plain() == numbers
    # Eight days later it has expired, and the purge removes it.
    clock.advance(days=8)
    await sender.send("/start")
    await harness.settle()
    assert "Are you in danger right now?" in sender.last().plain()
    assert harness.app is not None and harness.settings is not None
    async with harness.app.bot_data.sessions() as session, session.begin():
        await retention.purge(session, settings=harness.settings, now=clock.now())
    assert await blocks_kept(harness) == 0
    async with harness.app.bot_data.sessions() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert "sender.block" in actions


async def test_unblock_and_who_may_block(harness: Harness) -> None:
    coordinator = await harness.add_staff("Gulnara", ["coordinator"], on_duty=None)
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    sender = await client_asks(harness, category="legal", name="Someone")
    await lawyer.send("/block 1 prank")
    await harness.settle()
    assert lawyer.last().plain() == s(harness, "not_allowed")
    await sender.send("/block 1 prank")  # a client typing a staff command
    await harness.settle()
    assert sender.last().plain() == t(harness, "en", "not_staff")
    await coordinator.send("/block 1 forever")  # not a reason from the list
    await harness.settle()
    assert coordinator.last().plain() == s(harness, "block_usage")
    await coordinator.send("/block 1 abuser")
    await harness.settle()
    assert await blocks_kept(harness) == 1
    await coordinator.send("/unblock 1")
    await harness.settle()
    assert coordinator.last().plain() == s(harness, "unblocked", number=1)
    await sender.send("/start")
    await harness.settle()
    assert "Are you in danger right now?" in sender.last().plain()
    await coordinator.send("/unblock 1")
    await harness.settle()
    assert coordinator.last().plain() == s(harness, "not_blocked", number=1)
