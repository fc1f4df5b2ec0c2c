"""Flow control for one endpoint: adaptive concurrency (AIMD) and rate caps.

:class:`AdaptiveLimiter` keeps at most ``limit`` calls in flight. The limit starts at the
configured maximum, halves when the endpoint signals overload (429, 503, a timeout) and
grows back by one per ``limit`` successful calls, like TCP's congestion window. A
Retry-After from the server pauses every new call until it has passed.

:class:`RateLimiter` caps requests per minute and tokens per minute. Requests are spaced
evenly; tokens are reserved before a call (prompt estimate plus the completion budget)
and settled with the real usage afterwards.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class LimiterState:
    """A snapshot for progress displays and summaries."""

    limit: int
    in_flight: int
    decreases: int
    paused_until: float


class AdaptiveLimiter:
    """AIMD concurrency limit for one endpoint.

    Args:
        max_limit: the ceiling (the user's ``concurrency``); also the starting limit.
        min_limit: the floor the limit never goes below.
        decrease_factor: the limit is multiplied by this on overload.
        cooldown: seconds after a decrease during which further overload signals do not
            decrease again (the calls already in flight were sent at the old rate).
        adaptive: ``False`` keeps the limit fixed at ``max_limit`` (a plain semaphore).
    """

    def __init__(
        self,
        max_limit: int,
        *,
        min_limit: int = 1,
        decrease_factor: float = 0.5,
        cooldown: float = 2.0,
        adaptive: bool = True,
    ) -> None:
        if max_limit < 1:
            raise ValueError(f"concurrency must be >= 1, got {max_limit}")
        self.max_limit = max_limit
        self.min_limit = max(1, min(min_limit, max_limit))
        self.decrease_factor = decrease_factor
        self.cooldown = cooldown
        self.adaptive = adaptive
        self._limit = float(max_limit)
        self._in_flight = 0
        self._decreases = 0
        self._last_decrease = -1e9
        self._paused_until = 0.0
        self._cond: asyncio.Condition | None = None

    @property
    def limit(self) -> int:
        return max(self.min_limit, int(self._limit))

    def state(self) -> LimiterState:
        return LimiterState(self.limit, self._in_flight, self._decreases, self._paused_until)

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self) -> None:
        """Wait for a free slot (and for any Retry-After pause to pass)."""
        cond = self._condition()
        while True:
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            async with cond:
                if self._in_flight < self.limit:
                    self._in_flight += 1
                    return
                await cond.wait()  # woken by release(); then re-check the pause

    async def release(self, outcome: str) -> None:
        """Free a slot. ``outcome``: ``"ok"``, ``"overload"`` or ``"error"`` (neither)."""
        cond = self._condition()
        async with cond:
            limit_before = self.limit
            self._in_flight -= 1
            if self.adaptive:
                if outcome == "ok" and self._limit < self.max_limit:
                    self._limit = min(self.max_limit, self._limit + 1.0 / max(self._limit, 1.0))
                elif outcome == "overload":
                    now = time.monotonic()
                    if now - self._last_decrease >= self.cooldown:
                        self._limit = max(self.min_limit, self._limit * self.decrease_factor)
                        self._last_decrease = now
                        self._decreases += 1
            # One slot was freed (and at most one more if the limit just grew): wake that
            # many waiters, not all of them (a woken waiter that finds no slot waits again).
            grew = self.limit > limit_before
            if self._in_flight < self.limit:
                cond.notify(1 + int(grew))

    def pause(self, seconds: float) -> None:
        """Hold every new call for ``seconds`` (the server's Retry-After)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute caps (either may be ``None``: no cap).

    Args:
        rpm: most requests started per minute; requests are spaced ``60 / rpm`` apart.
        tpm: most tokens (prompt + completion) per minute, a token bucket holding at most
            one minute's worth.
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        self.rpm = rpm
        self.tpm = tpm
        self._next_request = 0.0
        self._tokens = float(tpm or 0)
        self._refilled = time.monotonic()
        self._lock: asyncio.Lock | None = None

    @property
    def active(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    async def acquire(self, tokens: int) -> int:
        """Wait until a request of about ``tokens`` tokens may start; returns the number
        of tokens reserved (pass it to :meth:`settle`)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # first come, first served
            delay = 0.0
            now = time.monotonic()
            if self.rpm is not None:
                start = max(now, self._next_request)
                self._next_request = start + 60.0 / self.rpm
                delay = start - now
            reserved = 0
            if self.tpm is not None:
                reserved = min(max(tokens, 1), int(self.tpm))
                self._refill()
                shortfall = reserved - self._tokens
                if shortfall > 0:
                    delay = max(delay, shortfall * 60.0 / self.tpm)
                self._tokens -= reserved
            if delay > 0:
                await asyncio.sleep(delay)
            return reserved

    def settle(self, reserved: int, used: int) -> None:
        """Correct the token bucket once the real usage of a call is known."""
        if self.tpm is None:
            return
        self._refill()
        self._tokens = min(float(self.tpm), self._tokens + reserved - used)

    def _refill(self) -> None:
        assert self.tpm is not None
        now = time.monotonic()
        self._tokens = min(float(self.tpm), self._tokens + (now - self._refilled) * self.tpm / 60)
        self._refilled = now


__all__ = ["AdaptiveLimiter", "LimiterState", "RateLimiter"]
