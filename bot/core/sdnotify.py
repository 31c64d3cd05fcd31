"""systemd's service notifications (sd_notify), in the protocol's few lines.

Under `Type=notify` the service says READY=1 once it answers people, pings WATCHDOG=1 from
its polling loop (so a bot stuck anywhere is restarted after `WatchdogSec=`) and says
STOPPING=1 on the way out. Outside systemd ($NOTIFY_SOCKET unset) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send one notification ("READY=1", "WATCHDOG=1", ...); False if not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError as exc:
        log.warning("systemd notification failed: %s", type(exc).__name__)
        return False
    return True


class Watchdog:
    """WATCHDOG=1 at half systemd's interval ($WATCHDOG_USEC), however often `alive` is
    called; nothing when systemd does not watch this process."""

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.interval = int(usec) / 2_000_000 if watched else None
        self._last = 0.0

    def alive(self) -> None:
        if self.interval is None:
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            notify("WATCHDOG=1")
