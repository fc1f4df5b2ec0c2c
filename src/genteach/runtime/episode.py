"""One episode loop for every environment and action format.

:func:`run_episode` opens the conversation (instructions, an optional scripted
acknowledgement, demonstrations, the task), then per turn: asks the model, parses its
action (a malformed one is mapped to the closest admissible action by BLEU, or repaired
a bounded number of times), steps the environment and shows the observation, until the
environment is done or a budget or rule ends the episode. The :class:`Episode` holds
everything a record needs: the messages with their ``trained`` flags, each turn's action
and cost, the reward and why the episode ended.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar, get_args

from genteach.agents.base import REPAIR_STYLES, RepairStyle
from genteach.agents.parsing import (
    ParseError,
    check_no_placeholders,
    format_placeholders,
    shares_words,
)
from genteach.models.base import (
    Completion,
    FatalModelError,
    Message,
    ModelClient,
    ModelError,
    ModelRequest,
    ToolSpec,
    TransientModelError,
    Usage,
    is_trained,
    message,
)
from genteach.prompts import PromptLibrary
from genteach.runtime.base import (
    Action,
    ActionFormat,
    Environment,
    EnvironmentFailure,
    Observation,
    StepResult,
    TurnContext,
)
from genteach.runtime.repair import Rejection, closest_action, repair_messages

TaskT = TypeVar("TaskT")

#: Why an episode ended. ``finished``: the environment said done (the reward says how
#: well); the others are failures with reward 0: a budget ran out, the model wrote the
#: same output ``repeat_limit`` times in a row (AgentTuning), an action stayed malformed
#: after its repairs, the environment failed, or a model request failed for good.
EndReason = Literal[
    "finished",
    "turn_budget",
    "token_budget",
    "time_budget",
    "repeated_output",
    "malformed_action",
    "environment_error",
    "model_error",
]
END_REASONS: tuple[str, ...] = get_args(EndReason)


@dataclass(frozen=True)
class EpisodeSettings:
    """The runner's budgets and rules (every field has a default; ``None``: no limit).

    Attributes:
        max_turns: the most actions the model may take (AgentBench OS: 8, DB: 5).
        max_tokens: the most tokens (prompt and completion, the environment's model
            calls included) the episode may spend; checked before each model call.
        max_seconds: the most wall-clock seconds; checked before each model call (a
            call under way is never cancelled: what is paid for is kept).
        max_repairs: repair calls per turn for a malformed action (when it is not mapped).
        repair_style: ``"show"`` the rejected output and ask for a repair, or ask
            ``"fresh"`` with a note of what was wrong (see :func:`repair_messages`).
        repair_temperature: temperature of repair calls (``None``: ``temperature``).
        repeat_limit: the episode fails when the model writes the same output this
            many times in a row (AgentTuning: 3); ``None`` turns the rule off.
        map_to_admissible: map a malformed action to the closest admissible one by BLEU
            when the environment has a finite action set.
        min_bleu: the score (0-100) a mapped action must exceed.
        rewrite_mapped: record a mapped turn as the format writes the mapped action,
            instead of the model's own text.
        temperature / max_call_tokens: sampling settings of each call.
    """

    max_turns: int | None = 8
    max_tokens: int | None = None
    max_seconds: float | None = None
    max_repairs: int = 2
    repair_style: RepairStyle = "show"
    repair_temperature: float | None = None
    repeat_limit: int | None = 3
    map_to_admissible: bool = True
    min_bleu: float = 0.0
    rewrite_mapped: bool = False
    temperature: float | None = None
    max_call_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_turns", "max_tokens", "max_seconds", "repeat_limit"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"EpisodeSettings.{name} must be positive or None, got {value}")
        if self.repeat_limit is not None and self.repeat_limit < 2:
            raise ValueError(
                f"EpisodeSettings.repeat_limit must be 2 or more, got {self.repeat_limit}"
            )
        if self.max_repairs < 0:
            raise ValueError(
                f"EpisodeSettings.max_repairs must be 0 or more, got {self.max_repairs}"
            )
        if self.repair_style not in REPAIR_STYLES:
            raise ValueError(
                f"EpisodeSettings.repair_style must be one of {', '.join(REPAIR_STYLES)}, "
                f"got {self.repair_style!r}"
            )


@dataclass(frozen=True)
class MappedAction:
    """A malformed output that was mapped to an admissible action by BLEU."""

    reason: str
    score: float


@dataclass(frozen=True)
class Step:
    """One action executed by the environment and its result."""

    action: Action
    result: StepResult


@dataclass(frozen=True)
class Turn:
    """One action of the model.

    Attributes:
        index: 0 for the first turn.
        raw: the model's accepted output (tool calls written as ``name(arguments)``).
        action: the action executed (the mapped one when ``mapped`` is set).
        usage: the model calls of this turn, repairs included.
        rejected: malformed outputs of this turn before the accepted one.
        mapped: set when the output was malformed and mapped by BLEU.
        steps: what the environment did with the action (one step per call).
    """

    index: int
    raw: str
    action: Action
    usage: Usage
    rejected: tuple[Rejection, ...] = ()
    mapped: MappedAction | None = None
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Episode:
    """A finished episode: what a record needs.

    Attributes:
        format: the action format's name.
        messages: the trajectory, each turn with its ``trained`` flag: the opening
            (instructions, acknowledgement, demonstrations, task) and observations
            ``False``, the model's own turns ``True``.
        turns: per model action: its output, parsed action, repairs, mapping, cost and
            environment steps.
        end: why it ended (:data:`EndReason`); ``detail`` says it in words.
        reward: the final step's reward when ``finished``, else 0.
        done: the environment said done.
        usage: every model call of the episode, the environment's included.
        raw: the last output of the model (for a reject record).
        tools: the functions of the task (a record of a function-calling trajectory
            needs them).
    """

    format: str
    messages: tuple[Message, ...]
    turns: tuple[Turn, ...]
    end: EndReason
    detail: str
    reward: float
    done: bool
    usage: Usage
    raw: str = ""
    tools: tuple[ToolSpec, ...] = ()

    @property
    def trained(self) -> list[bool]:
        """The ``trained`` flag of each message."""
        return [is_trained(m) for m in self.messages]

    @property
    def final_action(self) -> Action | None:
        """The last action taken, if any."""
        return self.turns[-1].action if self.turns else None


def derive_seed(base: int | None, *path: int | str) -> int | None:
    """A call seed derived from ``base`` and a path such as ``(turn, attempt)``: the same
    inputs give the same seed (a rerun hits the response cache), different paths
    different seeds. ``None`` stays ``None``."""
    if base is None:
        return None
    digest = hashlib.sha256(":".join(map(str, (base, *path))).encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def demonstration(
    fmt: ActionFormat,
    prompts: PromptLibrary,
    task: str,
    steps: Sequence[tuple[Action, StepResult | None]],
) -> list[Message]:
    """One-shot demonstration turns (all untrained): ``task`` as a user turn, then each
    action as the format writes it followed by its observation (``None``: no
    observation, e.g. after the final answer). Pass them to :func:`run_episode`."""
    turns = [message("user", task)]
    for action, result in steps:
        turns.append(fmt.render(action))
        if result is not None:
            turns.extend(fmt.observation(prompts, call, result) for call in action.steps)
    return [_flag(m, False) for m in turns]


def check_own_thought(thought: str | None, instructions: str) -> None:
    """Raise :class:`ParseError` when a turn's reasoning (20 characters or more) is copied
    word for word from the format's instructions: the model repeated an example's thought
    instead of reasoning about its task, and a trained turn would teach it to."""
    own = " ".join((thought or "").split())
    if len(own) >= 20 and own in " ".join(instructions.split()):
        shown = own[:60].rstrip()
        raise ParseError(
            f"the reasoning {shown!r} is copied from the format's example: reason about your "
            "own task in its place"
        )


def instructions_text(fmt: ActionFormat, prompts: PromptLibrary, first: Observation) -> str:
    """The environment's context (:attr:`Observation.system`) then the format's
    instructions, joined by a blank line."""
    parts = (first.system.strip(), fmt.instructions(prompts, first).strip())
    return "\n\n".join(t for t in parts if t)


def opening(
    fmt: ActionFormat,
    prompts: PromptLibrary,
    first: Observation,
    demos: Sequence[Message] = (),
) -> list[Message]:
    """The turns before the model's first action, all untrained: the instructions (the
    environment's :attr:`Observation.system`, then the format's) as a system or user turn,
    the format's acknowledgement after a user turn, the demonstrations, and the task.
    Consecutive user turns are joined (AgentBench puts its demonstration's question in
    the instructions' turn)."""
    instructions = instructions_text(fmt, prompts, first)
    turns: list[Message] = []
    if instructions:
        turns.append(message(fmt.placement, instructions))
        ack = fmt.acknowledgement(prompts) if fmt.placement == "user" else None
        if ack:
            turns.append(message("assistant", ack))
    turns.extend(demos)
    turns.append(message("user", fmt.task(prompts, first, after_demos=bool(demos))))
    joined: list[Message] = []
    for turn in turns:
        if joined and _plain_user(turn) and _plain_user(joined[-1]):
            joined[-1] = message("user", f"{joined[-1]['content']}\n\n{turn['content']}")
        else:
            joined.append(turn)
    return [_flag(m, False) for m in joined]


async def run_episode(
    client: ModelClient,
    env: Environment[TaskT],
    task: TaskT,
    fmt: ActionFormat,
    *,
    prompts: PromptLibrary,
    seed: int | None = None,
    settings: EpisodeSettings | None = None,
    demos: Sequence[Message] = (),
    guidance: str = "",
    clock: Callable[[], float] = time.monotonic,
) -> Episode:
    """Run ``task`` in ``env`` with the model behind ``client`` acting in ``fmt``.

    Args:
        client: the model (any :class:`~genteach.models.ModelClient`).
        env: the environment; reset here, closed by the caller.
        task: the environment's task.
        fmt: how the model writes actions and sees observations.
        prompts: the prompt library (instructions, observations, repair requests).
        seed: base seed; each call's seed is :func:`derive_seed` of it and the turn and
            attempt, the environment's reset seed of it and ``"reset"``.
        settings: budgets and rules (:class:`EpisodeSettings`).
        demos: one-shot demonstration turns after the instructions (made untrained),
            e.g. from :func:`demonstration`.
        guidance: what the acting model is told that the student is not (e.g. a teacher's
            role and quality bar): put before the instructions in every request, never in
            the trajectory.
        clock: the time source of ``max_seconds`` (tests pass a fake one).

    Returns:
        The :class:`Episode`; a failed one too (its ``end`` says why).

    Raises:
        FatalModelError, TransientModelError: the endpoint cannot serve (the run's
            failure handling decides); any other :class:`ModelError` ends the episode
            with ``model_error``.
    """
    runner = _Runner(
        client, env, fmt, prompts, seed, settings or EpisodeSettings(), clock, guidance.strip()
    )
    return await runner.run(task, demos)


@dataclass
class _Accepted:
    completion: Completion
    action: Action
    raw: str
    rejected: tuple[Rejection, ...]
    mapped: MappedAction | None
    usage: Usage


@dataclass
class _Ended:
    end: EndReason
    detail: str
    raw: str = ""


@dataclass
class _Runner:
    client: ModelClient
    env: Environment[Any]
    fmt: ActionFormat
    prompts: PromptLibrary
    seed: int | None
    settings: EpisodeSettings
    clock: Callable[[], float]
    guidance: str = ""
    messages: list[Message] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    placeholders: set[str] = field(default_factory=set)
    instructions: str = ""
    start: float = 0.0

    async def run(self, task: object, demos: Sequence[Message]) -> Episode:
        self.start = self.clock()
        try:
            first = await self.env.reset(task, seed=derive_seed(self.seed, "reset"))
        except EnvironmentFailure as exc:
            self.usage = self.usage + exc.usage
            return self._episode(_Ended("environment_error", exc.reason, exc.raw), (), 0.0, False)
        self.messages = opening(self.fmt, self.prompts, first, demos)
        # The format's examples live in the instructions; the task is content.
        self.instructions = instructions_text(self.fmt, self.prompts, first)
        self.placeholders = format_placeholders([self.instructions])
        history: list[Action] = []
        outputs: list[str] = []
        limit = self.settings.max_turns
        index = 0
        while True:
            if limit is not None and index >= limit:
                ended = _Ended("turn_budget", f"no end within {limit} turns")
                break
            ctx = TurnContext(
                tools=first.tools,
                history=tuple(history),
                turn=index,
                last=limit is not None and index == limit - 1,
            )
            got = await self._act(ctx)
            if isinstance(got, _Ended):
                ended = got
                break
            outputs.append(got.raw)
            repeat = self.settings.repeat_limit
            if repeat is not None and len(outputs) >= repeat and len(set(outputs[-repeat:])) == 1:
                ended = _Ended(
                    "repeated_output", f"the same output {repeat} times in a row", got.raw
                )
                break
            record = self.fmt.turn(got.completion, got.action)
            if got.mapped is not None and self.settings.rewrite_mapped:
                record = self.fmt.render(got.action)
            self.messages.append(_flag(record, True))
            steps, failure = await self._execute(got.action)
            history.extend(got.action.steps)
            self.turns.append(
                Turn(
                    index=index,
                    raw=got.raw,
                    action=got.action,
                    usage=got.usage,
                    rejected=got.rejected,
                    mapped=got.mapped,
                    steps=steps,
                )
            )
            if failure is not None:
                ended = failure
                break
            if steps and steps[-1].result.done:
                result = steps[-1].result
                return self._episode(_Ended("finished", "the environment is done", got.raw),
                                     first.tools, result.reward, True)  # fmt: skip
            index += 1
        return self._episode(ended, first.tools, 0.0, False)

    async def _act(self, ctx: TurnContext) -> _Accepted | _Ended:
        """One model action: call, parse, then map or repair a malformed one."""
        s = self.settings
        request = ModelRequest(
            messages=self._guided(self.messages),
            grammar=self.fmt.grammar(ctx),
            stop=self.fmt.stop,
            tools=self.fmt.tools(ctx),
            temperature=s.temperature,
            max_tokens=s.max_call_tokens,
        )
        rejected: list[Rejection] = []
        spent = Usage()
        for attempt in range(s.max_repairs + 1):
            over = self._over_budget()
            if over is not None:
                over.raw = rejected[-1].raw if rejected else ""
                return over
            if rejected:
                ctx = replace(ctx, rejected=tuple(r.raw for r in rejected))
                request = request.with_(
                    messages=self._guided(repair_messages(
                        self.prompts, s.repair_style, self.fmt.hint(self.prompts),
                        self.messages, rejected,
                    )),
                    grammar=self.fmt.grammar(ctx),
                    temperature=s.temperature if s.repair_temperature is None
                    else s.repair_temperature,
                )  # fmt: skip
            try:
                completion = await self.client.complete(
                    request.with_(seed=derive_seed(self.seed, ctx.turn, attempt))
                )
            except (FatalModelError, TransientModelError):
                raise
            except ModelError as exc:
                return _Ended("model_error", f"model error: {exc}")
            self.usage = self.usage + completion.usage
            spent = spent + completion.usage
            raw = _raw(completion)
            try:
                if completion.finish_reason == "length":
                    raise ParseError("the answer was cut off at the token limit")
                action = self.fmt.parse(completion, ctx)
                check_no_placeholders(completion.text, self.placeholders)
                check_own_thought(action.thought, self.instructions)
                if s.repair_style == "fresh" and any(
                    shares_words(completion.text, r.reason, 8) for r in rejected
                ):
                    raise ParseError(
                        "the answer repeats the note about an earlier answer instead of "
                        "answering the request"
                    )
            except ParseError as exc:
                mapped = self._map(completion, exc.reason)
                if mapped is not None:
                    return _Accepted(completion, mapped[0], raw, tuple(rejected), mapped[1], spent)
                rejected.append(Rejection(raw=raw, reason=exc.reason))
                continue
            return _Accepted(completion, action, raw, tuple(rejected), None, spent)
        return _Ended(
            "malformed_action",
            f"malformed action after {s.max_repairs + 1} attempts: {rejected[-1].reason}",
            rejected[-1].raw,
        )

    def _guided(self, messages: Sequence[Message]) -> list[Message]:
        """``messages`` as sent: the guidance first (in the system turn, or a system turn
        of its own), never in the trajectory."""
        if not self.guidance:
            return list(messages)
        first = messages[0]
        if first["role"] != "system":
            return [message("system", self.guidance), *messages]
        guided = first.copy()
        guided["content"] = f"{self.guidance}\n\n{first['content']}"
        return [guided, *messages[1:]]

    def _map(self, completion: Completion, reason: str) -> tuple[Action, MappedAction] | None:
        if not self.settings.map_to_admissible:
            return None
        candidates = self.env.admissible_actions()
        if not candidates:
            return None
        best = closest_action(
            self.fmt.action_span(completion), candidates, self.fmt, min_score=self.settings.min_bleu
        )
        if best is None:
            return None
        return best[0], MappedAction(reason=reason, score=best[1])

    async def _execute(self, action: Action) -> tuple[tuple[Step, ...], _Ended | None]:
        """Step the environment once per call of ``action``; show each observation (a
        call's always, as its result answers it; an answer's only when not done)."""
        steps: list[Step] = []
        for call in action.steps:
            try:
                result = await self.env.step(call)
            except EnvironmentFailure as exc:
                self.usage = self.usage + exc.usage
                return tuple(steps), _Ended("environment_error", exc.reason, exc.raw)
            self.usage = self.usage + result.usage
            steps.append(Step(call, result))
            if call.kind == "call" or not result.done:
                observed = self.fmt.observation(self.prompts, call, result)
                self.messages.append(_flag(observed, False))
            if result.done:
                break
        return tuple(steps), None

    def _over_budget(self) -> _Ended | None:
        s = self.settings
        if s.max_tokens is not None and self.usage.total_tokens >= s.max_tokens:
            return _Ended(
                "token_budget",
                f"{self.usage.total_tokens} tokens used, the budget is {s.max_tokens}",
            )
        elapsed = self.clock() - self.start
        if s.max_seconds is not None and elapsed >= s.max_seconds:
            return _Ended(
                "time_budget", f"{elapsed:.1f} s elapsed, the budget is {s.max_seconds} s"
            )
        return None

    def _episode(
        self, ended: _Ended, tools: Sequence[ToolSpec], reward: float, done: bool
    ) -> Episode:
        return Episode(
            format=self.fmt.name,
            messages=tuple(self.messages),
            turns=tuple(self.turns),
            end=ended.end,
            detail=ended.detail,
            reward=reward,
            done=done,
            usage=self.usage,
            raw=ended.raw,
            tools=tuple(tools),
        )


def _raw(completion: Completion) -> str:
    """A completion as text: its text, then each tool call as ``name(arguments)``."""
    calls = [f"{c['name']}({c['arguments']})" for c in completion.tool_calls]
    return "\n".join(t for t in (completion.text.strip(), *calls) if t)


def _flag(m: Message, trained: bool) -> Message:
    flagged = m.copy()
    flagged["trained"] = trained
    return flagged


def _plain_user(m: Message) -> bool:
    return m["role"] == "user" and "tool_call_id" not in m


__all__ = [
    "END_REASONS",
    "EndReason",
    "Episode",
    "EpisodeSettings",
    "MappedAction",
    "Step",
    "Turn",
    "check_own_thought",
    "demonstration",
    "derive_seed",
    "instructions_text",
    "opening",
    "run_episode",
]
