"""The sandbox Zendesk's request limits: the plan's account limit per minute and the
separate 10-per-minute budget of incremental exports (which also count against the
account limit, as in Zendesk), with the rate-limit headers Zendesk sends."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque


class SlidingWindow:
    """Arrival times within the last `window_s`, for limits and `Retry-After`."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self.times: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.window_s:
            self.times.popleft()

    def remaining(self, now: float) -> int:
        self._trim(now)
        return max(self.limit - len(self.times), 0)

    def reset_in(self, now: float) -> float:
        self._trim(now)
        return self.times[0] + self.window_s - now if self.times else self.window_s

    def try_take(self, now: float) -> bool:
        self._trim(now)
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True


def max_in_window(times: list[float], window_s: float) -> int:
    """The most arrivals any window of `window_s` held (tests prove pacing with it)."""
    best, start = 0, 0
    for end, stamp in enumerate(times):
        while stamp - times[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


class RateLimiter:
    def __init__(
        self, lock: threading.RLock, account_limit: int, incremental_limit: int, window_s: float
    ) -> None:
        self.lock = lock
        self.account = SlidingWindow(account_limit, window_s)
        self.incremental = SlidingWindow(incremental_limit, window_s)
        self.incremental_times: list[float] = []
        self.refused: Counter[str] = Counter()

    def configure(self, account_limit: int, incremental_limit: int, window_s: float) -> None:
        with self.lock:
            self.account.limit, self.account.window_s = account_limit, window_s
            self.incremental.limit, self.incremental.window_s = incremental_limit, window_s

    def take(self, incremental: bool) -> tuple[bool, float]:
        """(allowed, seconds until a slot frees)."""
        with self.lock:
            now = time.monotonic()
            if incremental and self.incremental.remaining(now) == 0:
                self.refused["incremental"] += 1
                return False, self.incremental.reset_in(now)
            if not self.account.try_take(now):
                self.refused["account"] += 1
                return False, self.account.reset_in(now)
            if incremental:
                self.incremental.try_take(now)
                self.incremental_times.append(now)
            return True, 0.0

    def headers(self) -> dict[str, str]:
        with self.lock:
            now = time.monotonic()
            limit = str(self.account.limit)
            remaining = str(self.account.remaining(now))
            reset = str(max(math.ceil(self.account.reset_in(now)), 1))
        return {
            "x-rate-limit": limit,
            "x-rate-limit-remaining": remaining,
            "ratelimit-limit": limit,
            "ratelimit-remaining": remaining,
            "ratelimit-reset": reset,
        }
