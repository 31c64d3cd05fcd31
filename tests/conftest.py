"""Shared fixtures: the real bot over HTTP against the loopback emulator, real databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.harness import Harness


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'sezim.db'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def harness(db_url: str, clock: FakeClock) -> AsyncIterator[Harness]:
    h = Harness(db_url, clock=clock)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()
