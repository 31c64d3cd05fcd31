"""Per-sender flood limits in bounded memory."""

from __future__ import annotations

import time
from collections import OrderedDict, deque

MAX_TRACKED_SENDERS = 10_000


class FloodGuard:
    """A per-sender sliding window over the last minute, in bounded memory.

    Only the newest `MAX_TRACKED_SENDERS` senders are tracked, so a flood from many
    strangers cannot grow the process; each is told once per window to slow down.
    """

    def __init__(self, per_minute: int, capacity: int = MAX_TRACKED_SENDERS) -> None:
        self.per_minute = per_minute
        self.capacity = capacity
        self._windows: OrderedDict[int, deque[float]] = OrderedDict()
        self._warned: dict[int, float] = {}

    @property
    def tracked(self) -> int:
        """How many senders it remembers now (never more than its capacity)."""
        return len(self._windows)

    def allow(self, sender: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        window = self._windows.pop(sender, None) or deque(maxlen=self.per_minute + 1)
        self._windows[sender] = window
        while window and now - window[0] > 60:
            window.popleft()
        window.append(now)
        while len(self._windows) > self.capacity:
            old, _ = self._windows.popitem(last=False)
            self._warned.pop(old, None)
        return len(window) <= self.per_minute

    def should_warn(self, sender: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        last = self._warned.get(sender)
        if last is not None and now - last < 60:
            return False
        self._warned[sender] = now
        while len(self._warned) > self.capacity:
            self._warned.pop(next(iter(self._warned)))
        return True
