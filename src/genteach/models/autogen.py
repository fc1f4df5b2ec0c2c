"""Adapter from any AutoGen ``ChatCompletionClient`` to genteach's :class:`ModelClient`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from autogen_core import FunctionCall
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import ToolSchema
from pydantic import BaseModel

from genteach.models._status import OVERLOAD_STATUS, status_error
from genteach.models.base import (
    Choice,
    Completion,
    Message,
    ModelError,
    ModelRequest,
    ToolCall,
    ToolSpec,
    TransientModelError,
    UnreachableError,
    Usage,
)
from genteach.models.http import retry_after_seconds

_FINISH = {"function_calls": "tool_calls"}


def to_autogen_messages(messages: Sequence[Message]) -> list[LLMMessage]:
    """Convert genteach messages to AutoGen's message types: an assistant turn's
    ``tool_calls`` become ``FunctionCall`` content (its text the ``thought``), and
    consecutive ``tool`` turns one ``FunctionExecutionResultMessage``."""
    out: list[LLMMessage] = []
    for m in messages:
        role = m["role"]
        if role == "system":
            out.append(SystemMessage(content=m["content"]))
        elif role == "user":
            out.append(UserMessage(content=m["content"], source="user"))
        elif role == "assistant" and m.get("tool_calls"):
            calls = [
                FunctionCall(id=c["id"], arguments=c["arguments"], name=c["name"])
                for c in m.get("tool_calls", [])
            ]
            out.append(
                AssistantMessage(content=calls, thought=m["content"] or None, source="assistant")
            )
        elif role == "assistant":
            out.append(AssistantMessage(content=m["content"], source="assistant"))
        elif role == "tool":
            result = FunctionExecutionResult(
                content=m["content"], name=m.get("name", ""), call_id=m.get("tool_call_id", "")
            )
            last = out[-1] if out else None
            if isinstance(last, FunctionExecutionResultMessage):
                last.content.append(result)
            else:
                out.append(FunctionExecutionResultMessage(content=[result]))
        else:  # pragma: no cover - guarded by the Role literal
            raise ValueError(f"unknown role {role!r}")
    return out


def to_tool_schema(tool: ToolSpec) -> ToolSchema:
    """A genteach tool as AutoGen's ``ToolSchema``."""
    return ToolSchema(
        name=tool.name,
        description=tool.description,
        parameters=tool.parameters,  # type: ignore[typeddict-item]
    )


def classify_error(exc: BaseException) -> ModelError:
    """Map an SDK exception to genteach's errors, by its HTTP status where it has one (see
    :func:`genteach.models._status.status_error`), else by kind: a connection that could
    not be made is :class:`UnreachableError`, timeouts and other connection errors are
    :class:`TransientModelError`, anything else :class:`ModelError`."""
    text = f"{type(exc).__name__}: {exc}"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        retry_after = retry_after_seconds(headers) if isinstance(headers, Mapping) else None
        message, code = _sdk_message(exc)
        return status_error(status, message, code=code, retry_after=retry_after)
    if _cannot_connect(exc):
        return UnreachableError(text)
    if _is_timeout(exc):
        return TransientModelError(text, overload=True)
    if _is_connection_error(exc):
        return TransientModelError(text)
    return ModelError(text)


class AutoGenModel:
    """Use any AutoGen ``ChatCompletionClient`` (OpenAI, Azure, Anthropic, Ollama, ...) as
    a genteach :class:`~genteach.models.base.ModelClient`.

    Args:
        client: the AutoGen client.
        name: the teacher name written into records; defaults to the client's model.
        temperature / max_tokens: defaults sent with each call (per-call values win).

    What AutoGen can carry is passed on: messages with tool turns, ``tools``, ``stop``,
    ``seed``; a ``response_schema`` only when the client's ``model_info`` says the backend
    has structured output (the agent's parser validates the text either way). AutoGen has
    no grammar and no ``n``: a grammar is left out and ``n`` samples are ``n`` calls.
    """

    def __init__(
        self,
        client: ChatCompletionClient,
        *,
        name: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        self.client = client
        self._name = name or _client_model_name(client)
        self.temperature = temperature
        self.max_tokens = max_tokens

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def supports_structured_output(self) -> bool:
        info = self.client.model_info
        return bool(info.get("structured_output", False))

    async def complete(self, request: ModelRequest) -> Completion:
        if request.n == 1:
            return await self._one(request)
        seeds = [None if request.seed is None else request.seed + i for i in range(request.n)]
        parts = await asyncio.gather(*(self._one(request.with_(n=1, seed=s)) for s in seeds))
        usage = sum((p.usage for p in parts), Usage())
        return replace(parts[0], usage=usage, choices=tuple(p.samples[0] for p in parts))

    async def _one(self, request: ModelRequest) -> Completion:
        extra: dict[str, Any] = {}
        t = request.temperature if request.temperature is not None else self.temperature
        if t is not None:
            extra["temperature"] = t
        mt = request.max_tokens if request.max_tokens is not None else self.max_tokens
        if mt is not None:
            extra["max_tokens"] = mt
        if request.seed is not None:
            extra["seed"] = request.seed
        if request.stop:
            extra["stop"] = list(request.stop)
        json_output: type[BaseModel] | None = None
        if request.response_schema is not None and self.supports_structured_output:
            json_output = request.response_schema
        try:
            result = await self.client.create(
                to_autogen_messages(request.messages),
                tools=[to_tool_schema(t) for t in request.tools],
                json_output=json_output,
                extra_create_args=extra,
            )
        except ModelError:
            raise
        except Exception as exc:
            raise classify_error(exc) from exc
        choice = _choice(result)
        usage = Usage(result.usage.prompt_tokens, result.usage.completion_tokens, 1)
        return Completion(
            text=choice.text,
            usage=usage,
            model=self._name,
            finish_reason=choice.finish_reason,
            tool_calls=choice.tool_calls,
        )

    async def close(self) -> None:
        await self.client.close()


def _choice(result: CreateResult) -> Choice:
    finish = _FINISH.get(str(result.finish_reason), str(result.finish_reason))
    content = result.content
    if isinstance(content, str):
        return Choice(content, finish)
    if not isinstance(content, list) or not all(isinstance(c, FunctionCall) for c in content):
        raise ModelError(f"model returned {type(content).__name__}, expected text or calls")
    calls: tuple[ToolCall, ...] = tuple(
        {"id": c.id, "name": c.name, "arguments": c.arguments} for c in content
    )
    return Choice(result.thought or "", finish, calls)


def _sdk_message(exc: BaseException) -> tuple[str, str | None]:
    """The server's own error message and code from an SDK exception (the openai SDK
    keeps the body's ``error`` object as ``body``), else the exception's text."""
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and error.get("message"):
            code = error.get("code")
            return str(error["message"]), None if code is None else str(code)
    code = getattr(exc, "code", None)
    return str(getattr(exc, "message", None) or exc), None if code is None else str(code)


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _cannot_connect(exc: BaseException) -> bool:
    """A connection that was never made (refused, unknown host), anywhere in the chain."""
    for e in _causes(exc):
        if type(e).__name__ in ("ConnectError", "ClientConnectorError", "ClientConnectorDNSError"):
            return True
        if isinstance(e, ConnectionRefusedError):
            return True
    return False


def _is_timeout(exc: BaseException) -> bool:
    return any(isinstance(e, TimeoutError) or "Timeout" in type(e).__name__ for e in _causes(exc))


def _is_connection_error(exc: BaseException) -> bool:
    return any(
        isinstance(e, ConnectionError) or "Connection" in type(e).__name__ for e in _causes(exc)
    )


def _client_model_name(client: ChatCompletionClient) -> str:
    for attr in ("model_name", "_model", "model"):
        value = getattr(client, attr, None)
        if isinstance(value, str) and value:
            return value
    create_args = getattr(client, "_create_args", None)
    if isinstance(create_args, dict) and isinstance(create_args.get("model"), str):
        return str(create_args["model"])
    return type(client).__name__


__all__ = [
    "OVERLOAD_STATUS",
    "AutoGenModel",
    "classify_error",
    "to_autogen_messages",
    "to_tool_schema",
]
