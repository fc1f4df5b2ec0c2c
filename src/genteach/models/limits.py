"""Flow control for one endpoint: adaptive concurrency (AIMD), rate caps and a circuit
breaker.

:class:`AdaptiveLimiter` keeps at most ``limit`` calls in flight. The limit starts at the
configured maximum, halves when the endpoint signals overload (429, 503, a timeout) and
grows back by one per ``limit`` successful calls, like TCP's congestion window. A
Retry-After from the server pauses every new call until it has passed.

:class:`RateLimiter` caps requests per minute and tokens per minute. Requests are spaced
evenly; tokens are reserved before a call (prompt estimate plus the completion budget)
and settled with the real usage afterwards.

:class:`CircuitBreaker` pauses new calls to an endpoint that keeps failing, lets one probe
through at a time at growing intervals, and resumes them all when a call succeeds; an
endpoint down past a deadline ends every call with :class:`~genteach.models.base.OutageError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from genteach.models.base import ModelError, OutageError

log = logging.getLogger("genteach.models")


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


class CircuitBreaker:
    """Pauses new calls to an endpoint that keeps failing.

    Closed (the normal state), calls go through. ``threshold`` transient failures in a row
    open it: new calls then wait, and one at a time goes through as a probe, first after
    ``probe_interval`` seconds, then at doubling intervals up to ``max_probe_interval``. A
    call that succeeds (or gets any answer but a transient failure) closes it and every
    waiting call goes on. Failures while it is open do not count against a call's retries:
    an outage pauses the work instead of failing it. Open for ``deadline`` seconds, it
    fails every waiting and later call with :class:`OutageError`.

    Args:
        threshold: transient failures in a row that open the breaker (0: never opens).
        probe_interval: seconds from opening to the first probe.
        max_probe_interval: the longest wait between two probes.
        deadline: seconds the endpoint may stay down (``None``: wait for ever; 0: stop as
            soon as the breaker opens).
    """

    def __init__(
        self,
        threshold: int = 5,
        *,
        probe_interval: float = 1.0,
        max_probe_interval: float = 30.0,
        deadline: float | None = 900.0,
    ) -> None:
        if threshold < 0:
            raise ValueError(f"breaker threshold must be >= 0, got {threshold}")
        self.threshold = threshold
        self.probe_interval = probe_interval
        self.max_probe_interval = max(probe_interval, max_probe_interval)
        self.deadline = deadline
        self.is_open = False
        self.failures = 0
        self.openings = 0
        self.opened_at = 0.0
        self.last_error = ""
        self.dead: ModelError | None = None
        self._interval = probe_interval
        self._next_probe = 0.0
        self._probing = False
        self._changed: asyncio.Event | None = None

    async def admit(self) -> bool:
        """Wait until a call may go. Returns True when it goes as the probe (report its
        outcome with ``probe=True``, or :meth:`abandon` it). Raises :attr:`dead` once the
        breaker has given up."""
        while True:
            if self.dead is not None:
                raise self.dead
            if not self.is_open:
                return False
            now = time.monotonic()
            if self.deadline is not None and now - self.opened_at >= self.deadline:
                self.kill(
                    OutageError(
                        f"the endpoint has been failing for {now - self.opened_at:.0f}s, past "
                        f"the outage deadline of {self.deadline:g}s (last error: {self.last_error})"
                    )
                )
                continue
            if not self._probing and now >= self._next_probe:
                self._probing = True
                return True
            wait = None if self._probing else self._next_probe - now
            if self.deadline is not None:
                left = self.opened_at + self.deadline - now
                wait = left if wait is None else min(wait, left)
            await self._wait(wait)

    def success(self, *, probe: bool = False) -> None:
        """A call got an answer: the endpoint is up."""
        self.failures = 0
        if probe:
            self._probing = False
        if self.is_open:
            log.warning(
                "the endpoint answers again after %.0fs: resuming",
                time.monotonic() - self.opened_at,
            )
            self.is_open = False
            self._interval = self.probe_interval
            self._notify()

    def failure(self, error: BaseException, *, probe: bool = False) -> bool:
        """A call failed transiently. Returns whether the failure counts against the
        call's retries: only while the breaker stays closed."""
        self.last_error = str(error)
        now = time.monotonic()
        if probe:
            self._probing = False
            self._interval = min(self._interval * 2, self.max_probe_interval)
            self._next_probe = now + self._interval
            self._notify()
            return False
        if self.is_open:
            return False
        self.failures += 1
        if self.threshold and self.failures >= self.threshold:
            self.is_open = True
            self.openings += 1
            self.opened_at = now
            self._interval = self.probe_interval
            self._next_probe = now + self._interval
            after = "never" if self.deadline is None else f"after {self.deadline:g}s"
            log.warning(
                "the endpoint failed %d times in a row (last: %s): new calls wait, a probe "
                "call tests it every %g-%gs; the run stops if it is still down %s",
                self.failures,
                error,
                self.probe_interval,
                self.max_probe_interval,
                after,
            )
            self._notify()
            return False
        return True

    def abandon(self) -> None:
        """The probe ended without an outcome (cancelled): let another call probe."""
        self._probing = False
        self._notify()

    def kill(self, error: ModelError) -> None:
        """Fail every waiting and later call with ``error`` (the run is stopping)."""
        if self.dead is None:
            self.dead = error
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _wait(self, timeout: float | None) -> None:
        """Wait for a change of state, or ``timeout`` seconds (``asyncio.sleep``, so a
        test's virtual clock drives it)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(self._changed.wait())}
        if timeout is not None:
            waiters.add(asyncio.ensure_future(asyncio.sleep(max(0.0, timeout))))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()


__all__ = ["AdaptiveLimiter", "CircuitBreaker", "LimiterState", "RateLimiter"]
