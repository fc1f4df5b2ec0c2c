"""genteach's own small model interface.

Agents never touch a vendor SDK. They call a :class:`ModelClient`: one async method that
takes a :class:`ModelRequest` and returns a :class:`Completion`. genteach's own clients
(:mod:`genteach.models.http`, :mod:`genteach.models.local`) implement it directly; any
AutoGen ``ChatCompletionClient`` is adapted to it in :mod:`genteach.models.autogen`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel
from typing_extensions import NotRequired, TypedDict

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(TypedDict):
    """One function call of an assistant turn (OpenAI function calling): ``arguments`` is
    the JSON text of the arguments, as the model wrote it."""

    id: str
    name: str
    arguments: str


class Message(TypedDict):
    """One chat turn, the shape used everywhere in genteach (records included).

    Only ``role`` and ``content`` are always present. ``trained`` marks whether a student
    learns from the turn (absent: assistant turns are trained, others are not; scripted
    and demonstration turns carry ``False``). An assistant turn may carry ``tool_calls``;
    a ``tool`` turn answers one of them and carries its ``tool_call_id`` (and ``name``).
    """

    role: Role
    content: str
    trained: NotRequired[bool]
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]


def is_trained(m: Message) -> bool:
    """Whether a student learns from turn ``m``: its ``trained`` flag, else whether it is an
    assistant turn."""
    return m.get("trained", m["role"] == "assistant")


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call (OpenAI function calling): ``parameters`` is the JSON
    schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})

    def openai(self) -> dict[str, Any]:
        """This tool in OpenAI's ``tools`` format (also what chat templates take)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True)
class ModelRequest:
    """Everything one model call asks for. It crosses every layer (cache, retries, limits,
    clients) unchanged: a new per-call option is a new field here, nothing else.

    Attributes:
        messages: the conversation, tool turns included.
        response_schema: a pydantic model of the JSON answer expected; backends with
            structured output constrain decoding to it, others ignore it (the agent's
            parser validates the text either way).
        grammar: a Lark grammar (llguidance dialect) for non-JSON formats such as the
            tool-use ACTION turn; backends that cannot constrain decoding ignore it.
        stop: stop sequences (ReAct formats stop before an observation).
        tools: functions the model may call (OpenAI function calling).
        n: number of samples wanted (:attr:`Completion.choices`).
        temperature / max_tokens / seed: sampling settings (None: the backend's default).
    """

    messages: Sequence[Message]
    response_schema: type[BaseModel] | None = None
    grammar: str | None = None
    stop: Sequence[str] = ()
    tools: Sequence[ToolSpec] = ()
    n: int = 1
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        # Accept any sequence of messages (a list is the common case); keep a tuple.
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "tools", tuple(self.tools))
        if self.n < 1:
            raise ValueError(f"ModelRequest.n must be at least 1, got {self.n}")

    def with_(self, **changes: Any) -> ModelRequest:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return replace(self, **changes)

    def key(self, model: str) -> str:
        """The cache key of this request to ``model``: sha256 of its canonical JSON."""
        schema = (
            self.response_schema.model_json_schema() if self.response_schema is not None else None
        )
        blob = json.dumps(
            {
                "model": model,
                "messages": [dict(sorted(m.items())) for m in self.messages],
                "schema": schema,
                "grammar": self.grammar,
                "stop": list(self.stop),
                "tools": [[t.name, t.description, t.parameters] for t in self.tools],
                "n": self.n,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                "seed": self.seed,
            },
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


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
class Choice:
    """One sample of a completion."""

    text: str
    finish_reason: str = "stop"
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Completion:
    """What a model returned for one call (``cached``: from the response cache, free).

    ``text``, ``finish_reason`` and ``tool_calls`` are the first sample's; ``choices``
    holds every sample when the request asked for several (``n`` > 1), else it is empty.
    ``finish_reason`` is ``"stop"``, ``"length"`` (cut off at ``max_tokens``),
    ``"tool_calls"`` or what the backend said.
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    finish_reason: str = "stop"
    cached: bool = False
    tool_calls: tuple[ToolCall, ...] = ()
    choices: tuple[Choice, ...] = ()

    @property
    def samples(self) -> tuple[Choice, ...]:
        """Every sample: ``choices``, or the one this completion holds."""
        return self.choices or (Choice(self.text, self.finish_reason, self.tool_calls),)

    @property
    def empty(self) -> bool:
        """Whether the (first) answer says nothing: no text and no tool call."""
        return not self.text.strip() and not self.tool_calls

    @property
    def cut_off(self) -> bool:
        """Whether the (first) answer was cut off at the token limit."""
        return self.finish_reason == "length"

    @property
    def complete_answer(self) -> bool:
        """Whether every sample is a whole answer (neither empty nor cut off): only such
        completions are worth keeping in a cache."""
        return all(
            (c.text.strip() or c.tool_calls) and c.finish_reason != "length" for c in self.samples
        )


class ModelError(Exception):
    """A model call failed for good (a bad request: this request will never succeed).

    ``status`` is the HTTP status of the failure, when there was one.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FatalModelError(ModelError):
    """The endpoint cannot serve this run at all (wrong API key, no access, unknown model,
    nothing listening at start): the run stops at once, before anything is marked done."""


class OutageError(ModelError):
    """The endpoint stayed down past the outage deadline (the circuit breaker of
    :class:`~genteach.models.resilient.ResilientModel`): the run stops; units not yet
    finished are redone when it is run again."""


class TransientModelError(ModelError):
    """A model call failed in a way worth retrying (rate limit, 5xx, timeout, connection).

    ``retry_after`` carries the server's Retry-After hint in seconds, when it gave one.
    ``overload`` says the endpoint is saturated (429, 503, a timeout): the adaptive
    concurrency limit then backs off. It defaults to "a Retry-After was given".
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        overload: bool | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        self.overload = retry_after is not None if overload is None else overload


class UnreachableError(TransientModelError):
    """Nothing answered at the endpoint's address (connection refused, unknown host).

    Transient once the endpoint has answered in this run (a server restarting); fatal
    before that (:class:`~genteach.models.resilient.ResilientModel` turns it into a
    :class:`FatalModelError`: nothing is listening there)."""


@runtime_checkable
class ModelClient(Protocol):
    """The one interface agents call: one :class:`ModelRequest` in, one
    :class:`Completion` out.

    A backend honours what it can of the request (structured output, a grammar, stop
    sequences, tools, several samples) and ignores the rest; the caller's parser checks
    the answer either way. Errors are :class:`TransientModelError` (worth retrying),
    :class:`FatalModelError` (the run cannot go on) or :class:`ModelError` (this request
    failed for good).

    A client that times its own calls by their progress (the embedded model: no new token
    for a while) sets a class attribute ``handles_timeout = True``; wrappers then apply no
    wall-clock timeout to it.
    """

    @property
    def model_name(self) -> str: ...

    async def complete(self, request: ModelRequest) -> Completion: ...

    async def close(self) -> None: ...


def message(role: Role, content: str, *, trained: bool | None = None) -> Message:
    """Build a :class:`Message`; ``trained`` is set only when given."""
    m: Message = {"role": role, "content": content}
    if trained is not None:
        m["trained"] = trained
    return m


__all__ = [
    "Choice",
    "Completion",
    "FatalModelError",
    "Message",
    "ModelClient",
    "ModelError",
    "ModelRequest",
    "OutageError",
    "Role",
    "ToolCall",
    "ToolSpec",
    "TransientModelError",
    "UnreachableError",
    "Usage",
    "is_trained",
    "message",
]
