"""What an HTTP error status means for a run, shared by genteach's HTTP client and the
AutoGen adapter (the openai SDK's errors carry the same statuses)."""

from __future__ import annotations

import re

from genteach.models.base import FatalModelError, ModelError, TransientModelError

#: Statuses worth retrying: timeouts, conflicts, too early, rate limits (and every 5xx).
TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
#: Statuses that mean "slow down": the adaptive concurrency limit backs off on them.
OVERLOAD_STATUS = frozenset({429, 503, 529})
#: Statuses that mean the run cannot go on: wrong key, no access, unknown model or URL.
FATAL_STATUS = frozenset({401, 403, 404})

# A model the endpoint does not serve, in the words of OpenAI ("The model `x` does not
# exist or you do not have access to it.", code model_not_found), vLLM ("The model `x`
# does not exist."), Ollama ('model "x" not found, try pulling it first') and LiteLLM
# proxies ("Invalid model name passed in model=x"), whatever the status they send it with.
_UNKNOWN_MODEL = re.compile(
    r"model_not_found|unknown model|invalid model|\bmodel\b.{0,200}?"
    r"\b(does not exist|not found|is not served|is not available)",
    re.IGNORECASE | re.DOTALL,
)
# OpenAI answers 429 to an account with no credit left: no retry will help.
_NO_QUOTA = re.compile(r"insufficient_quota|exceeded your current quota", re.IGNORECASE)


def status_error(
    status: int, message: str, *, code: str | None = None, retry_after: float | None = None
) -> ModelError:
    """The error for an HTTP ``status`` with the server's ``message`` (and error ``code``).

    401, 403 and 404, an unknown model whatever its status and an exhausted quota are
    :class:`FatalModelError`; 408, 409, 425, 429 and 5xx are :class:`TransientModelError`;
    any other status fails this request only (:class:`ModelError`).
    """
    text = f"HTTP {status}: {message}"
    detail = f"{code or ''} {message}"
    if status in FATAL_STATUS or (400 <= status < 500 and _UNKNOWN_MODEL.search(detail)):
        return FatalModelError(text, status=status)
    if status == 429 and _NO_QUOTA.search(detail):
        return FatalModelError(text, status=status)
    if status in TRANSIENT_STATUS or status >= 500:
        overload = status in OVERLOAD_STATUS or retry_after is not None
        return TransientModelError(text, retry_after=retry_after, overload=overload, status=status)
    return ModelError(text, status=status)


__all__ = ["FATAL_STATUS", "OVERLOAD_STATUS", "TRANSIENT_STATUS", "status_error"]
