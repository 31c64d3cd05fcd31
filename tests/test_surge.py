"""Under a surge of ordinary traffic the woman in danger is answered first."""

from __future__ import annotations

import pytest

from bot.dev.emulator import Phone
from bot.dev.harness import Harness

pytestmark = pytest.mark.slow


async def _started(db_url: str, *, per_second: int,
                   concurrency: int | None = None) -> tuple[Harness, Phone]:
    """The bot under a sending limit of `per_second` (and `concurrency`, if not the
    default), and a woman who has its first screen."""
    h = Harness(db_url, limits={"telegram_per_second": per_second, "per_chat_per_second": 0,
                                "messages_per_minute": 600},
                **({"telegram": {"concurrency": concurrency}} if concurrency else {}))
    await h.start()
    endangered = h.phone("Aida", language_code="en")
    await endangered.send("/start")
    await h.settle()
    return h, endangered


async def _crowd_then_danger(h: Harness, endangered: Phone, *, people: int) -> int:
    """`people` each send /help twice, then she presses the danger button: how many
    ordinary answers went out before the emergency numbers reached her. Then nobody was
    dropped: every /help is answered in the end (the queue drains at the limit's pace)."""
    crowd = [h.phone(f"P{i}", language_code="en") for i in range(people)]
    for _ in range(2):
        for phone in crowd:
            await h.emulator.user_message(phone.id, text="/help")
    await endangered.press("Yes, I'm in danger now")
    await h.emulator.wait_for(
        lambda: any("102" in m.plain() for m in endangered.bot_messages()), timeout=30)
    answered = sum(1 for p in crowd for m in p.bot_messages() if "What I can do" in m.plain())
    await h.emulator.wait_for(
        lambda: all(sum("What I can do" in m.plain() for m in p.bot_messages()) == 2
                    for p in crowd), timeout=60)
    return answered


async def test_an_emergency_overtakes_a_surge_of_ordinary_traffic(db_url: str) -> None:
    # Telegram's limit scaled down (20 messages a second) so a surge is cheap to make:
    # 120 answers queued, six seconds of backlog, then danger.
    h, endangered = await _started(db_url, per_second=20)
    try:
        answered = await _crowd_then_danger(h, endangered, people=60)
        assert answered < 60, f"the emergency waited behind {answered} ordinary answers"
    finally:
        await h.stop()


async def test_an_emergency_behind_a_small_slow_batch_is_not_kept_waiting(db_url: str) -> None:
    """A batch too small to look like a surge but slow to answer (here: Telegram's sending
    limit, scaled down to 4 a second) must not hold back a woman in danger behind it."""
    import asyncio

    h, endangered = await _started(db_url, per_second=4)
    try:
        crowd = [h.phone(f"P{i}", language_code="en") for i in range(12)]
        for phone in crowd:
            await h.emulator.user_message(phone.id, text="/help")
        await asyncio.sleep(0.3)  # the bot has taken the 12: three seconds of answers
        await endangered.press("Yes, I'm in danger now")
        await h.emulator.wait_for(
            lambda: any("102" in m.plain() for m in endangered.bot_messages()), timeout=30)
        answered = sum(1 for p in crowd for m in p.bot_messages() if "What I can do" in m.plain())
        assert answered < 12, "the emergency waited for the whole batch before it"
        await h.emulator.wait_for(
            lambda: all(any("What I can do" in m.plain() for m in p.bot_messages())
                        for p in crowd), timeout=30)
    finally:
        await h.stop()


async def test_a_surge_is_seen_while_each_update_in_hand_is_quick(db_url: str) -> None:
    """Few updates in hand, each answered within a quarter of a second, while Telegram's
    queue grows by seconds: the bot is behind all the same, and the woman in danger must not
    wait at the end of that queue."""
    # 200 answers at 40 a second: five seconds of backlog; 8 in hand wait 0.2 s each.
    h, endangered = await _started(db_url, per_second=40, concurrency=8)
    try:
        answered = await _crowd_then_danger(h, endangered, people=100)
        assert answered < 120, f"the emergency waited behind {answered} ordinary answers"
    finally:
        await h.stop()


async def test_a_burst_the_bot_clears_quickly_is_not_taken_for_a_surge() -> None:
    """The bot is behind a surge only if it could not get through what waits within half a
    second. Its pace is how often it finishes an update, not how long each stayed in hand:
    a specialist taking five cases at once has the fifth wait for the four before it, and
    those waits made a burst of 84 updates the bot got through in 0.4 s read as a second
    of work, so it confirmed everything before handling it (lost on a crash)."""
    from typing import Any, cast

    from bot.telegram.polling import BEHIND_SECONDS, Stream

    stream = Stream(cast(Any, None))
    start = 100.0
    for update_id in range(1, 17):  # 16 in hand at once; they finish 5 ms apart
        stream.taken_at[update_id] = start
    for n, update_id in enumerate(range(1, 17), 1):
        stream.done(update_id, start + 0.005 * n)  # the last one was in hand for 80 ms
    assert stream.backlog_seconds(84) < BEHIND_SECONDS

    # A minute without updates is not the pace of the next batch's first one.
    stream.taken_at[17] = start + 60
    stream.done(17, start + 60.005)
    assert stream.backlog_seconds(84) < BEHIND_SECONDS

    # Slow for real (Telegram's sending limit: one finished every 50 ms): behind.
    for update_id in range(18, 40):
        stream.taken_at[update_id] = start + 61
    for n, update_id in enumerate(range(18, 40), 1):
        stream.done(update_id, start + 61 + 0.05 * n)
    assert stream.backlog_seconds(84) > BEHIND_SECONDS
