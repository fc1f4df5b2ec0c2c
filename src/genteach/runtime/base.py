"""The two protocols of acting: an :class:`Environment` that a task runs in and an
:class:`ActionFormat` that says how a model writes its actions and reads observations.

An environment never sees text a model wrote: it receives typed :class:`Action` objects
(parsed by the format) and returns a :class:`StepResult`. A format never sees an
environment's internals: it turns completions into actions and step results into
messages. :func:`genteach.runtime.run_episode` joins the two with a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from genteach.models.base import Completion, Message, ToolSpec, Usage
from genteach.prompts import PromptLibrary

#: What an action does: ``call`` a tool or command (an API, ``bash``, ``sql``, a
#: function); give the ``answer``; say the task is done (``finish``) or cannot be done
#: (``fail``); or several function calls at once (``tool_calls``, in :attr:`Action.calls`).
ActionKind = Literal["call", "answer", "finish", "fail", "tool_calls"]

#: Where a format puts its instructions: in the system turn, or in a first user turn
#: (AgentBench's style, optionally followed by a scripted acknowledgement).
Placement = Literal["system", "user"]

TaskT = TypeVar("TaskT", contravariant=True)


@dataclass(frozen=True)
class Action:
    """One action, as every environment receives it, whatever format it was written in.

    Attributes:
        kind: see :data:`ActionKind`.
        name: what is called (an API or function name, ``"bash"``, ``"sql"``); empty for
            answers.
        arguments: the named arguments of a function or API call.
        text: code of a command (a bash script, an SQL statement), the answer, or the
            reason of a ``fail``.
        thought: the reasoning written before the action (kept for rendering).
        calls: the calls of a ``tool_calls`` action, each a ``call`` action.
        call_id: the id of a function call (function calling), echoed by its result.
    """

    kind: ActionKind
    name: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""
    thought: str = ""
    calls: tuple[Action, ...] = ()
    call_id: str = ""

    @property
    def steps(self) -> tuple[Action, ...]:
        """The single actions an environment executes for this one, in order."""
        return self.calls if self.kind == "tool_calls" else (self,)


@dataclass(frozen=True)
class Observation:
    """What an environment shows at the start of a task.

    Attributes:
        text: the task as the agent sees it (the first user turn).
        system: the environment's own context for the instructions (e.g. "you work with
            the library X"), placed before the format's instructions; empty for none.
        tools: the functions the agent may call, for formats that list or pass them.
    """

    text: str
    system: str = ""
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True)
class StepResult:
    """An environment's answer to one action.

    Attributes:
        observation: what the action returned (command output, an API result as JSON,
            an error message); the format decides how it is shown to the model.
        reward: in [0, 1]; the episode's reward is the one of its final step.
        done: the episode is over (the task was answered, finished or failed).
        error: the observation is an error message (a failed call), not a result.
        info: anything an environment wants to report (kept per turn in the episode).
        usage: model calls the environment made to answer (a simulated API, a judge).
    """

    observation: str = ""
    reward: float = 0.0
    done: bool = False
    error: bool = False
    info: Mapping[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        if not 0.0 <= self.reward <= 1.0:
            raise ValueError(f"StepResult.reward must be in [0, 1], got {self.reward}")


class EnvironmentFailure(Exception):
    """The environment could not answer an action (its sandbox died, the agent that
    simulates it gave no usable answer); the episode ends with ``environment_error``.

    ``raw`` is the failing text, if any, and ``usage`` the model calls spent on it.
    """

    def __init__(self, reason: str, *, raw: str = "", usage: Usage | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw
        self.usage = usage or Usage()


class Environment(Protocol[TaskT]):
    """Where an agent acts. Each environment defines its own task type.

    An environment serves one episode at a time: :meth:`reset` starts a task, then the
    runner calls :meth:`step` once per action. The caller that made the environment
    closes it.
    """

    async def reset(self, task: TaskT, *, seed: int | None = None) -> Observation:
        """Start ``task`` (a fresh state) and return what the agent sees first. ``seed``
        makes any randomness, model calls included, repeatable."""
        ...

    async def step(self, action: Action) -> StepResult:
        """Execute one action (never ``tool_calls``: the runner steps each call).

        Raises:
            EnvironmentFailure: the environment itself failed.
        """
        ...

    def admissible_actions(self) -> Sequence[Action] | None:
        """The valid actions now, for environments with a finite action set (a malformed
        action is then mapped to the closest one by BLEU); ``None`` when unbounded."""
        ...

    async def close(self) -> None:
        """Release what the environment holds (processes, connections)."""
        ...


@dataclass(frozen=True)
class TurnContext:
    """What a format may look at to build and check one turn.

    Attributes:
        tools: the functions of the task (:attr:`Observation.tools`).
        history: the single actions taken so far, oldest first.
        turn: the index of this turn (0 for the first action).
        last: this is the last turn the budget allows.
        rejected: this turn's malformed outputs so far (a repair's grammar may rule out
            what was rejected, so a constrained model cannot write it again).
    """

    tools: tuple[ToolSpec, ...] = ()
    history: tuple[Action, ...] = ()
    turn: int = 0
    last: bool = False
    rejected: tuple[str, ...] = ()


class ActionFormat(Protocol):
    """How actions are written and observations shown: the instructions, the parser, a
    grammar for constrained decoding, and the rendering of actions and observations.

    Every text is rendered from a template under ``prompts/runtime/`` or is format
    syntax (``Act: bash``); a format holds no prose of its own.
    """

    #: A short name, recorded with each episode.
    name: str
    #: Where the instructions go (:data:`Placement`).
    placement: Placement
    #: Stop sequences sent with every call (text formats stop before an observation).
    stop: tuple[str, ...]

    def instructions(self, prompts: PromptLibrary, first: Observation) -> str:
        """The format's instructions (after the environment's :attr:`Observation.system`)."""
        ...

    def acknowledgement(self, prompts: PromptLibrary) -> str | None:
        """A scripted assistant reply to instructions given as a user turn (``"Ok."``),
        or ``None``."""
        ...

    def task(self, prompts: PromptLibrary, first: Observation, *, after_demos: bool) -> str:
        """The first user turn's text, posing ``first`` (after demonstrations, it may say
        that a new task starts)."""
        ...

    def hint(self, prompts: PromptLibrary) -> str:
        """A one-line description of a valid turn, for repair requests."""
        ...

    def grammar(self, ctx: TurnContext) -> str | None:
        """A Lark grammar (llguidance dialect) of a valid turn, or ``None``."""
        ...

    def tools(self, ctx: TurnContext) -> tuple[ToolSpec, ...]:
        """Functions passed with the request (function calling); ``()`` for text formats."""
        ...

    def parse(self, completion: Completion, ctx: TurnContext) -> Action:
        """The action of ``completion``.

        Raises:
            genteach.agents.parsing.ParseError: malformed, with the reason.
        """
        ...

    def turn(self, completion: Completion, action: Action) -> Message:
        """The assistant turn that records the model's own (accepted) output."""
        ...

    def render(self, action: Action) -> Message:
        """An assistant turn that takes ``action`` (demonstrations, mapped actions)."""
        ...

    def observation(self, prompts: PromptLibrary, action: Action, result: StepResult) -> Message:
        """The turn that returns ``result`` of ``action`` to the model."""
        ...

    def action_text(self, action: Action) -> str:
        """``action`` as the text compared by BLEU with a malformed output."""
        ...

    def action_span(self, completion: Completion) -> str:
        """The part of a (possibly malformed) output that states its action, for BLEU."""
        ...


__all__ = [
    "Action",
    "ActionFormat",
    "ActionKind",
    "Environment",
    "EnvironmentFailure",
    "Observation",
    "Placement",
    "StepResult",
    "TurnContext",
]
