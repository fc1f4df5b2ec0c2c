"""SeedInstructionFlow: task-type agents, drawn by weight, write tasks about the passage."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from genteach.agents.base import AgentError
from genteach.agents.instruct import InstructInput, SeedInstructionAgent
from genteach.agents.tool_use import ToolTaskAgent, ToolTaskInput
from genteach.flows.base import (
    RunContext,
    Task,
    WorkItem,
    build_agent,
    category_view,
    skill_view,
)
from genteach.models.base import ModelError
from genteach.prompts import PromptLibrary
from genteach.taxonomy import Skill, SubCategory, weighted_sample


class SeedInstructionFlow:
    """Draws ``task_types_per_seed`` task types (by weight, among those the transformer
    allows) and has each type's agent write ``tasks_per_type`` tasks.

    One agent's failure becomes a reject; the other agents' tasks go on.
    """

    name = "seed_instruction"

    def __init__(self, skill: Skill, agents: Mapping[str, Any], settings: Mapping[str, Any]):
        self.skill = skill
        self.agents = dict(agents)
        self.types_per_seed = int(settings.get("task_types_per_seed", 2))
        self.tasks_per_type = int(settings.get("tasks_per_type", 2))

    @classmethod
    def from_config(
        cls,
        skill: Skill,
        settings: Mapping[str, Any],
        prompts: PromptLibrary,
        options: Mapping[str, Any],
    ) -> SeedInstructionFlow:
        agents = {
            t.id: build_agent(
                skill,
                "task_types",
                t,
                "instruct",
                prompts=prompts,
                prefix="instruct",
                params=settings,
                options=options,
            )
            for t in skill.task_types
        }
        return cls(skill, agents, settings)

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: one call per task type drawn, ``tasks_per_type`` tasks each."""
        types = min(self.types_per_seed, len(self.skill.task_types)) if self.skill.task_types else 0
        return float(types), tasks + types * self.tasks_per_type

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        if item.passage is None:
            raise RuntimeError(f"{self.name} needs a passage: put content_transformation first")
        types = weighted_sample(
            self.skill.task_types_after(item.transformer), self.types_per_seed, item.rng
        )
        seeds = [item.call_seed() for _ in types]
        results = await asyncio.gather(
            *(self._one(item, ctx, t, s) for t, s in zip(types, seeds, strict=True))
        )
        for tasks in results:
            item.tasks.extend(tasks)

    async def _one(
        self, item: WorkItem, ctx: RunContext, task_type: SubCategory, seed: int
    ) -> list[Task]:
        agent = self.agents[task_type.id]
        category = category_view(self.skill, "task_types", task_type)
        assert item.passage is not None
        chain = [*item.agents, agent.name]
        try:
            if isinstance(agent, ToolTaskAgent):
                assert item.apis is not None, "tool tasks need an API list transformer"
                result = await agent.run(
                    ctx.client,
                    ToolTaskInput(
                        skill=skill_view(self.skill),
                        category=category,
                        library=item.apis.library,
                        apis=item.apis.apis,
                        count=self.tasks_per_type,
                    ),
                    seed=seed,
                )
                item.add(result)
                return [
                    Task(
                        sub_category=task_type.id,
                        text=item.passage.text,
                        instruction=t.request,
                        answer=t.answer,
                        agents=chain,
                        extra={
                            "required_apis": t.required_apis,
                            "withheld_apis": t.withheld_apis,
                            "expected_outcome": t.expected_outcome,
                        },
                    )
                    for t in result.output.tasks[: self.tasks_per_type]
                ]
            assert isinstance(agent, SeedInstructionAgent)
            res = await agent.run(
                ctx.client,
                InstructInput(
                    skill=skill_view(self.skill),
                    category=category,
                    passage=item.passage,
                    count=self.tasks_per_type,
                ),
                seed=seed,
            )
        except AgentError as exc:
            item.add_usage(exc.usage)
            item.reject(self.name, exc.agent, exc.reason, exc.raw)
            return []
        except ModelError as exc:
            item.reject(self.name, agent.name, f"model error: {exc}")
            return []
        item.add(res)
        return [
            Task(
                sub_category=task_type.id,
                text=(d.text or item.passage.text).strip(),
                instruction=d.instruction.strip(),
                answer=d.answer.strip(),
                agents=chain,
            )
            for d in res.output.tasks[: self.tasks_per_type]
        ]
