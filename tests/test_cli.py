"""The command line: staff management and the retention purge, as an administrator uses them."""

from __future__ import annotations

import secrets
from pathlib import Path

from tests.test_config import run_cli


def test_staff_add_list_remove_and_purge(tmp_path: Path) -> None:
    env = {"SEZIM_SECRET_KEY": secrets.token_urlsafe(48),
           "SEZIM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    result = run_cli("staff", "add", "--telegram-id", "123456789", "--name", "Aigul",
                     "--role", "lawyer,coordinator", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = run_cli("staff", "list", env=env, cwd=tmp_path)
    assert "Aigul\tcoordinator,lawyer" in listed.stdout
    bad = run_cli("staff", "add", "--telegram-id", "5", "--name", "X", "--role", "wizard",
                  env=env, cwd=tmp_path)
    assert bad.returncode == 1 and "wizard" in bad.stderr and "Traceback" not in bad.stderr
    removed = run_cli("staff", "remove", "--telegram-id", "123456789", env=env, cwd=tmp_path)
    assert removed.returncode == 0 and "Aigul" in removed.stdout
    assert "Aigul" not in run_cli("staff", "list", env=env, cwd=tmp_path).stdout
    again = run_cli("staff", "remove", "--telegram-id", "123456789", env=env, cwd=tmp_path)
    assert again.returncode == 1
    # The Telegram id is not stored in the clear.
    assert b"123456789" not in (tmp_path / "cli.db").read_bytes()
    purge = run_cli("purge", env=env, cwd=tmp_path)
    assert purge.returncode == 0 and "purged" in purge.stdout


def test_rotate_key_from_the_command_line(tmp_path: Path) -> None:
    old, new = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    url = f"sqlite+aiosqlite:///{tmp_path / 'rot.db'}"
    env = {"SEZIM_SECRET_KEY": old, "SEZIM_DATABASE_URL": url}
    assert run_cli("staff", "add", "--telegram-id", "42", "--name", "Aigul", "--role",
                   "lawyer", env=env, cwd=tmp_path).returncode == 0
    single = run_cli("rotate-key", env=env, cwd=tmp_path)
    assert single.returncode == 2 and "NEW,OLD" in single.stderr
    rotated = run_cli("rotate-key", env={**env, "SEZIM_SECRET_KEY": f"{new},{old}"},
                      cwd=tmp_path)
    assert rotated.returncode == 0 and "1 staff member" in rotated.stdout
    # With only the new key the member is still found (and removable).
    removed = run_cli("staff", "remove", "--telegram-id", "42",
                      env={**env, "SEZIM_SECRET_KEY": new}, cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr


def test_a_key_the_database_was_not_made_with_is_refused_in_one_line(tmp_path: Path) -> None:
    """The admin mistypes SEZIM_SECRET_KEY at 2 a.m.: nothing starts, nobody is silently
    locked out; during a rotation either key order is explained."""
    old, new, typo = (secrets.token_urlsafe(48) for _ in range(3))
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    env = {"SEZIM_SECRET_KEY": old, "SEZIM_DATABASE_URL": url}
    assert run_cli("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    assert run_cli("staff", "add", "--telegram-id", "42", "--name", "Aigul", "--role",
                   "coordinator", env=env, cwd=tmp_path).returncode == 0
    for command in (("staff", "list"), ("purge",), ("db", "upgrade"),
                    ("run",)):
        wrong = run_cli(*command, env={**env, "SEZIM_SECRET_KEY": typo,
                                       "SEZIM_BOT_TOKEN": "123456:" + "a" * 35}, cwd=tmp_path)
        assert wrong.returncode == 2, (command, wrong.stderr)
        lines = wrong.stderr.strip().splitlines()
        assert len(lines) == 1 and "not the key this database was created with" in lines[0]
        assert typo not in wrong.stderr
    # NEW,OLD: both accepted while the rotation runs; rotate-key moves the check to NEW.
    both = {**env, "SEZIM_SECRET_KEY": f"{new},{old}"}
    assert "Aigul" in run_cli("staff", "list", env=both, cwd=tmp_path).stdout
    wrong_order = run_cli("rotate-key", env={**env, "SEZIM_SECRET_KEY": f"{old},{new}"},
                          cwd=tmp_path)
    assert wrong_order.returncode == 2 and "give the new key first" in wrong_order.stderr
    assert run_cli("rotate-key", env=both, cwd=tmp_path).returncode == 0
    assert "Aigul" in run_cli("staff", "list", env={**env, "SEZIM_SECRET_KEY": new},
                              cwd=tmp_path).stdout
    assert run_cli("staff", "list", env=env, cwd=tmp_path).returncode == 2  # old alone
    # The old key first after the rotation: refused, and said why.
    after = run_cli("staff", "list", env={**env, "SEZIM_SECRET_KEY": f"{old},{new}"},
                    cwd=tmp_path)
    assert after.returncode == 2 and "lists the old key first" in after.stderr


def test_a_database_made_before_the_key_check_adopts_only_a_key_that_reads_it(
    tmp_path: Path,
) -> None:
    import sqlite3

    key, typo = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    env = {"SEZIM_SECRET_KEY": key, "SEZIM_DATABASE_URL": url}
    assert run_cli("staff", "add", "--telegram-id", "42", "--name", "Aigul", "--role",
                   "lawyer", env=env, cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute("DELETE FROM key_check")  # as a database from before the check was
    wrong = run_cli("staff", "list", env={**env, "SEZIM_SECRET_KEY": typo}, cwd=tmp_path)
    assert wrong.returncode == 2 and "not the key" in wrong.stderr
    assert "Aigul" in run_cli("staff", "list", env=env, cwd=tmp_path).stdout


def test_staff_add_is_repeatable_and_list_shows_id_roles_and_duty(tmp_path: Path) -> None:
    env = {"SEZIM_SECRET_KEY": secrets.token_urlsafe(48),
           "SEZIM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 's.db'}"}
    first = run_cli("staff", "add", "--telegram-id", "123456789", "--name", "Айгүл",
                    "--role", "lawyer", env=env, cwd=tmp_path)
    assert first.returncode == 0 and first.stdout.startswith("added Айгүл")
    again = run_cli("staff", "add", "--telegram-id", "123456789", "--name", "Айгүл",
                    "--role", "lawyer,coordinator", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("updated Айгүл (coordinator, lawyer)")
    clash = run_cli("staff", "add", "--telegram-id", "5", "--name", "АЙГҮЛ", "--role",
                    "psychologist", env=env, cwd=tmp_path)
    assert clash.returncode == 1 and "already called" in clash.stderr
    assert "Traceback" not in again.stderr + clash.stderr
    listed = run_cli("staff", "list", env=env, cwd=tmp_path).stdout.splitlines()
    assert listed == ["Айгүл\tcoordinator,lawyer\t123456789\toff duty"]


def test_what_the_bot_writes_is_readable_by_its_user_only(tmp_path: Path) -> None:
    import os
    import stat

    env = {"SEZIM_SECRET_KEY": secrets.token_urlsafe(48),
           "SEZIM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"}
    before = os.umask(0o022)  # a server's usual umask: the bot sets its own
    try:
        assert run_cli("staff", "add", "--telegram-id", "42", "--name", "Aigul", "--role",
                       "lawyer", env=env, cwd=tmp_path).returncode == 0
    finally:
        os.umask(before)
    written = [p for p in tmp_path.iterdir() if p.name.startswith("p.db")]
    assert written and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in written)
    out = tmp_path / "figures.csv"
    out.write_text("old", encoding="utf-8")
    out.chmod(0o644)
    assert run_cli("stats", "--format", "csv", "--out", str(out), env=env,
                   cwd=tmp_path).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and out.read_text() != "old"
    # A database others can read: one line says so, and how to fix it.
    (tmp_path / "p.db").chmod(0o644)
    listed = run_cli("staff", "list", env=env, cwd=tmp_path)
    warnings = [line for line in listed.stderr.splitlines() if "readable by other" in line]
    assert len(warnings) == 1 and "chmod 600" in warnings[0]


def test_a_database_that_cannot_be_reached_is_one_line_without_the_password(
    tmp_path: Path,
) -> None:
    env = {"SEZIM_SECRET_KEY": secrets.token_urlsafe(48),
           "SEZIM_DATABASE_URL": "postgresql+asyncpg://sezim@127.0.0.1:1/sezim",
           "SEZIM_DATABASE_PASSWORD": "hunter2-the-password"}
    for command in (("staff", "list"), ("db", "upgrade"), ("purge",)):
        result = run_cli(*command, env=env, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "the database cannot be reached" in lines[0]
        assert "hunter2" not in result.stderr + result.stdout


def test_the_audit_log_from_the_command_line(tmp_path: Path) -> None:
    env = {"SEZIM_SECRET_KEY": secrets.token_urlsafe(48),
           "SEZIM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"}
    for telegram_id, name in (("123456781", "Aigul"), ("123456782", "Nazira")):
        assert run_cli("staff", "add", "--telegram-id", telegram_id, "--name", name,
                       "--role", "lawyer", env=env, cwd=tmp_path).returncode == 0
    result = run_cli("audit", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(who, action) for _, who, action, _, _ in lines] == [
        ("cli", "staff.add"), ("cli", "staff.add")]
    assert "12345678" not in result.stdout  # Telegram ids are not in the log
    nobody = run_cli("audit", "--member", "Zarina", env=env, cwd=tmp_path)
    assert nobody.returncode == 1 and "nothing by 'Zarina'" in nobody.stderr
    old = run_cli("audit", "--from", "2020-01-01", "--to", "2020-12-31", env=env, cwd=tmp_path)
    assert old.returncode == 0 and old.stdout == ""
