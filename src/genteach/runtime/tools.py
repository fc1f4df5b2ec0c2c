"""Teacher tools: a responder that may run tools (a calculator, Python, a lookup) before
it answers. The tools are an environment like any other; :class:`ToolLoop` runs the
episode and returns the final answer apart from the trace of calls and results, so a
flow can keep the trace in the record or hide it from the student.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from genteach.models.base import Message, ModelClient, ToolSpec, message
from genteach.prompts import PromptLibrary
from genteach.runtime.base import (
    Action,
    ActionFormat,
    EnvironmentFailure,
    Observation,
    StepResult,
)
from genteach.runtime.episode import Episode, EpisodeSettings, run_episode
from genteach.runtime.formats.function_calling import FunctionCallingFormat


class ToolError(Exception):
    """A tool could not handle its arguments; the message goes back to the model as the
    call's (error) result."""


class Tool(Protocol):
    """A function the teacher may call: its spec and an async body that returns text
    (raise :class:`ToolError` for a failed call)."""

    @property
    def spec(self) -> ToolSpec: ...

    async def __call__(self, arguments: Mapping[str, Any]) -> str: ...


@dataclass(frozen=True)
class ToolTask:
    """A request to answer with tools: the request and the responder's own system text."""

    request: str
    system: str = ""


class ToolEnvironment:
    """Tools as an environment: a call runs its tool; an answer ends the episode with
    reward 1, ``finish`` or ``fail`` with 0."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.tools = {t.spec.name: t for t in tools}
        if len(self.tools) != len(tools):
            raise ValueError("two tools share a name")

    async def reset(self, task: ToolTask, *, seed: int | None = None) -> Observation:
        return Observation(
            text=task.request,
            system=task.system,
            tools=tuple(t.spec for t in self.tools.values()),
        )

    async def step(self, action: Action) -> StepResult:
        if action.kind != "call":
            return StepResult(reward=1.0 if action.kind == "answer" else 0.0, done=True)
        tool = self.tools.get(action.name)
        if tool is None:
            raise EnvironmentFailure(f"{action.name} is not one of the tools")
        try:
            return StepResult(observation=await tool(action.arguments))
        except ToolError as exc:
            return StepResult(observation=str(exc), error=True)

    def admissible_actions(self) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class ToolLoopResult:
    """A tool loop's outcome.

    Attributes:
        answer: the final answer's text; ``None`` when the episode ended without one
            (``episode.end`` and ``episode.detail`` say why).
        trace: the turns between the request and the final answer: the calls and their
            results.
        episode: the whole episode (usage, turns, messages).
        request / system: what the loop was asked, for :meth:`messages`.
    """

    answer: str | None
    trace: tuple[Message, ...]
    episode: Episode
    request: str
    system: str = ""

    def messages(self, *, keep_trace: bool) -> list[Message]:
        """The conversation for a record: with ``keep_trace``, the whole episode (the
        tools' instructions, the calls, the results; only the model's turns trained);
        without, the responder's system text, the request and the answer alone.

        Raises:
            ValueError: there is no answer.
        """
        if self.answer is None:
            raise ValueError(f"the tool loop gave no answer: {self.episode.detail}")
        if keep_trace:
            return list(self.episode.messages)
        head = [message("system", self.system, trained=False)] if self.system else []
        return [
            *head,
            message("user", self.request, trained=False),
            message("assistant", self.answer, trained=True),
        ]


class ToolLoop:
    """Lets a responder call tools before it answers.

    Args:
        tools: the tools (each run serves its own environment over them).
        fmt: how the model calls them (function calling by default; a text format such
            as :class:`~genteach.runtime.ToolUseFormat` works too).
        settings: the episode's budgets (by default at most 6 turns).
    """

    def __init__(
        self,
        tools: Sequence[Tool],
        *,
        fmt: ActionFormat | None = None,
        settings: EpisodeSettings | None = None,
    ) -> None:
        self.tools = list(tools)
        self.fmt: ActionFormat = fmt or FunctionCallingFormat()
        self.settings = settings or EpisodeSettings(max_turns=6)

    async def run(
        self,
        client: ModelClient,
        prompts: PromptLibrary,
        request: str,
        *,
        system: str = "",
        guidance: str = "",
        seed: int | None = None,
    ) -> ToolLoopResult:
        """Answer ``request`` (after the ``system`` text the conversation starts with),
        calling tools as the model chooses; ``guidance`` is the teacher's own text, sent
        with every call and never part of the conversation (see :func:`run_episode`)."""
        episode = await run_episode(
            client,
            ToolEnvironment(self.tools),
            ToolTask(request=request, system=system),
            self.fmt,
            prompts=prompts,
            seed=seed,
            settings=self.settings,
            guidance=guidance,
        )
        messages = episode.messages
        first = next((i for i, m in enumerate(messages) if m.get("trained")), len(messages))
        final = episode.final_action
        answered = episode.end == "finished" and final is not None and final.kind == "answer"
        answer = final.text if answered and final is not None else None
        end = len(episode.messages) - 1 if answered else len(episode.messages)
        return ToolLoopResult(
            answer=answer,
            trace=episode.messages[first:end],
            episode=episode,
            request=request,
            system=system,
        )


__all__ = ["Tool", "ToolEnvironment", "ToolError", "ToolLoop", "ToolLoopResult", "ToolTask"]
