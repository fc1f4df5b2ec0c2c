"""DbEpisodeFlow: database tasks as AgentTuning trajectories.

The teacher acts in AgentBench's DB format (:class:`~genteach.runtime.ReactDbFormat`: the
format's instructions and a scripted "Ok." open the conversation, untrained) on a fresh
SQLite database per task (:class:`~genteach.runtime.DbEnvironment`); the episode is kept
only when its reward reaches ``min_reward`` (AgentTuning keeps reward 1). Its messages,
each with its trained flag, are the record.
"""

from __future__ import annotations

from pydantic import Field

from genteach.agents.db import DatabaseMaterial
from genteach.flows.acting import ActingFlow
from genteach.flows.base import FlowSettings, RunContext, Task, WorkItem
from genteach.keys import DbReferenceKey
from genteach.records import Record
from genteach.runtime import ReactDbFormat
from genteach.runtime.db import SELECT_KINDS, TASK_TEMPLATE, DbEnvironment, DbTask, SelectKind

#: The teacher's own guidance for acting (not part of the record).
GUIDANCE_TEMPLATE = "db/assistant_system.j2"


class DbEpisodeFlow(ActingFlow):
    """Runs each database task as an episode of at most ``max_steps`` actions and keeps
    it when its reward is at least ``min_reward``; otherwise a reject with the reward's
    reason (which values differed, or that the tables' state differs from the
    reference's)."""

    name = "db_episode"
    actor = "db_assistant"
    guidance = GUIDANCE_TEMPLATE
    expected_turns = 3

    class Settings(FlowSettings):
        """Attributes:
        max_steps: most actions of an episode (AgentBench: 5).
        min_reward: the reward an episode needs to be kept (AgentTuning: 1).
        """

        max_steps: int = Field(default=5, ge=1, le=30)
        min_reward: float = Field(default=1.0, ge=0.0, le=1.0)

    def format_for(self) -> ReactDbFormat:
        return ReactDbFormat()

    def environment_templates(self) -> list[str]:
        """The first turn (the question, each table's name and headers)."""
        return [TASK_TEMPLATE]

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

    async def act(self, item: WorkItem, ctx: RunContext, task: Task) -> Record | None:
        db_task = self.db_task(task)
        episode = await self.play(item, ctx, task, DbEnvironment(ctx.prompts), db_task, self.format)
        return self.settle_by_reward(item, ctx, task, episode, outcome=db_task.kind)


__all__ = ["GUIDANCE_TEMPLATE", "DbEpisodeFlow"]
