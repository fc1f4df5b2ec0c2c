"""A ModelClient wrapper that bounds concurrency, times out calls and retries transient
errors with exponential backoff (honouring the server's Retry-After)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from genteach.models.base import Completion, Message, ModelClient, TransientModelError, Usage

log = logging.getLogger("genteach.models")


class ResilientModel:
    """Wraps a :class:`ModelClient`.

    Args:
        client: the wrapped client.
        concurrency: most calls in flight at once.
        max_retries: retries of a transient error before it is raised.
        timeout: seconds a call may take (``None``: no limit); a timeout is transient.
        base_delay / max_delay: backoff bounds in seconds (full jitter).
        on_usage: called with each successful call's usage (live progress displays).
    """

    def __init__(
        self,
        client: ModelClient,
        *,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float | None = 600.0,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        on_usage: Callable[[Usage], None] | None = None,
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.on_usage = on_usage
        self._sem: asyncio.Semaphore | None = None

    @property
    def model_name(self) -> str:
        return self.client.model_name

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        response_schema: type[BaseModel] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        grammar: str | None = None,
    ) -> Completion:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)
        attempt = 0
        while True:
            try:
                async with self._sem:
                    # grammar only when set: clients written before it existed still work.
                    extra = {"grammar": grammar} if grammar is not None else {}
                    call = self.client.complete(
                        messages,
                        response_schema=response_schema,
                        temperature=temperature,
                        max_tokens=max_tokens,
                        seed=seed,
                        **extra,
                    )
                    if self.timeout is None:
                        result = await call
                    else:
                        try:
                            result = await asyncio.wait_for(call, self.timeout)
                        except asyncio.TimeoutError as exc:
                            raise TransientModelError(
                                f"no answer within {self.timeout:g}s"
                            ) from exc
                if self.on_usage is not None:
                    self.on_usage(result.usage)
                return result
            except TransientModelError as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise TransientModelError(
                        f"gave up after {self.max_retries} retries: {exc}"
                    ) from exc
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                delay = random.uniform(0, delay)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self.max_delay))
                log.warning("transient model error (%s); retry %d in %.1fs", exc, attempt, delay)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        await self.client.close()


__all__ = ["ResilientModel"]
