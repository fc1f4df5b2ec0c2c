"""Adapter from any AutoGen ``ChatCompletionClient`` to genteach's :class:`ModelClient`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    LLMMessage,
    SystemMessage,
    UserMessage,
)
from pydantic import BaseModel

from genteach.models.base import (
    Completion,
    Message,
    ModelError,
    ModelRequest,
    TransientModelError,
    Usage,
)

_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
#: Statuses that mean "slow down": the adaptive concurrency limit backs off on them.
OVERLOAD_STATUS = frozenset({429, 503, 529})


def to_autogen_messages(messages: Sequence[Message]) -> list[LLMMessage]:
    """Convert genteach messages to AutoGen's message types."""
    out: list[LLMMessage] = []
    for m in messages:
        if m["role"] == "system":
            out.append(SystemMessage(content=m["content"]))
        elif m["role"] == "user":
            out.append(UserMessage(content=m["content"], source="user"))
        elif m["role"] == "assistant":
            out.append(AssistantMessage(content=m["content"], source="assistant"))
        else:  # pragma: no cover - guarded by the Role literal
            raise ValueError(f"unknown role {m['role']!r}")
    return out


def classify_error(exc: BaseException) -> ModelError:
    """Map an SDK exception to :class:`TransientModelError` or :class:`ModelError`."""
    import openai

    retry_after: float | None = None
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        raw = headers.get("retry-after")
        try:
            retry_after = float(raw) if raw is not None else None
        except ValueError:
            retry_after = None
    status = getattr(exc, "status_code", None)
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, openai.APIConnectionError | openai.APITimeoutError | TimeoutError):
        return TransientModelError(text)
    if isinstance(status, int) and status in _TRANSIENT_STATUS:
        overload = status in OVERLOAD_STATUS or retry_after is not None
        return TransientModelError(text, retry_after=retry_after, overload=overload)
    if isinstance(exc, ConnectionError):
        return TransientModelError(text)
    return ModelError(text)


class AutoGenModel:
    """Use any AutoGen ``ChatCompletionClient`` (OpenAI, Azure, vLLM, Ollama, ...) as a
    genteach :class:`~genteach.models.base.ModelClient`.

    Args:
        client: the AutoGen client.
        name: the teacher name written into records; defaults to the client's model.
        temperature / max_tokens: defaults sent with each call (per-call values win).

    Structured output is requested (``json_output=<pydantic model>``) only when the
    client's ``model_info`` says the backend supports it; otherwise the agent's parser
    validates the plain text.
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
        extra: dict[str, Any] = {}
        if request.grammar is not None and getattr(self.client, "supports_grammar", False):
            extra["grammar"] = request.grammar
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
        response_schema = request.response_schema
        messages = request.messages
        json_output: bool | type[BaseModel] | None = None
        if response_schema is not None and self.supports_structured_output:
            json_output = response_schema
        try:
            result = await self.client.create(
                to_autogen_messages(messages), json_output=json_output, extra_create_args=extra
            )
        except ModelError:
            raise
        except Exception as exc:
            raise classify_error(exc) from exc
        content = result.content
        if not isinstance(content, str):
            raise ModelError(f"model returned {type(content).__name__}, expected text")
        usage = Usage(result.usage.prompt_tokens, result.usage.completion_tokens, 1)
        return Completion(
            text=content,
            usage=usage,
            model=self._name,
            finish_reason=str(result.finish_reason),
        )

    async def close(self) -> None:
        await self.client.close()


def _client_model_name(client: ChatCompletionClient) -> str:
    for attr in ("model_name", "_model", "model"):
        value = getattr(client, attr, None)
        if isinstance(value, str) and value:
            return value
    create_args = getattr(client, "_create_args", None)
    if isinstance(create_args, dict) and isinstance(create_args.get("model"), str):
        return str(create_args["model"])
    return type(client).__name__


__all__ = ["OVERLOAD_STATUS", "AutoGenModel", "classify_error", "to_autogen_messages"]
