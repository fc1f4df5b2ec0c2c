"""genteach's own small model interface.

Agents never touch a vendor SDK. They call a :class:`ModelClient`: one async method that
takes chat messages and returns a :class:`Completion`. AutoGen's ``ChatCompletionClient``
is adapted to it in :mod:`genteach.models.autogen`, so every AutoGen client works, while the
runtime underneath can be swapped without touching an agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel
from typing_extensions import TypedDict

Role = Literal["system", "user", "assistant"]


class Message(TypedDict):
    """One chat turn, the shape used everywhere in genteach (records included)."""

    role: Role
    content: str


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more model calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.calls + other.calls,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "calls": self.calls,
        }


@dataclass(frozen=True)
class Completion:
    """What a model returned for one call (``cached``: from the response cache, free)."""

    text: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    finish_reason: str = "stop"
    cached: bool = False


class ModelError(Exception):
    """A model call failed for good (bad request, auth, unknown model...)."""


class TransientModelError(ModelError):
    """A model call failed in a way worth retrying (rate limit, 5xx, timeout, connection).

    ``retry_after`` carries the server's Retry-After hint in seconds, when it gave one.
    ``overload`` says the endpoint is saturated (429, 503, a timeout): the adaptive
    concurrency limit then backs off. It defaults to "a Retry-After was given".
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, overload: bool | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.overload = retry_after is not None if overload is None else overload


@runtime_checkable
class ModelClient(Protocol):
    """The one interface agents call.

    ``response_schema`` is a pydantic model describing the JSON the caller expects. A
    backend that supports structured output (JSON schema) should constrain its output to
    it; others may ignore it: the agent's parser validates the text either way.

    ``grammar`` (keyword, only passed when an agent has one) is a Lark grammar in
    llguidance's dialect for non-JSON formats such as the tool-use ACTION turn. Backends
    that cannot constrain decoding ignore it; the parser validates either way. A client
    that takes ``**kwargs`` or no ``grammar`` parameter at all still works for agents
    without a grammar.
    """

    @property
    def model_name(self) -> str: ...

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        response_schema: type[BaseModel] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        grammar: str | None = None,
    ) -> Completion: ...

    async def close(self) -> None: ...


def message(role: Role, content: str) -> Message:
    """Build a :class:`Message`."""
    return {"role": role, "content": content}


__all__ = [
    "Completion",
    "Message",
    "ModelClient",
    "ModelError",
    "Role",
    "TransientModelError",
    "Usage",
    "message",
]
