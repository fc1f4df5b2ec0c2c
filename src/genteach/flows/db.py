"""DbEpisodeFlow: database tasks as AgentTuning trajectories.

The teacher acts in AgentBench's DB format (:class:`~genteach.runtime.ReactDbFormat`: the
format's instructions and a scripted "Ok." open the conversation, untrained) on a fresh
SQLite database per task (:class:`~genteach.runtime.DbEnvironment`); the episode is kept
only when its reward reaches ``min_reward`` (AgentTuning keeps reward 1). Its messages,
each with its trained flag, are the record.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from genteach.agents.db import DatabaseMaterial
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
from genteach.keys import DbReferenceKey
from genteach.records import Record
from genteach.runtime import ReactDbFormat, run_episode
from genteach.runtime.db import SELECT_KINDS, TASK_TEMPLATE, DbEnvironment, DbTask, SelectKind
from genteach.taxonomy import Skill

#: The teacher's own guidance for acting (not part of the record).
GUIDANCE_TEMPLATE = "db/assistant_system.j2"


class DbEpisodeFlow:
    """Runs each database task as an episode of at most ``max_steps`` actions and keeps
    it when its reward is at least ``min_reward``; otherwise a reject with the reward's
    reason (which values differed, or that the tables' state differs from the
    reference's)."""

    name = "db_episode"

    class Settings(FlowSettings):
        """Attributes:
        max_steps: most actions of an episode (AgentBench: 5).
        min_reward: the reward an episode needs to be kept (AgentTuning: 1).
        """

        max_steps: int = Field(default=5, ge=1, le=30)
        min_reward: float = Field(default=1.0, ge=0.0, le=1.0)

    #: Actions an episode is assumed to take, for ``--dry-run`` estimates.
    expected_turns = 3

    def __init__(
        self,
        skill: Skill,
        settings: Settings,
        *,
        options: dict[str, Any],
        guidance_template: str = GUIDANCE_TEMPLATE,
    ) -> None:
        self.skill = skill
        self.settings = settings
        self.guidance_template = guidance_template
        self.format = ReactDbFormat()
        self.episode = episode_settings(options, settings.max_steps)

    @classmethod
    def from_config(cls, skill: Skill, settings: Settings, build: FlowBuild) -> DbEpisodeFlow:
        return cls(
            skill,
            settings,
            options=dict(build.options),
            guidance_template=skill.template("assistant_system", GUIDANCE_TEMPLATE),
        )

    def templates(self) -> list[str]:
        """The templates the episodes render: the guidance, the format's, the first turn."""
        return [self.guidance_template, *self.format.templates(), TASK_TEMPLATE]

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: per task, ``expected_turns`` model calls (at most
        ``max_steps``); the database makes none."""
        return tasks * min(self.expected_turns, self.settings.max_steps), tasks

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        records = await asyncio.gather(*(self._act(item, ctx, t) for t in item.tasks))
        item.records.extend(r for r in records if r is not None)

    def db_task(self, task: Task) -> DbTask:
        """The environment's task: the question, the tables, the reference and its result
        (the key's, computed when the task was written)."""
        material, key = task.material, task.key
        if not isinstance(material, DatabaseMaterial) or not isinstance(key, DbReferenceKey):
            raise RuntimeError(
                f"{self.name} needs tasks on a database with db_reference keys: use a "
                "db_tables transformer"
            )
        subkind: SelectKind | None = None
        if key.operation == "select":
            wanted = task.sub_category.removesuffix("_select")
            subkind = wanted if wanted in SELECT_KINDS else "other"  # type: ignore[assignment]
        expected = key.expected
        return DbTask(
            question=task.instruction,
            database=material.database,
            kind=key.operation,
            reference_sql=key.sql,
            subkind=subkind,
            expected=expected
            if isinstance(expected, str) or expected is None
            else tuple(tuple(r) for r in expected),
        )

    async def _act(self, item: WorkItem, ctx: RunContext, task: Task) -> Record | None:
        db_task = self.db_task(task)
        guidance = ctx.prompts.render(
            self.guidance_template,
            skill=skill_view(self.skill).model_dump(),
            category=category_view(
                self.skill, "task_types", task_type(self.skill, task.sub_category)
            ).model_dump(),
        )
        env = DbEnvironment(ctx.prompts)
        try:
            episode = await run_episode(
                ctx.client,
                env,
                db_task,
                self.format,
                prompts=ctx.prompts,
                seed=task.stream(item.run_seed, "act").randrange(2**31),
                settings=self.episode,
                guidance=guidance,
            )
        finally:
            await env.close()
        item.add_usage(episode.usage)
        if episode.end != "finished":
            item.reject(self.name, "db_assistant", f"{episode.end}: {episode.detail}", episode.raw)
            return None
        last = episode.turns[-1].steps[-1].result if episode.turns[-1].steps else None
        detail = str(last.info.get("detail", "")) if last is not None else ""
        kept = episode.reward >= self.settings.min_reward
        verification = task.key.result(
            "passed" if kept else "failed",
            None,
            f"reward {episode.reward:g}" + (f": {detail}" if detail else ""),
        )
        item.count(verification)
        if not kept:
            item.reject(self.name, "db_assistant", verification.detail, episode.raw)
            return None
        return make_record(
            item,
            ctx,
            task,
            list(episode.messages),
            [*task.agents, *("db_assistant" for _ in episode.turns)],
            episode.usage,
            verification,
            outcome=db_task.kind,
            templates=self.templates(),
        )


__all__ = ["GUIDANCE_TEMPLATE", "DbEpisodeFlow"]
