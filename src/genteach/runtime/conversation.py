"""Multi-turn conversations as episodes: the model replies, a simulated user asks again.

:class:`ConversationEnvironment` poses a first request and answers each reply with the
user's next message, written by :class:`~genteach.agents.conversation.UserSimulator`
making one planned move per turn. It checks every reply as it comes: the first against
the task's key (a check the caller passes in), each later one against the limits its
user message set (:class:`~genteach.keys.ConstraintsKey`), or marks it unchecked when the
message set none. A failed check ends the episode with reward 0; so does a conversation
whose user ran out of moves that fit before ``min_turns``.

:class:`ReplyFormat` is the action format of plain chat: every completion is an
``answer``, every observation a user turn; only the first reply of a closed-form task
ends with a ``Final answer:`` line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from genteach.agents.base import REPAIR_TEMPLATE, RETRY_NOTE_TEMPLATE, AgentError, AgentSkipped
from genteach.agents.conversation import FollowUp, FollowUpInput, Move, UserSimulator
from genteach.agents.parsing import ParseError
from genteach.agents.respond import FINAL_LINE_GRAMMAR
from genteach.agents.views import CategoryView, SkillView
from genteach.keys import Layout, Verification, final_answer
from genteach.models.base import Completion, Message, ModelClient, ModelError, ToolSpec, Usage
from genteach.models.base import message as make_message
from genteach.prompts import PromptLibrary
from genteach.runtime.base import (
    Action,
    EnvironmentFailure,
    Observation,
    Placement,
    StepResult,
    TurnContext,
)
from genteach.runtime.episode import derive_seed

#: A reply to a follow-up that sets no limit code can check.
UNCHECKED = "no limit code can check"


@dataclass(frozen=True)
class ConversationTask:
    """One conversation to hold.

    Attributes:
        request: the user's first message (the task, with its material).
        system: the system message the assistant is given ("" for none).
        turns: user messages to reach (the first included).
        min_turns: user messages a conversation needs to count, when the user runs out of
            moves that fit before ``turns``.
        moves: the moves to make, in order: the first ``turns - 1`` are planned, the rest
            are spares tried when the simulator skips one (it does not fit).
        skill / category: what the simulator is told the conversation teaches.
    """

    request: str
    skill: SkillView
    category: CategoryView
    system: str = ""
    turns: int = 3
    min_turns: int = 3
    moves: tuple[Move, ...] = ()


@dataclass
class FollowUpTurn:
    """A user message the simulator wrote, and the move it makes."""

    move: Move
    follow_up: FollowUp


def check_reply(follow_up: FollowUp | None, reply: str) -> Verification:
    """A follow-up reply against the limits its user message set (unchecked without any)."""
    key = follow_up.key() if follow_up is not None else None
    if key is None:
        return Verification(kind="constraints", status="unchecked", detail=UNCHECKED)
    return key.check(reply, Layout())


@dataclass
class ConversationEnvironment:
    """A user, simulated, in conversation with the acting model (see the module docstring).

    Args:
        simulator: the agent that writes each next user message.
        client: the model the simulator calls (seeded from the episode's seed).
        check_first: checks the first reply against the task's key.

    After an episode, ``checks`` holds one verification per reply, ``follow_ups`` the user
    messages written (with their moves) and ``skipped`` the moves the simulator declined.
    """

    simulator: UserSimulator
    client: ModelClient
    check_first: Callable[[str], Awaitable[Verification]]
    checks: list[Verification] = field(default_factory=list, init=False)
    follow_ups: list[FollowUpTurn] = field(default_factory=list, init=False)
    skipped: list[tuple[str, str]] = field(default_factory=list, init=False)
    _task: ConversationTask | None = field(default=None, init=False)
    _seed: int | None = field(default=None, init=False)
    _history: list[Message] = field(default_factory=list, init=False)
    _next_move: int = field(default=0, init=False)

    async def reset(self, task: ConversationTask, *, seed: int | None = None) -> Observation:
        if task.turns < 2 or not 2 <= task.min_turns <= task.turns:
            raise ValueError(
                f"a conversation needs 2 <= min_turns <= turns, got {task.min_turns}, {task.turns}"
            )
        self._task, self._seed = task, seed
        self.checks, self.follow_ups, self.skipped = [], [], []
        self._history = [make_message("user", task.request)]
        self._next_move = 0
        return Observation(text=task.request, system=task.system)

    async def step(self, action: Action) -> StepResult:
        task = self._task
        if task is None:
            raise RuntimeError("reset the conversation before stepping it")
        if action.kind != "answer":
            raise EnvironmentFailure(f"a conversation takes replies, not {action.kind} actions")
        self._history.append(make_message("assistant", action.text))
        if self.checks:
            check = check_reply(self.follow_ups[-1].follow_up, action.text)
        else:
            check = await self.check_first(action.text)
        self.checks.append(check)
        if check.status == "failed":
            return StepResult(done=True, reward=0.0, info={"failed": len(self.checks)})
        if len(self.checks) >= task.turns:
            return StepResult(done=True, reward=1.0)
        turn, usage = await self._follow_up(task)
        if turn is None:
            enough = len(self.checks) >= task.min_turns
            return StepResult(
                done=True, reward=float(enough), usage=usage, info={"ended": len(self.checks)}
            )
        self.follow_ups.append(turn)
        self._history.append(make_message("user", turn.follow_up.message))
        return StepResult(observation=turn.follow_up.message, usage=usage)

    async def _follow_up(self, task: ConversationTask) -> tuple[FollowUpTurn | None, Usage]:
        """The next user message: the next planned move, then spares while the simulator
        skips; None when no move is left."""
        usage = Usage()
        number = len(self.checks) + 1
        while self._next_move < len(task.moves):
            move = task.moves[self._next_move]
            self._next_move += 1
            inputs = FollowUpInput(
                skill=task.skill,
                category=task.category,
                conversation=list(self._history),
                move=move,
                turn=number,
                turns=task.turns,
            )
            seed = derive_seed(self._seed, "user", number, self._next_move)
            try:
                result = await self.simulator.run(self.client, inputs, seed=seed)
            except AgentSkipped as exc:
                usage = usage + exc.usage
                self.skipped.append((move.id, exc.reason))
                continue
            except AgentError as exc:
                raise EnvironmentFailure(
                    f"user simulator: {exc.reason}", raw=exc.raw, usage=usage + exc.usage
                ) from exc
            except ModelError as exc:
                raise EnvironmentFailure(
                    f"user simulator: model error: {exc}", usage=usage
                ) from exc
            return FollowUpTurn(move=move, follow_up=result.output), usage + result.usage
        return None, usage

    def admissible_actions(self) -> Sequence[Action] | None:
        return None

    async def close(self) -> None:
        pass


class ReplyFormat:
    """Plain chat: the whole completion is the reply (an ``answer``), each observation is
    the user's next message. ``form`` is the answer form of the first request: when it is
    closed, the first reply must end with one ``Final answer:`` line (and is held to it by
    :data:`~genteach.agents.respond.FINAL_LINE_GRAMMAR`); a later reply must not have one.
    The format adds no instructions: the system turn is the student's own."""

    name = "reply"
    placement: Placement = "system"
    stop: tuple[str, ...] = ()

    def __init__(self, form: str = "open", *, hint_template: str = "runtime/reply/hint.j2"):
        self.form = form
        self.hint_template = hint_template

    def templates(self) -> list[str]:
        """Every template this format renders."""
        return [self.hint_template, REPAIR_TEMPLATE, RETRY_NOTE_TEMPLATE]

    def instructions(self, prompts: PromptLibrary, first: Observation) -> str:
        return ""

    def acknowledgement(self, prompts: PromptLibrary) -> str | None:
        return None

    def task(self, prompts: PromptLibrary, first: Observation, *, after_demos: bool) -> str:
        return first.text

    def hint(self, prompts: PromptLibrary) -> str:
        return prompts.render(self.hint_template).strip()

    def _closed(self, ctx: TurnContext) -> bool:
        return ctx.turn == 0 and self.form != "open"

    def grammar(self, ctx: TurnContext) -> str | None:
        return FINAL_LINE_GRAMMAR if self._closed(ctx) else None

    def tools(self, ctx: TurnContext) -> tuple[ToolSpec, ...]:
        return ()

    def parse(self, completion: Completion, ctx: TurnContext) -> Action:
        text = completion.text.strip()
        if not text:
            raise ParseError("empty answer")
        if text.startswith('{"skip"'):
            raise ParseError("the answer is a JSON skip object, not a reply")
        if self._closed(ctx) and final_answer(text) is None:
            raise ParseError(
                'the answer does not end with the line "Final answer: ..." that the answer '
                "format asks for"
            )
        if ctx.turn > 0 and final_answer(text) is not None:
            raise ParseError(
                'a follow-up reply has no "Final answer:" line: answer the last message as '
                "it asks, in plain text"
            )
        return Action(kind="answer", text=text)

    def turn(self, completion: Completion, action: Action) -> Message:
        return make_message("assistant", completion.text.strip())

    def render(self, action: Action) -> Message:
        return make_message("assistant", action.text)

    def observation(self, prompts: PromptLibrary, action: Action, result: StepResult) -> Message:
        return make_message("user", result.observation)

    def action_text(self, action: Action) -> str:
        return action.text

    def action_span(self, completion: Completion) -> str:
        return completion.text.strip()


__all__ = [
    "UNCHECKED",
    "ConversationEnvironment",
    "ConversationTask",
    "FollowUpTurn",
    "ReplyFormat",
    "check_reply",
]
