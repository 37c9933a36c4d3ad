"""Reading Zendesk's rate-limit headers, and a client-side limiter for the endpoints whose
limit Zendesk does not announce in headers (incremental exports: 10 per minute).

Header spellings drift (reference/zendesk-api.md, section 5): `x-rate-limit[-remaining]`,
`ratelimit-limit/-remaining/-reset`, `rate-limit[-remaining/-reset]`, and structured
per-endpoint headers such as `zendesk-ratelimit-tickets-index: total=100; remaining=99;
resets=41`. The tightest of everything present wins.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_LIMIT_NAMES = ("x-rate-limit", "ratelimit-limit", "rate-limit")
_REMAINING_NAMES = ("x-rate-limit-remaining", "ratelimit-remaining", "rate-limit-remaining")
_RESET_NAMES = ("ratelimit-reset", "rate-limit-reset", "x-rate-limit-reset")
_STRUCTURED_PREFIXES = ("zendesk-ratelimit-", "zendesk-rate-limit-")
_STRUCTURED_FIELD = re.compile(r"(total|remaining|resets)\s*=\s*(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class RateLimitInfo:
    """The tightest budget announced by one response. `name` says which header won."""

    limit: int | None
    remaining: int | None
    reset_s: float | None
    name: str

    @property
    def fraction_left(self) -> float | None:
        if self.limit is None or self.remaining is None or self.limit <= 0:
            return None
        return self.remaining / self.limit


def _int(value: str | None) -> int | None:
    """A non-negative count, or None for anything else (`inf`, NaN, garbage, negatives):
    a header a proxy mangled must not break a call that succeeded."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return int(number)


def parse_structured(value: str) -> dict[str, float]:
    """`total=30; remaining=29; resets=60` -> {"total": 30, "remaining": 29, "resets": 60}."""
    return {key: float(number) for key, number in _STRUCTURED_FIELD.findall(value)}


def parse_rate_limit_headers(headers: Mapping[str, str]) -> RateLimitInfo | None:
    lowered = {key.lower(): value for key, value in headers.items()}
    candidates: list[RateLimitInfo] = []
    limit = next((v for n in _LIMIT_NAMES if (v := _int(lowered.get(n))) is not None), None)
    reset = next((v for n in _RESET_NAMES if (v := _int(lowered.get(n))) is not None), None)
    for name in _REMAINING_NAMES:
        remaining = _int(lowered.get(name))
        if remaining is not None:
            reset_s = float(reset) if reset is not None else None
            candidates.append(RateLimitInfo(limit, remaining, reset_s, name))
    for key, value in lowered.items():
        if key.startswith(_STRUCTURED_PREFIXES):
            fields = parse_structured(value)
            if "remaining" in fields:
                total = fields.get("total")
                candidates.append(
                    RateLimitInfo(
                        int(total) if total is not None else None,
                        int(fields["remaining"]),
                        fields.get("resets"),
                        key,
                    )
                )
    if not candidates:
        return None
    return min(candidates, key=lambda info: (info.remaining, -(info.reset_s or 0)))


class SlidingWindowLimiter:
    """At most `max_calls` requests in any `window_s`, counted from when each request
    finished. Zendesk counts a request when it arrives, which is never later than when its
    answer reaches us, so spacing by completion time can never overrun the server's window.
    In-flight requests hold a slot until they finish."""

    def __init__(
        self,
        max_calls: int,
        window_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_calls < 1 or window_s <= 0:
            raise ValueError("a limiter needs max_calls >= 1 and window_s > 0")
        self.max_calls = max_calls
        self.window_s = window_s
        self._clock = clock
        self._finished: deque[float] = deque()
        self._in_flight = 0
        self._cond = threading.Condition()
        self.waited_s = 0.0

    def acquire(self) -> None:
        with self._cond:
            while True:
                now = self._clock()
                while self._finished and self._finished[0] <= now - self.window_s:
                    self._finished.popleft()
                if len(self._finished) + self._in_flight < self.max_calls:
                    self._in_flight += 1
                    return
                oldest = self._finished[0] if self._finished else now
                wait = oldest + self.window_s - now
                self.waited_s += max(wait, 0.0)
                self._cond.wait(timeout=max(wait, 0.001))

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._finished.append(self._clock())
            self._cond.notify_all()
