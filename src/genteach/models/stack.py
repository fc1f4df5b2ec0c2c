"""One model stack for every command that calls a model.

``genteach generate``, ``genteach judge`` and ``genteach eval run`` wrap their model the
same way: a :class:`~genteach.models.resilient.ResilientModel` (adaptive concurrency, rate
caps, timeouts, retries with backoff, the outage breaker and its deadline), then, when a
cache file is given, a :class:`~genteach.cache.CachedModel`. :class:`CallSettings` holds
the settings of the first; each of its fields is one flag of those commands, with the same
name, default and help (``outage_deadline`` is ``--outage-deadline``).

Example:
    >>> stack = ModelStack.open(client, CallSettings(outage_deadline=60), cache_path=path)
    >>> answer = await stack.client.complete(request)  # doctest: +SKIP
    >>> await stack.close()                             # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from genteach.models.base import ModelClient, Usage
from genteach.models.resilient import ResilientModel

if TYPE_CHECKING:
    from genteach.cache import ResponseCache


@pydantic_dataclass(config=ConfigDict(extra="forbid"))
class CallSettings:
    """How a model is called: concurrency, rate caps, retries, backoff and the outage
    breaker. Every field has a default and a description, which is also the help of its
    flag; values out of range are refused when the settings are made.
    """

    concurrency: int = Field(
        default=8,
        ge=1,
        description="most model calls in flight at once; the adaptive limit's ceiling",
    )
    adaptive: bool = Field(
        default=True,
        description="halve the concurrency limit when the endpoint is overloaded (429, 503, "
        "timeouts) and grow it back as calls succeed",
    )
    rpm: float | None = Field(default=None, gt=0, description="cap requests per minute")
    tpm: float | None = Field(
        default=None, gt=0, description="cap tokens (prompt + completion) per minute"
    )
    max_retries: int = Field(
        default=5, ge=0, description="retries of a transient model error (rate limit, 5xx, timeout)"
    )
    timeout: float | None = Field(
        default=600.0, gt=0, description="seconds one model call may take"
    )
    backoff: float = Field(
        default=1.0,
        ge=0,
        description="first retry delay in seconds (doubling, full jitter, capped at 60 s); a "
        "server's Retry-After wins",
    )
    outage_deadline: float | None = Field(
        default=900.0,
        ge=0,
        description="seconds the endpoint may stay down (new calls paused while it is probed) "
        "before the run stops with exit 4 (default 900; none: wait for ever)",
    )
    breaker_threshold: int = Field(
        default=5,
        ge=0,
        description="transient failures in a row that pause new calls and start probing the "
        "endpoint (0: never pause)",
    )
    max_probe_interval: float = Field(
        default=30.0,
        gt=0,
        description="the longest wait in seconds between two probes of an endpoint that is "
        "down (the first comes after the backoff)",
    )


@dataclass
class ModelStack:
    """A model wrapped for a long run: ``client`` is what to call.

    Attributes:
        client: the cached client when there is a cache, else ``resilient``.
        resilient: the retry, limit and breaker layer (its ``retries`` and ``concurrency``
            are live counters).
        cache: the response cache, or None.
    """

    client: ModelClient
    resilient: ResilientModel
    cache: ResponseCache | None = None

    @classmethod
    def open(
        cls,
        base: ModelClient,
        settings: CallSettings | None = None,
        *,
        cache_path: Path | None = None,
        on_usage: Callable[[Usage], None] | None = None,
    ) -> ModelStack:
        """Wrap ``base`` in a ResilientModel made from ``settings`` and, when
        ``cache_path`` is given, a CachedModel over the SQLite cache there.

        Args:
            base: the model (its endpoint).
            settings: how it is called (default: :class:`CallSettings`'s defaults).
            cache_path: the cache file (created if missing); None: no cache.
            on_usage: called with each sent call's usage (cache hits are not sent).

        Returns:
            The stack; close it with :meth:`close`.
        """
        # Imported here: genteach.cache imports genteach.models, which exports this module.
        from genteach.cache import CachedModel, ResponseCache

        s = settings or CallSettings()
        resilient = ResilientModel(
            base,
            concurrency=s.concurrency,
            adaptive=s.adaptive,
            rpm=s.rpm,
            tpm=s.tpm,
            max_retries=s.max_retries,
            timeout=s.timeout,
            base_delay=s.backoff,
            breaker_threshold=s.breaker_threshold,
            max_probe_interval=s.max_probe_interval,
            outage_deadline=s.outage_deadline,
            on_usage=on_usage,
        )
        if cache_path is None:
            return cls(resilient, resilient)
        cache = ResponseCache(cache_path)
        return cls(CachedModel(resilient, cache), resilient, cache)

    @property
    def cached_calls(self) -> int:
        """Calls answered from the cache so far."""
        return int(getattr(self.client, "hits", 0))

    @property
    def retries(self) -> int:
        """Retries of transient errors so far."""
        return self.resilient.retries

    @property
    def concurrency(self) -> int:
        """The current (adaptive) concurrency limit."""
        return self.resilient.concurrency

    async def close(self, *, close_client: bool = True) -> None:
        """Close the cache and, unless ``close_client`` is False (the caller owns the
        model, as a :class:`~genteach.pipeline.Pipeline`'s user does), the model."""
        if self.cache is not None:
            self.cache.close()
        if close_client:
            await self.resilient.close()


__all__ = ["CallSettings", "ModelStack"]
