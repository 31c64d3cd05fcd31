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
