"""Use any genteach agent inside AutoGen teams.

:func:`as_autogen_agent` wraps an agent as an AutoGen ``BaseChatAgent`` (the base class
of ``AssistantAgent``), so it can join a ``RoundRobinGroupChat`` or any other team: the
last message it receives is the agent's input as JSON, and it answers with its output
as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from autogen_agentchat.agents import BaseChatAgent
from autogen_agentchat.base import Response
from autogen_agentchat.messages import BaseChatMessage, TextMessage
from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, RequestUsage
from pydantic import ValidationError

from genteach.agents.base import AgentError
from genteach.models.autogen import AutoGenModel
from genteach.models.base import ModelClient, ModelError


class GenteachChatAgent(BaseChatAgent):
    """An AutoGen chat agent that runs one genteach agent per message."""

    def __init__(
        self,
        agent: Any,
        client: ModelClient,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        safe = re.sub(r"\W", "_", name or agent.name)
        super().__init__(
            safe,
            description
            or f"genteach {type(agent).__name__} '{agent.name}': send its input as JSON, "
            "get its output as JSON.",
        )
        self.agent = agent
        self.client = client

    @property
    def produced_message_types(self) -> Sequence[type[BaseChatMessage]]:
        return (TextMessage,)

    async def on_messages(
        self, messages: Sequence[BaseChatMessage], cancellation_token: CancellationToken
    ) -> Response:
        del cancellation_token
        text = next(
            (m.to_model_text() for m in reversed(messages) if isinstance(m, TextMessage)), None
        )
        if text is None:
            return self._reply("error: no text message to use as input")
        try:
            inputs = self.agent.input_model.model_validate_json(_json_part(text))
        except ValidationError as exc:
            return self._reply(
                f"error: the input is not a valid {self.agent.input_model.__name__}: {exc}"
            )
        try:
            result = await self.agent.run(self.client, inputs)
        except (AgentError, ModelError) as exc:
            return self._reply(f"error: {exc}")
        usage = RequestUsage(
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
        )
        return self._reply(result.output.model_dump_json(), usage)

    async def on_reset(self, cancellation_token: CancellationToken) -> None:
        return None

    def _reply(self, content: str, usage: RequestUsage | None = None) -> Response:
        return Response(
            chat_message=TextMessage(content=content, source=self.name, models_usage=usage)
        )


def _json_part(text: str) -> str:
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else text


def as_autogen_agent(
    agent: Any,
    client: ModelClient | ChatCompletionClient,
    *,
    name: str | None = None,
    description: str | None = None,
) -> GenteachChatAgent:
    """Wrap a genteach agent for AutoGen teams.

    Args:
        agent: any genteach agent (it has ``input_model`` and ``async run``).
        client: a genteach ModelClient or any AutoGen ChatCompletionClient.
        name / description: the AutoGen agent's name (default: the agent's) and description.
    """
    model = AutoGenModel(client) if isinstance(client, ChatCompletionClient) else client
    return GenteachChatAgent(agent, model, name=name, description=description)


__all__ = ["GenteachChatAgent", "as_autogen_agent"]
