"""ConversationFlow: multi-turn conversations (the follow_up skill), as episodes of the
runtime.

Each task opens a conversation: the student's first message (its system prompt, framing
and material as the response flow shows them), the teacher's reply, then a simulated
user's follow-ups, one move each (drawn in code), until the conversation has the number
of user turns drawn for it. Every reply is checked as it comes: the first against the
task's key, each later one against the limits its user message set, or recorded as
unchecked when it set none. Every assistant turn of the record is trained.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from typing import Any

from pydantic import Field, model_validator

from genteach.agents.conversation import Move, UserSimulator
from genteach.agents.respond import RespondInput
from genteach.flows.base import (
    DEFAULT_FRAMING,
    FlowBuild,
    FlowSettings,
    RunContext,
    Task,
    WorkItem,
    category_view,
    episode_settings,
    make_agent,
    presented_key,
    skill_view,
    task_type,
    templates_of,
)
from genteach.flows.respond import ANSWER_FORMS, POSITIONS, make_record, student_messages
from genteach.keys import ChoiceKey, UnanswerableKey, Verification, public_view
from genteach.models.base import Message, Usage, message
from genteach.records import Record
from genteach.runtime import run_episode
from genteach.runtime.conversation import ConversationEnvironment, ConversationTask, ReplyFormat
from genteach.taxonomy import Skill, TaxonomyError

#: The teacher's own guidance in a conversation (never part of the record).
GUIDANCE_TEMPLATE = "common/converse_system.j2"
#: The agent names recorded for the teacher's replies.
ASSISTANT = "conversation_assistant"


class ConversationFlow:
    """Holds a conversation of ``min_turns`` to ``max_turns`` user turns (drawn per task)
    about each task.

    The moves (``moves``: the taxonomy's data, each with a name, a description, whether
    it must set a limit code can check, and a weight) are drawn per task by weight,
    distinct while they last; when the simulator skips a move that does not fit, one of
    ``spare_moves`` more is tried. A conversation that fails a check keeps its turns
    before the failure when they are at least ``min_turns``; otherwise it is held again
    with a new seed (``verify_retries`` times), then rejected with the reason.
    """

    name = "conversation"

    class Settings(FlowSettings):
        """Attributes:
        min_turns: fewest user turns of a conversation (the first request included).
        max_turns: most user turns of a conversation.
        moves: the follow-up moves the simulated user makes (id, name, description,
            constraint, weight).
        spare_moves: moves tried in all, per conversation, in place of skipped ones.
        verify_retries: conversations held again when one fails before ``min_turns``.
        """

        min_turns: int = Field(default=3, ge=2, le=10)
        max_turns: int = Field(default=6, ge=2, le=12)
        moves: list[Move] = Field(default_factory=list)
        spare_moves: int = Field(default=2, ge=0, le=6)
        verify_retries: int = Field(default=1, ge=0, le=5)

        @model_validator(mode="after")
        def _turns(self) -> ConversationFlow.Settings:
            if self.min_turns > self.max_turns:
                raise ValueError(f"min_turns {self.min_turns} is above max_turns {self.max_turns}")
            return self

    def __init__(
        self,
        skill: Skill,
        simulator: UserSimulator,
        settings: Settings,
        *,
        options: dict[str, Any],
        guidance_template: str = GUIDANCE_TEMPLATE,
    ) -> None:
        if not any(m.weight > 0 for m in settings.moves):
            raise TaxonomyError(
                f"skills.{skill.id}.pipeline.conversation.moves: the conversation flow needs "
                "moves (id, name, description) with a positive weight"
            )
        self.skill = skill
        self.simulator = simulator
        self.settings = settings
        self.guidance_template = guidance_template
        self.episode = episode_settings(options, settings.max_turns)

    @classmethod
    def from_config(cls, skill: Skill, settings: Settings, build: FlowBuild) -> ConversationFlow:
        simulator = make_agent(
            UserSimulator, "user_simulator", skill, build.prompts, {}, build.options,
            system_key="user_simulator_system", user_key="user_simulator_user",
        )  # fmt: skip
        return cls(
            skill,
            simulator,
            settings,
            options=dict(build.options),
            guidance_template=skill.template("converse_system", GUIDANCE_TEMPLATE),
        )

    def templates(self) -> list[str]:
        """The templates the conversations render besides the simulator's: the teacher's
        guidance, the student-message framings, the answer formats and the format's."""
        framings = self.skill.student.framings
        return [
            self.guidance_template,
            *(framings.values if framings else [DEFAULT_FRAMING]),
            *(f"answers/{form}.j2" for form in ANSWER_FORMS),
            *ReplyFormat().templates(),
        ]

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: per task, a reply per user turn (the mean of the range) and a
        simulator call per follow-up; one record per task."""
        turns = (self.settings.min_turns + self.settings.max_turns) / 2
        return tasks * (2 * turns - 1), tasks

    def draw_moves(self, rng: random.Random, count: int) -> list[Move]:
        """``count`` moves by weight: distinct while they last, then again."""
        pool = [m for m in self.settings.moves if m.weight > 0]
        out: list[Move] = []
        while len(out) < count:
            current = out[len(out) - len(out) % len(pool) :]  # this round's draws
            left = [m for m in pool if m not in current]
            out.append(rng.choices(left, weights=[m.weight for m in left], k=1)[0])
        return out

    def guidance(self, task: Task, ctx: RunContext) -> str:
        """The teacher's system prompt for a conversation about ``task`` (it opens every
        request of the episode and never enters the record)."""
        return self._guidance(self.respond_input(task, ctx, student_messages(task, ctx)), ctx)

    def _guidance(self, inputs: RespondInput, ctx: RunContext) -> str:
        return ctx.prompts.render(self.guidance_template, **inputs.model_dump()).strip()

    def respond_input(
        self, task: Task, ctx: RunContext, conversation: list[Message]
    ) -> RespondInput:
        """What the teacher's guidance is rendered from (as the responder's system prompt)."""
        shown = presented_key(task.key, ctx.keys)
        return RespondInput(
            skill=skill_view(self.skill),
            category=category_view(
                self.skill, "task_types", task_type(self.skill, task.sub_category)
            ),
            conversation=conversation,
            form=shown.form,
            question=public_view(shown.view(task.view.layout)),
        )

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        records = await asyncio.gather(*(self._converse(item, ctx, t) for t in item.tasks))
        item.records.extend(r for r in records if r is not None)

    async def _converse(self, item: WorkItem, ctx: RunContext, task: Task) -> Record | None:
        s = self.settings
        rng = task.stream(item.run_seed, "converse")
        turns = rng.randint(s.min_turns, s.max_turns)
        moves = self.draw_moves(rng, turns - 1 + s.spare_moves)
        conversation = student_messages(task, ctx)
        inputs = self.respond_input(task, ctx, conversation)
        guidance = self._guidance(inputs, ctx)
        opening = ConversationTask(
            request=conversation[-1]["content"],
            skill=inputs.skill,
            category=inputs.category,
            system=task.view.system or "",
            turns=turns,
            min_turns=s.min_turns,
            moves=tuple(moves),
        )
        fmt = ReplyFormat(inputs.form)

        async def check_first(reply: str) -> Verification:
            return await ctx.verify(task, reply)

        usage = Usage()
        for _ in range(s.verify_retries + 1):
            env = ConversationEnvironment(self.simulator, ctx.client, check_first)
            episode = await run_episode(
                ctx.client,
                env,
                opening,
                fmt,
                prompts=ctx.prompts,
                seed=rng.randrange(2**31),
                settings=self.episode,
                guidance=guidance,
            )
            usage = usage + episode.usage
            if env.checks:
                item.count(env.checks[0])
            kept = kept_turns(env.checks)
            if kept >= s.min_turns:
                break
        else:
            item.add_usage(usage)
            agent, reason = failure(env, episode.end, episode.detail, s.min_turns)
            item.reject(self.name, agent, reason, episode.raw, messages=episode.messages)
            return None
        item.add_usage(usage)
        messages = first_turns(list(episode.messages), kept)
        if task.view.system == "" and messages[0]["role"] != "system":
            messages.insert(0, message("system", "", trained=False))
        shown = presented_key(task.key, ctx.keys)
        if isinstance(shown, ChoiceKey) and not isinstance(task.key, UnanswerableKey):
            for p in shown.correct_positions(task.view.layout):
                item.positions[POSITIONS[p]] += 1
        used = env.follow_ups[: kept - 1]
        agents = [*task.agents, ASSISTANT]
        for _ in used:
            agents += [self.simulator.name, ASSISTANT]
        slot = {**task.slot, "turns": str(kept), "moves": " ".join(t.move.id for t in used)}
        return make_record(
            item,
            ctx,
            replace(task, slot=slot),
            messages,
            agents,
            usage,
            conversation_verification(env.checks[:kept]),
            templates=[
                self.guidance_template,
                task.view.framing,
                f"answers/{inputs.form}.j2",
                *fmt.templates(),
                *templates_of(self.simulator),
            ],
        )


def kept_turns(checks: list[Verification]) -> int:
    """How many replies, from the first, passed or were unchecked."""
    n = 0
    for check in checks:
        if check.status == "failed":
            break
        n += 1
    return n


def first_turns(messages: list[Message], replies: int) -> list[Message]:
    """``messages`` up to and including the ``replies``-th assistant turn."""
    seen = 0
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            seen += 1
            if seen == replies:
                return messages[: i + 1]
    return messages


def failure(env: ConversationEnvironment, end: str, detail: str, min_turns: int) -> tuple[str, str]:
    """Who failed a conversation that kept fewer than ``min_turns`` turns, and why."""
    if env.checks and env.checks[-1].status == "failed":
        n = len(env.checks)
        what = "its key" if n == 1 else "the limits its user message set"
        detail = env.checks[-1].detail
        return ASSISTANT, f"the reply to user turn {n} disagrees with {what}: {detail}"
    if end == "environment_error":
        return "user_simulator", f"{end}: {detail}"
    if end == "finished":
        skipped = "; ".join(f"{move}: {why}" for move, why in env.skipped)
        return "user_simulator", (
            f"the user simulator skipped every move left after {len(env.checks)} user turns "
            f"(fewer than {min_turns}): {skipped}"
        )
    return ASSISTANT, f"{end}: {detail}"


def conversation_verification(checks: list[Verification]) -> Verification:
    """One verification for the record: the first reply's status against the task's key,
    and each turn's outcome in the detail (later turns passed, or unchecked when their
    user message set no limit code can check)."""
    first = checks[0]
    parts = [f"turn 1: {first.status} ({first.detail})"]
    parts += [f"turn {i}: {c.status} ({c.detail})" for i, c in enumerate(checks[1:], 2)]
    return Verification(
        kind=first.kind, status=first.status, answer=first.answer, detail="; ".join(parts)
    )


__all__ = ["ConversationFlow", "conversation_verification", "first_turns", "kept_turns"]
