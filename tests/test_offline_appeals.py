"""Offline appeals in the same statistics (issue 21 item 9): /log in a few taps, and
`sezim-bot appeal add` for a spreadsheet; the annual report counts channels and every
appeal together; a bad line is named and nothing is recorded."""

from __future__ import annotations

import asyncio
import secrets
from datetime import date
from pathlib import Path

from sqlalchemy import select

from bot.core.config import Settings
from bot.core.crypto import Crypto
from bot.core.db import create_engine, sessionmaker
from bot.core.i18n import Texts
from bot.core.migrate import upgrade
from bot.dev.harness import Harness
from bot.domain import stats
from models import Appeal
from tests.helpers import t
from tests.test_config import run_cli
from tests.test_quick_exit import press, send


def s(h: Harness, key: str, **values: object) -> str:
    return t(h, None, key, **values)


async def test_a_hotline_call_logged_in_a_few_taps_is_counted(harness: Harness) -> None:
    psychologist = await harness.add_staff("Nazira", ["psychologist"])
    await send(harness, psychologist, "/log")
    await press(harness, psychologist, s(harness, "channel_hotline"))
    await press(harness, psychologist, "Ошская область")
    await press(harness, psychologist, s(harness, "cat_psych"))
    await press(harness, psychologist, s(harness, "btn_skip"))  # for whom: not asked
    await press(harness, psychologist, s(harness, "outcome_psych"))
    done = psychologist.last().plain()
    assert done.startswith(s(harness, "log_done", summary=", ".join([
        s(harness, "channel_hotline"), "Ошская область", s(harness, "cat_psych"),
        s(harness, "outcome_psych")])).split(".")[0])
    assert harness.app is not None
    async with harness.app.bot_data.sessions() as session:
        (appeal,) = (await session.scalars(select(Appeal))).all()
        grids = await stats.annual_report(session, start=date(2026, 1, 1),
                                          end=date(2026, 12, 31),
                                          texts=harness.app.bot_data.texts, language="en")
    assert (appeal.channel, appeal.region, appeal.category, appeal.for_whom,
            appeal.outcome) == ("hotline", "osh", "psych", None, "psych")
    channels = next(g for g in grids if g.title == "Appeals by channel")
    assert ["Hotline calls", "1"] in channels.rows
    # A forged step is refused, and nothing more is recorded.
    cq = await psychologist.press_data(psychologist.last(), "s:lg:h:99")
    assert (await psychologist.answered(cq))["text"] == s(harness, "expired_button")


def test_appeal_add_records_a_spreadsheet_or_names_the_bad_line(tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(48)
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    env = {"SEZIM_SECRET_KEY": secret, "SEZIM_DATABASE_URL": url}
    asyncio.run(_empty(url))
    bad = tmp_path / "bad.csv"
    bad.write_text("date;channel;region;kind;for_whom;outcome\n"
                   "2026-03-02;hotline;bishkek;legal;me;legal\n"
                   "2026-03-03;hotline;mars;legal;me;legal\n", encoding="utf-8")
    result = run_cli("appeal", "add", str(bad), env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "line 3: region 'mars'" in result.stderr and "nothing was recorded" in result.stderr
    # Saved from Excel: a BOM, semicolons, an empty cell.
    good = tmp_path / "good.csv"
    good.write_text("\ufeffdate;channel;region;kind;for_whom;outcome\n"
                    "2026-03-02;hotline;bishkek;legal;me;legal\n"
                    "2026-03-03;walk_in;chui;;;shelter\n"
                    "2026-03-04;hotline;osh;psych;me;\n", encoding="utf-8")
    result = run_cli("appeal", "add", str(good), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "recorded 3 appeal(s): 2 hotline, 1 walk-in"
    report = run_cli("stats", "--report", "annual", "--from", "2026-01-01", "--to",
                     "2026-12-31", "--language", "en", "--during", "2026-03-01",
                     "2026-03-03", env=env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "Hotline calls" in report.stdout and "In person" in report.stdout
    assert "Appeals 2026-03-01 – 2026-03-03" in report.stdout
    counts = asyncio.run(_channels(url, secret))
    assert counts == {"hotline": 2, "walk_in": 1}


async def _empty(url: str) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()


async def _channels(url: str, secret: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with sessionmaker(engine)() as session:
            rows = (await session.scalars(select(Appeal.channel))).all()
            grids = await stats.annual_report(session, start=date(2026, 1, 1),
                                              end=date(2026, 12, 31),
                                              texts=Texts(Settings()), language="en")
        assert Crypto(secret)  # the same key made the database
        by_channel = next(g for g in grids if g.title == "Appeals by channel")
        assert by_channel.rows[-1] == ["Total", "3"]
        return {c: rows.count(c) for c in set(rows)}
    finally:
        await engine.dispose()
