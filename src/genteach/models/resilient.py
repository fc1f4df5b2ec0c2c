"""A ModelClient wrapper for long runs against real endpoints: adaptive concurrency,
optional request and token rate caps, a timeout per call, retries of transient errors
with exponential backoff that honours the server's Retry-After, and a circuit breaker
that pauses the work while the endpoint is down."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import replace

from genteach.models.base import (
    Completion,
    FatalModelError,
    Message,
    ModelClient,
    ModelError,
    ModelRequest,
    TransientModelError,
    UnreachableError,
    Usage,
)
from genteach.models.limits import AdaptiveLimiter, CircuitBreaker, LimiterState, RateLimiter

log = logging.getLogger("genteach.models")

#: Completion tokens assumed for a call without ``max_tokens``, when reserving a TPM budget.
DEFAULT_COMPLETION_ESTIMATE = 1024


class ResilientModel:
    """Wraps a :class:`ModelClient` (one endpoint).

    Args:
        client: the wrapped client.
        concurrency: most calls in flight at once: the ceiling of the adaptive limit.
        adaptive: back off on overload (429, 503, timeouts; halve the limit) and grow
            again by one per window of successful calls (AIMD). ``False``: fixed limit.
        rpm / tpm: optional requests-per-minute and tokens-per-minute caps.
        max_retries: retries of a transient error before it is raised (failures while the
            circuit breaker is open do not count).
        timeout: seconds a call may take (``None``: no limit); a timeout is transient. Not
            applied to a client that times its own calls (``handles_timeout``, e.g. the
            embedded model, which fails a call only when it makes no progress).
        base_delay / max_delay: backoff bounds in seconds (full jitter); a Retry-After
            from the server wins over the backoff, up to ``max_delay``.
        breaker_threshold: transient failures in a row (429s aside: the endpoint is up)
            that open the circuit breaker (0: never); see
            :class:`~genteach.models.limits.CircuitBreaker`.
        probe_interval / max_probe_interval: seconds to the first probe of an open breaker
            (default ``base_delay``), doubling up to the second.
        outage_deadline: seconds the breaker may stay open before every call fails with
            :class:`~genteach.models.base.OutageError` (``None``: wait for ever).
        on_usage: called with each successful call's usage (live progress displays).
        count_missing_usage: when a server reports no token usage, count the tokens with
            :func:`genteach.tokens.tokenizer_for` the model (tiktoken for OpenAI models,
            the model's own tokenizer for a local folder, cl100k_base otherwise), so
            costs are never silently zero.

    Errors: a :class:`FatalModelError` (or nothing listening at the endpoint before it
    ever answered, which is one) is raised at once and every later call fails with it
    without being sent; a transient error is raised once its retries are spent.
    """

    def __init__(
        self,
        client: ModelClient,
        *,
        concurrency: int = 8,
        adaptive: bool = True,
        rpm: float | None = None,
        tpm: float | None = None,
        max_retries: int = 5,
        timeout: float | None = 600.0,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        breaker_threshold: int = 5,
        probe_interval: float | None = None,
        max_probe_interval: float = 30.0,
        outage_deadline: float | None = 900.0,
        on_usage: Callable[[Usage], None] | None = None,
        count_missing_usage: bool = True,
    ) -> None:
        self.client = client
        self.limiter = AdaptiveLimiter(concurrency, adaptive=adaptive)
        self.rate = RateLimiter(rpm, tpm)
        self.breaker = CircuitBreaker(
            breaker_threshold,
            probe_interval=base_delay if probe_interval is None else probe_interval,
            max_probe_interval=max_probe_interval,
            deadline=outage_deadline,
        )
        self.max_retries = max_retries
        self.timeout = None if getattr(client, "handles_timeout", False) else timeout
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.on_usage = on_usage
        self.count_missing_usage = count_missing_usage
        self.retries = 0
        self.reached = False  # whether the endpoint has answered anything in this run
        self.stopped: ModelError | None = None

    @property
    def model_name(self) -> str:
        return self.client.model_name

    @property
    def concurrency(self) -> int:
        """The current (adaptive) concurrency limit."""
        return self.limiter.limit

    def state(self) -> LimiterState:
        return self.limiter.state()

    async def complete(self, request: ModelRequest) -> Completion:
        attempt = 0
        while True:
            if self.stopped is not None:
                raise self.stopped
            probe = await self.breaker.admit()
            try:
                result = await self._attempt(request)
            except FatalModelError as exc:
                self._stop(exc)
                raise
            except UnreachableError as exc:
                if not self.reached:
                    fatal = FatalModelError(f"nothing is listening at the endpoint: {exc}")
                    raise self._stop(fatal) from exc
                error: TransientModelError = exc
            except TransientModelError as exc:
                error = exc
            except ModelError:
                self.reached = True  # a permanent error is an answer: the endpoint is up
                self.breaker.success(probe=probe)
                raise
            except BaseException:
                if probe:
                    self.breaker.abandon()
                raise
            else:
                self.reached = True
                self.breaker.success(probe=probe)
                return result
            if error.status == 429:  # rate limited: the endpoint is up, the limiter slows down
                self.reached = True
                self.breaker.success(probe=probe)
                counted = True
            else:
                counted = self.breaker.failure(error, probe=probe)
            if not counted:
                continue  # the breaker is open: wait for it, this retry is free
            attempt += 1
            if attempt > self.max_retries:
                raise TransientModelError(
                    f"gave up after {self.max_retries} retries: {error}", status=error.status
                ) from error
            self.retries += 1
            delay = random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
            if error.retry_after is not None:
                delay = max(delay, min(error.retry_after, self.max_delay))
            log.warning(
                "transient model error (%s); retry %d in %.1fs (concurrency limit %d)",
                error,
                attempt,
                delay,
                self.limiter.limit,
            )
            await asyncio.sleep(delay)

    async def _attempt(self, request: ModelRequest) -> Completion:
        """One call under the rate caps and the concurrency limit."""
        reserved = 0
        if self.rate.active:
            reserved = await self.rate.acquire(
                _estimate_tokens(request.messages, request.max_tokens)
            )
        await self.limiter.acquire()
        outcome = "error"
        used = reserved
        try:
            call = self.client.complete(request)
            if self.timeout is None:
                result = await call
            else:
                try:
                    result = await asyncio.wait_for(call, self.timeout)
                except asyncio.TimeoutError as exc:
                    raise TransientModelError(
                        f"no answer within {self.timeout:g}s", overload=True
                    ) from exc
            outcome = "ok"
            used = result.usage.total_tokens or reserved
        except TransientModelError as exc:
            outcome = "overload" if exc.overload else "error"
            if exc.retry_after is not None:
                self.limiter.pause(min(exc.retry_after, self.max_delay))
            raise
        finally:
            await self.limiter.release(outcome)
            self.rate.settle(reserved, used)
        if result.usage.total_tokens == 0 and self.count_missing_usage:
            result = self._counted(request.messages, result)
        if self.on_usage is not None:
            self.on_usage(result.usage)
        return result

    def _stop(self, error: ModelError) -> ModelError:
        """Remember a run-stopping error: later and waiting calls fail with it at once."""
        if self.stopped is None:
            self.stopped = error
            self.breaker.kill(error)
        return self.stopped

    def _counted(self, messages: Sequence[Message], result: Completion) -> Completion:
        from genteach.tokens import count_message_tokens, tokenizer_for

        tok = tokenizer_for(self.client.model_name)
        usage = Usage(count_message_tokens(messages, tok), tok.count(result.text), 1)
        return replace(result, usage=usage)

    async def close(self) -> None:
        await self.client.close()


def _estimate_tokens(messages: Sequence[Message], max_tokens: int | None) -> int:
    """A cheap upper-ish estimate of a call's tokens (~4 characters a token), for the
    TPM budget; the real usage settles it afterwards."""
    prompt = sum(len(m["content"]) for m in messages) // 4 + 4 * len(messages)
    return prompt + (max_tokens or DEFAULT_COMPLETION_ESTIMATE)


__all__ = ["DEFAULT_COMPLETION_ESTIMATE", "ResilientModel"]
