"""Coverage (issue 21 item 8): when a case waits and nobody of its role is on duty, the
coordinators are told once per gap, with the next shift's start; /roster shows who is on
duty now and the gaps of the next seven days."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.core.clock import FakeClock
from bot.dev.emulator import Phone
from bot.dev.harness import Harness
from tests.helpers import client_asks, t

# Aigul, the lawyer, works Tuesdays 14:00-18:00; the clock starts Tuesday 10:00 in Bishkek.
ROSTER = [{"member": "Aigul", "role": "lawyer", "days": ["tue"], "start": "14:00:00",
           "end": "18:00:00"}]


def s(h: Harness, key: str, **values: object) -> str:
    return t(h, None, key, **values)


def alerts(phone: Phone) -> list[str]:
    return [m.plain() for m in phone.bot_messages() if m.plain().startswith("⚠")]


@pytest.fixture
async def team(db_url: str, clock: FakeClock) -> AsyncIterator[tuple[Harness, Phone, Phone]]:
    h = Harness(db_url, clock=clock, roster=ROSTER)
    await h.start()
    try:
        coordinator = await h.add_staff("Gulnara", ["coordinator"], on_duty=None)
        psychologist = await h.add_staff("Nazira", ["psychologist"])
        await h.add_staff("Aigul", ["lawyer"], on_duty=None)
        await h.stop_bot()
        await h.start_bot()  # the roster is loaded at start
        yield h, coordinator, psychologist
    finally:
        await h.stop()


async def test_coordinators_are_told_once_per_gap_with_the_next_shift(
    team: tuple[Harness, Phone, Phone], clock: FakeClock,
) -> None:
    h, coordinator, _ = team
    lawyer_role = s(h, "role_lawyer")
    await client_asks(h, category="legal", name="First")
    today = s(h, "slot_today", time="14:00")
    assert alerts(coordinator) == [
        s(h, "coverage_gap", number=1, role=lawyer_role, time=today)]
    # A second legal request in the same gap: no second alert.
    await client_asks(h, category="legal", name="Second")
    # A psychologist is on duty: her cases raise none.
    await client_asks(h, category="psych", name="Third")
    assert len(alerts(coordinator)) == 1
    # 14:30: the lawyer's shift covers the role, and ends the gap.
    clock.set(datetime(2026, 12, 1, 8, 30, tzinfo=UTC))
    await client_asks(h, category="legal", name="Fourth")
    assert len(alerts(coordinator)) == 1
    # 19:00: a new gap, told again, with next Tuesday's shift.
    clock.set(datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
    await client_asks(h, category="legal", name="Fifth")
    assert alerts(coordinator)[1:] == [
        s(h, "coverage_gap", number=5, role=lawyer_role, time="08.12 14:00")]


async def test_roster_shows_who_is_on_duty_and_the_gaps_of_the_week(
    team: tuple[Harness, Phone, Phone],
) -> None:
    h, coordinator, psychologist = team
    await coordinator.send("/roster")
    await h.settle()
    text = coordinator.last().plain()
    assert s(h, "roster_now") in text
    assert f"Nazira ({s(h, 'role_psychologist')})" in text
    assert "Gulnara" not in text  # a coordinator takes no cases
    # The lawyer's week has gaps around her Tuesday shift: before it, today.
    lawyer_line = next(line for line in text.splitlines()
                       if line.startswith(s(h, "role_lawyer") + ":"))
    assert s(h, "slot_today", time="10:00") + " – 14:00" in lawyer_line
    # The psychologist has no roster at all: the whole week is a gap on the roster.
    assert any(line.startswith(s(h, "role_psychologist") + ":") for line in text.splitlines())
    # Every specialist has it in her menu.
    assert "roster" in h.emulator.menu_for(psychologist.id, "ru")
