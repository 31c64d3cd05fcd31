"""README "Going live" as a volunteer sysadmin follows it: deploy/install.sh run as root into
a scratch root directory (a user, the directories and their owners, a production install
without development tools, the migrations, the pre-flight check), and the service unit
checked by systemd's own tools."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "sezim-bot.service"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("useradd", "setpriv", "tar")),
    reason="the install script runs as root, with useradd and setpriv")


@pytest.fixture(scope="module")
def installed() -> Iterator[tuple[Path, str]]:
    # Under /tmp itself: the service user must be able to reach the scratch root.
    root = Path(tempfile.mkdtemp(prefix="sezim-root-", dir="/tmp"))
    root.chmod(0o755)
    try:
        result = subprocess.run(["bash", str(ROOT / "deploy" / "install.sh")],
                                env={**os.environ, "SEZIM_ROOT": str(root)},
                                capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, result.stdout + result.stderr
        yield root, result.stdout + result.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _owner(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


@needs_root
def test_the_install_script_makes_a_private_service_and_checks_it(
    installed: tuple[Path, str],
) -> None:
    root, output = installed
    passwd = {line.split(":")[0]: line.split(":") for line in
              (root / "etc" / "passwd").read_text().splitlines()}
    user = passwd["sezim-bot"]
    uid, gid = int(user[2]), int(user[3])
    assert user[6] == "/usr/sbin/nologin" and uid != 0
    # The code is root's; the service can read it and change nothing.
    code = root / "opt" / "sezim-bot"
    assert _owner(code)[:2] == (0, 0) and not _owner(code)[2] & 0o022
    assert not _owner(code / "bot" / "cli.py")[2] & 0o022
    # A production install: the bot, and none of the development tools.
    venv = code / ".venv" / "bin"
    assert (venv / "sezim-bot").exists()
    for tool in ("pytest", "ruff", "mypy"):
        assert not (venv / tool).exists(), tool
    # Configuration readable by the service's group, secrets by root only.
    conf = root / "etc" / "sezim-bot"
    assert _owner(conf / "config.toml") == (0, gid, 0o640)
    assert _owner(conf / "env") == (0, 0, 0o600)
    assert "SEZIM_SECRET_KEY=" in (conf / "env").read_text()
    # The state: the service's own, and the database in it, made by the migrations.
    state = root / "var" / "lib" / "sezim-bot"
    assert _owner(state) == (uid, gid, 0o700)
    assert _owner(state / "sezim.db") == (uid, gid, 0o600)
    # The pre-flight ran: the database is right, and the missing token is said plainly.
    assert "ok    database" in output and "FAIL  token" in output
    assert "SEZIM_BOT_TOKEN is not set" in output
    # Packaging gives no warnings (licence, the content package).
    assert "BuildBackendWarning" not in output and "SetuptoolsDeprecationWarning" not in output


@needs_root
def test_running_it_again_upgrades_and_keeps_the_key_and_the_data(
    installed: tuple[Path, str],
) -> None:
    root, _ = installed
    env = (root / "etc" / "sezim-bot" / "env").read_text()
    wrapper = root / "usr" / "local" / "bin" / "sezim-bot"
    added = subprocess.run([str(wrapper), "staff", "add", "--telegram-id", "42", "--name",
                            "Aigul", "--role", "lawyer"], capture_output=True, text=True,
                           timeout=120)
    assert added.returncode == 0, added.stderr
    again = subprocess.run(["bash", str(ROOT / "deploy" / "install.sh")],
                           env={**os.environ, "SEZIM_ROOT": str(root)},
                           capture_output=True, text=True, timeout=1200)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (root / "etc" / "sezim-bot" / "env").read_text() == env
    listed = subprocess.run([str(wrapper), "staff", "list"], capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0 and "Aigul\tlawyer\t42" in listed.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (CI installs it)")
def test_the_unit_is_valid_and_hardened(tmp_path: Path) -> None:
    # `verify` wants the programs the unit names: point them at a stand-in.
    program = tmp_path / "sezim-bot"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    unit = tmp_path / "sezim-bot.service"
    unit.write_text(UNIT.read_text().replace("/opt/sezim-bot/.venv/bin/sezim-bot",
                                             str(program)))
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, timeout=60)
    problems = [line for line in (verify.stdout + verify.stderr).splitlines()
                if "sezim-bot.service" in line]
    assert verify.returncode == 0 and not problems, verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                               "--threshold=20", str(UNIT)],
                              capture_output=True, text=True, timeout=60)
    assert security.returncode == 0, security.stdout[-2000:]
    assert "Overall exposure level" in security.stdout
