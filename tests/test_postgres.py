"""The same journeys on a real PostgreSQL server: the SQL that differs by database
(upserts, RETURNING claims, month grouping, covering-index hints) runs there too."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import insert

from bot.core.clock import FakeClock
from bot.dev.harness import Harness
from bot.domain import sample, stats
from bot.telegram import scheduling
from models import Appeal, CaseStatus
from tests.helpers import cases, client_asks, t

pytestmark = pytest.mark.postgres


async def test_a_whole_journey_on_postgres(pg_url: str, clock: FakeClock) -> None:
    h = Harness(pg_url, clock=clock)
    await h.start()
    try:
        first = await h.add_staff("Aigul", ["lawyer"])
        second = await h.add_staff("Bermet", ["lawyer"])
        client = h.phone("Client", language_code="ky")
        await client.send("/start")
        await h.settle()
        for key in ("btn_danger_no", "btn_safe_shared", "for_me", "cat_legal"):
            await client.press(t(h, "ky", key))
            await h.settle()
        await client.press("Нарын облусу")
        await h.settle()
        for key in ("btn_skip", "contact_chat_now", "btn_send"):
            await client.press(t(h, "ky", key))
            await h.settle()
        (case,) = await cases(h)
        assert (case.category, case.region, case.language) == ("legal", "naryn", "ky")
        # Escalation: the claim uses UPDATE ... RETURNING.
        clock.advance(minutes=16)
        assert h.app is not None
        assert await scheduling.run_due(h.app) >= 1
        await h.settle()
        holder = first if any(t(h, None, "btn_take") in " ".join(first.buttons(m))
                              for m in first.bot_messages()) else second
        await holder.press(t(h, None, "btn_take"))
        await h.settle()
        await client.send("саламатсызбы")
        await h.settle()
        assert holder.bot_messages()[-1].plain() == "саламатсызбы"
        # Quick exit: message ids were recorded with PostgreSQL's ON CONFLICT DO NOTHING.
        await client.press(t(h, "ky", "btn_exit"))
        await h.settle()
        assert [m.plain() for m in client.messages()] == [t(h, "ky", "exit_done")]
        (case,) = await cases(h)
        assert case.status == CaseStatus.PAUSED and case.paused_from == CaseStatus.ACTIVE
    finally:
        await h.stop()


async def test_the_annual_report_on_postgres(pg_url: str) -> None:
    h = Harness(pg_url)
    await h.start()
    try:
        assert h.app is not None
        async with h.app.bot_data.sessions() as session, session.begin():
            await session.execute(insert(Appeal), sample.appeals_2020(h.app.bot_data.crypto))
        async with h.app.bot_data.sessions() as session:
            grids = await stats.annual_report(session, start=date(2020, 1, 1),
                                              end=date(2020, 12, 31), texts=h.app.bot_data.texts,
                                              language="en")
            by_month = await stats.breakdown(session, start=date(2020, 1, 1),
                                             end=date(2020, 12, 31), by=["region", "month"])
        text = stats.report_text(grids, "2020")
        assert "410 consultations for 297 people" in text
        assert by_month.total[0] == 1184 + sample.HOTLINE_CALLS == 2110
        assert {k[1] for k in by_month.cells} == {f"2020-{m:02d}" for m in range(1, 13)}
    finally:
        await h.stop()


async def test_requests_sent_at_the_same_moment_go_round_the_team(pg_url: str) -> None:
    """Requests created at once run in transactions that do not see each other's offers:
    they still go to different specialists, not all to the same one."""
    h = Harness(pg_url)
    await h.start()
    try:
        team = [await h.add_staff(name, ["psychologist"]) for name in ("Aigul", "Bermet")]
        clients = [await client_asks(h, category="psych", name=f"C{i}", send=False)
                   for i in range(4)]
        for phone in clients:  # all four press "send" before the bot answers any
            await phone.press(t(h, "en", "btn_send"))
        await h.settle()
        assert len(await cases(h)) == 4
        take = t(h, None, "btn_take")
        shares = [sum(take in member.buttons(m) for m in member.bot_messages())
                  for member in team]
        # 2 and 2 when none sees another's offer; 3 and 1 when some do part-way.
        assert sum(shares) == 4 and min(shares) >= 1, shares
    finally:
        await h.stop()


async def test_postgres_restarting_under_the_bot_loses_nothing(
    pg_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """The server is restarted (an upgrade, a reboot) while a woman writes: the bot says
    so in one line per attempt, never exits, and answers her once the database is back."""
    import subprocess

    from tests.pg import restart_control

    start, stop = restart_control(pg_url)
    # Down before the bot even starts: it waits for it.
    await asyncio.to_thread(subprocess.run, stop, check=True, capture_output=True)
    h = Harness(pg_url)
    starting = asyncio.create_task(h.start())
    await asyncio.sleep(2.5)
    assert not starting.done()
    await asyncio.to_thread(subprocess.run, start, check=True, capture_output=True)
    await asyncio.wait_for(starting, 60)
    try:
        first = h.phone("Aida", language_code="en")
        await first.send("/start")
        await h.settle()
        assert "Are you in danger right now?" in first.last().plain()
        await asyncio.to_thread(subprocess.run, stop, check=True, capture_output=True)
        second = h.phone("Bermet", language_code="en")
        await second.send("/start")
        await asyncio.sleep(3)
        assert second.bot_messages() == []  # nothing said while it cannot be handled
        await asyncio.to_thread(subprocess.run, start, check=True, capture_output=True)
        await h.settle(timeout=60)
        assert "Are you in danger right now?" in second.last().plain()
        assert len(second.bot_messages()) == 1  # once, not twice
        assert h.running  # the bot never stopped
    finally:
        await h.stop()
    waits = [r for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert waits and all(r.exc_info is None for r in waits)
    assert any("is back" in r.getMessage() for r in caplog.records)


def test_the_readmes_postgresql_steps_work_as_written(tmp_path: Path) -> None:
    """README "Going live", PostgreSQL: the two commands as the postgres user, the URL in
    the config without the password, the password in the env file; a wrong one is one
    line. (The server is on a test port, given as PGPORT/PGHOST, as libpq reads them.)"""
    import os
    import secrets
    import shutil
    import subprocess

    from tests.pg import debian_like_server
    from tests.test_config import run_cli

    try:
        server = debian_like_server()
        port, socket_dir = server.__enter__()
    except FileNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(str(exc))
    try:
        env = {**os.environ, "PGPORT": str(port), "PGHOST": socket_dir}
        password = "a password " + secrets.token_hex(4)
        # `sudo -u postgres` as the README says, or runuser where sudo is not installed.
        as_postgres = ["sudo", "-E", "-u", "postgres"] if shutil.which("sudo") else \
            ["runuser", "-u", "postgres", "--"]
        subprocess.run([*as_postgres, "createuser", "--pwprompt", "sezim"],
                       input=f"{password}\n{password}\n", text=True, env=env, check=True,
                       capture_output=True, timeout=60)
        subprocess.run([*as_postgres, "createdb", "--owner", "sezim", "sezim"], env=env,
                       check=True, capture_output=True, timeout=60)
        config = tmp_path / "config.toml"
        config.write_text('[database]\nurl = "postgresql+asyncpg://sezim@127.0.0.1:'
                          f'{port}/sezim"\n', encoding="utf-8")
        secrets_env = {"SEZIM_SECRET_KEY": secrets.token_urlsafe(48),
                       "SEZIM_DATABASE_PASSWORD": password}
        upgrade = run_cli("db", "upgrade", "--config", str(config), env=secrets_env,
                          cwd=tmp_path)
        assert upgrade.returncode == 0, upgrade.stderr
        added = run_cli("staff", "add", "--telegram-id", "42", "--name", "Aigul", "--role",
                        "lawyer", "--config", str(config), env=secrets_env, cwd=tmp_path)
        assert added.returncode == 0, added.stderr
        wrong = run_cli("staff", "list", "--config", str(config),
                        env={**secrets_env, "SEZIM_DATABASE_PASSWORD": "not it"},
                        cwd=tmp_path)
        assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1
        assert "refused the login" in wrong.stderr
        assert "not it" not in wrong.stderr and "Traceback" not in wrong.stderr
    finally:
        server.__exit__(None, None, None)
