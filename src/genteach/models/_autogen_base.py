"""What genteach's own AutoGen clients share: usage totals, a non-streaming
``create_stream`` (genteach's agents never stream; AutoGen teams may ask for it) and the
conversion of AutoGen messages to plain chat messages (text only)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel


class NonStreamingClient(ChatCompletionClient):
    """Base of :class:`~genteach.models.http.AioHttpChatCompletionClient` and
    :class:`~genteach.models.local.LocalChatCompletionClient`.

    Subclasses implement ``create`` and call :meth:`_count` with each result's usage.
    """

    def __init__(self) -> None:
        self._total_usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._actual_usage = RequestUsage(prompt_tokens=0, completion_tokens=0)

    def _count(self, usage: RequestUsage) -> None:
        self._total_usage = add_usage(self._total_usage, usage)
        self._actual_usage = add_usage(self._actual_usage, usage)

    def actual_usage(self) -> RequestUsage:
        return self._actual_usage

    def total_usage(self) -> RequestUsage:
        return self._total_usage

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Not a real stream: yields the whole text once, then the :class:`CreateResult`."""
        result = await self.create(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )
        if isinstance(result.content, str) and result.content:
            yield result.content
        yield result


def add_usage(a: RequestUsage, b: RequestUsage) -> RequestUsage:
    return RequestUsage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
    )


def text_chat(messages: Sequence[LLMMessage], backend: str) -> list[dict[str, str]]:
    """AutoGen messages -> ``{"role", "content"}`` dicts; ``backend`` names the client in
    the error for what a text-only client cannot send (images, function calls)."""
    chat: list[dict[str, str]] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            chat.append({"role": "system", "content": m.content})
        elif isinstance(m, UserMessage):
            if not isinstance(m.content, str):
                if not all(isinstance(part, str) for part in m.content):
                    raise ValueError(f"{backend} is text-only: images are not supported")
                chat.append({"role": "user", "content": "\n".join(map(str, m.content))})
            else:
                chat.append({"role": "user", "content": m.content})
        elif isinstance(m, AssistantMessage):
            if not isinstance(m.content, str):
                raise ValueError(f"{backend} does not support function calls")
            chat.append({"role": "assistant", "content": m.content})
        elif isinstance(m, FunctionExecutionResultMessage):
            raise ValueError(f"{backend} does not support function results")
        else:  # pragma: no cover - LLMMessage is a closed union
            raise ValueError(f"unsupported message {type(m).__name__}")
    return chat
