"""What the flows that act in an environment share: a task becomes one episode of the
teacher on the episode runner, kept as a record when the environment's reward says it
reached its goal, else a reject with the reason.

A subclass names its format and environment (:meth:`ActingFlow.format_for`,
:meth:`ActingFlow.start`), and the templates its environment renders; this base builds the
flow from the taxonomy, renders the teacher's guidance, runs the episodes of a unit side by
side and turns each into a record or a reject.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field

from genteach.flows.base import (
    FlowBuild,
    FlowSettings,
    RunContext,
    Task,
    WorkItem,
    category_view,
    episode_settings,
    skill_view,
    task_type,
)
from genteach.flows.respond import make_record
from genteach.models.base import Message
from genteach.records import Record
from genteach.runtime import ActionFormat, Environment, Episode, run_episode
from genteach.taxonomy import Skill


class ActingFlow:
    """Base of the flows whose teacher acts in an environment (web pages, a database).

    Class attributes:
        name: the stage's name.
        actor: the agent name recorded for each of the teacher's turns.
        guidance: the default template of the teacher's own guidance (not in the record;
            a skill overrides it with ``prompts: {assistant_system: ...}``).
        expected_turns: actions an episode is assumed to take, for ``--dry-run``.
    """

    name: ClassVar[str]
    actor: ClassVar[str]
    guidance: ClassVar[str]
    expected_turns: ClassVar[int] = 3

    class Settings(FlowSettings):
        """Attributes:
        max_steps: most actions of an episode.
        """

        max_steps: int = Field(default=8, ge=1, le=40)

    def __init__(
        self,
        skill: Skill,
        settings: Any,
        *,
        options: dict[str, Any],
        guidance_template: str | None = None,
    ) -> None:
        self.skill = skill
        self.settings = settings
        self.guidance_template = guidance_template or self.guidance
        self.format = self.format_for()
        self.episode = episode_settings(options, settings.max_steps)

    @classmethod
    def from_config(cls, skill: Skill, settings: Any, build: FlowBuild) -> Any:
        return cls(
            skill,
            settings,
            options=dict(build.options),
            guidance_template=skill.template("assistant_system", cls.guidance),
        )

    # -- what a subclass gives ------------------------------------------------------------
    def format_for(self) -> Any:
        """The action format the teacher acts in."""
        raise NotImplementedError

    def environment_templates(self) -> list[str]:
        """The templates the environment renders."""
        return []

    # -- shared ---------------------------------------------------------------------------
    def templates(self) -> list[str]:
        """The templates the episodes render: the guidance, the format's, the
        environment's."""
        return [self.guidance_template, *self.format.templates(), *self.environment_templates()]

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: per task, ``expected_turns`` model calls (at most
        ``max_steps``); the environment makes none."""
        return tasks * min(self.expected_turns, self.settings.max_steps), tasks

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        records = await asyncio.gather(*(self.act(item, ctx, t) for t in item.tasks))
        item.records.extend(r for r in records if r is not None)

    async def act(self, item: WorkItem, ctx: RunContext, task: Task) -> Record | None:
        """One task's episode, as a record or a reject."""
        raise NotImplementedError

    def guidance_for(self, task: Task, ctx: RunContext) -> str:
        """The teacher's guidance for ``task`` (its skill and task type)."""
        return ctx.prompts.render(
            self.guidance_template,
            skill=skill_view(self.skill).model_dump(),
            category=category_view(
                self.skill, "task_types", task_type(self.skill, task.sub_category)
            ).model_dump(),
        )

    async def play(
        self,
        item: WorkItem,
        ctx: RunContext,
        task: Task,
        env: Environment[Any],
        env_task: Any,
        fmt: ActionFormat,
        *,
        demos: Sequence[Message] = (),
    ) -> Episode:
        """Run ``env_task`` in ``env`` with the teacher acting in ``fmt`` (after the
        untrained ``demos``, if any); the environment is closed after."""
        try:
            episode = await run_episode(
                ctx.client,
                env,
                env_task,
                fmt,
                prompts=ctx.prompts,
                seed=task.stream(item.run_seed, "act").randrange(2**31),
                settings=self.episode,
                demos=demos,
                guidance=self.guidance_for(task, ctx),
            )
        finally:
            await env.close()
        item.add_usage(episode.usage)
        return episode

    def settle(
        self,
        item: WorkItem,
        ctx: RunContext,
        task: Task,
        episode: Episode,
        *,
        kept: bool,
        detail: str,
        outcome: str,
    ) -> Record | None:
        """The record of a finished episode that reached its goal (``kept``); otherwise a
        reject: the end reason for an episode that did not finish, ``detail`` for one that
        missed its goal."""
        if episode.end != "finished":
            item.reject(
                self.name,
                self.actor,
                f"{episode.end}: {episode.detail}",
                episode.raw,
                messages=episode.messages,
            )
            return None
        verification = task.key.result("passed" if kept else "failed", None, detail)
        item.count(verification)
        if not kept:
            item.reject(self.name, self.actor, detail, episode.raw, messages=episode.messages)
            return None
        return make_record(
            item,
            ctx,
            task,
            list(episode.messages),
            [*task.agents, *(self.actor for _ in episode.turns)],
            episode.usage,
            verification,
            outcome=outcome,
            templates=self.templates(),
        )

    def settle_by_reward(
        self, item: WorkItem, ctx: RunContext, task: Task, episode: Episode, *, outcome: str
    ) -> Record | None:
        """:meth:`settle` for flows that keep an episode whose reward reaches their
        ``min_reward`` setting (AgentTuning's filter); the detail is the reward and the
        environment's ``detail``."""
        detail = str(final_info(episode).get("detail", ""))
        return self.settle(
            item,
            ctx,
            task,
            episode,
            kept=episode.reward >= self.settings.min_reward,
            detail=f"reward {episode.reward:g}" + (f": {detail}" if detail else ""),
            outcome=outcome,
        )


def final_info(episode: Episode) -> dict[str, Any]:
    """The ``info`` of the episode's last step (where an environment reports its check)."""
    turns = episode.turns
    if not turns or not turns[-1].steps:
        return {}
    return dict(turns[-1].steps[-1].result.info)


__all__ = ["ActingFlow", "final_info"]
