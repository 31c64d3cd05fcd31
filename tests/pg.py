"""A throw-away PostgreSQL server for the tests: initdb in a temporary directory, a free
loopback port, stopped at the end. As root it runs as the `postgres` user (initdb refuses
root). Where no server binaries exist the PostgreSQL tests are skipped, except in CI
(CI=true), where that is an error: CI must run them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SEARCH = [f"/usr/lib/postgresql/{v}/bin" for v in (17, 16, 15, 14, 13)]


def find_bin(name: str) -> str | None:
    for directory in SEARCH:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Each running server's start and stop commands, by port (a test restarts it).
CONTROLS: dict[int, tuple[list[str], list[str]]] = {}


def restart_control(url: str) -> tuple[list[str], list[str]]:
    """The commands that start and stop the server behind `url`."""
    port = int(url.split("@127.0.0.1:")[1].split("/")[0])
    return CONTROLS[port]


@contextmanager
def debian_like_server() -> Iterator[tuple[int, str]]:
    """A server set up as Debian's package sets one up: the `postgres` superuser reached
    through the local socket by peer authentication, passwords (scram-sha-256) over TCP.
    Yields its port and socket directory (the README's commands reach it through PGPORT
    and PGHOST)."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if not initdb or not pg_ctl or os.geteuid() != 0:
        raise FileNotFoundError("PostgreSQL server binaries and root are needed")
    prefix = ["runuser", "-u", "postgres", "--"]
    tmp = tempfile.mkdtemp(prefix="sezim-pgd-")
    shutil.chown(tmp, user="postgres")
    os.chmod(tmp, 0o755)
    data = Path(tmp) / "data"
    port = _free_port()
    subprocess.run([*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth-local=peer",
                    "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale"],
                   check=True, capture_output=True)
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-l", str(Path(tmp) / "server.log"), "-w", "-t",
         "60", "-o", f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off",
         "start"], check=True, capture_output=True)
    try:
        yield port, tmp
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields an asyncpg SQLAlchemy URL of a fresh, empty database."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    tmp = tempfile.mkdtemp(prefix="sezim-pg-")
    data = Path(tmp) / "data"
    if as_root:
        shutil.chown(tmp, user="postgres")
        os.chmod(tmp, 0o700)
    port = _free_port()
    subprocess.run([*prefix, initdb, "-D", str(data), "-U", "sezim", "--auth=trust",
                    "-E", "UTF8", "--no-locale"], check=True, capture_output=True)
    log = Path(tmp) / "server.log"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
         f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
        check=True, capture_output=True,
    )
    url = f"postgresql+asyncpg://sezim@127.0.0.1:{port}/postgres"
    start = [*prefix, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
             f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]
    stop = [*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]
    CONTROLS[port] = (start, stop)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
