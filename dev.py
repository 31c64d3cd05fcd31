#!/usr/bin/env python3
"""One entry point that needs nothing but Python 3.11+.

    python3 dev.py demo        the bot against the built-in Telegram emulator
    python3 dev.py test        lint (ruff), types (mypy) and the whole test suite
    python3 dev.py run ...     any `sezim-bot` command, e.g. `python3 dev.py run staff list`

It creates `.venv` and installs the locked dependencies the first time (and again only
when pyproject.toml or requirements.lock change).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".sezim-installed"
LOCK = ROOT / "requirements.lock"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", LOCK):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_environment() -> Path:
    """The project's virtual environment with the locked dependencies installed."""
    python = BIN / "python"
    if not python.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not STAMP.exists() or STAMP.read_text() != _fingerprint():
        print("installing locked dependencies (first run takes a minute) ...", flush=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "-c", str(LOCK), "-e", f"{ROOT}[dev]"], check=True)
        STAMP.write_text(_fingerprint())
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "run"):
        print(__doc__)
        return 2
    python = ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "demo":
        return subprocess.call([str(python), "-m", "bot", "demo", *rest], cwd=ROOT)
    if command == "run":
        return subprocess.call([str(python), "-m", "bot", *rest])
    steps = [
        [str(python), "-m", "ruff", "check", "bot", "handlers", "models", "migrations",
         "tests", "bench", "dev.py"],
        [str(python), "-m", "mypy", "bot", "handlers", "models"],
        [str(python), "-m", "pytest", "-q", *rest],
    ]
    for step in steps:
        print("$", " ".join(Path(step[0]).name if i == 0 else a for i, a in enumerate(step)),
              flush=True)
        code = subprocess.call(step, cwd=ROOT)
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
