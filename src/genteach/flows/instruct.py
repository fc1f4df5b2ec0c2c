"""SeedInstructionFlow: task-type agents, drawn by weight, write tasks about the material,
each with a typed answer key."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from genteach.agents.base import AgentError
from genteach.agents.instruct import InstructInput, TaskDraft
from genteach.flows.base import (
    FlowBuild,
    FlowSettings,
    RunContext,
    Task,
    WorkItem,
    build_agent,
    category_view,
    draw_slots,
    draw_view,
    skill_view,
    slot_keys,
    slot_labels,
    task_id,
    task_stream,
    templates_of,
)
from genteach.models.base import ModelError
from genteach.taxonomy import Skill, SubCategory, weighted_sample


class SeedInstructionFlow:
    """Draws ``task_types_per_seed`` task types (by weight, among those the transformer
    allows) and has each type's agent write ``tasks_per_type`` tasks.

    Each type draws from its own stream (its slots: the values the prompt asks it to use)
    and each task from its own (how it is shown), so one agent's failure, which becomes
    a reject, changes nothing about the other tasks.
    """

    name = "seed_instruction"

    class Settings(FlowSettings):
        """Attributes:
        task_types_per_seed: task types drawn per unit.
        tasks_per_type: tasks each drawn type's agent writes (1 to 10).
        agent: the agent kind of task types that name none (``instruct``).
        """

        task_types_per_seed: int = Field(default=2, ge=1)
        tasks_per_type: int = Field(default=2, ge=1, le=10)
        agent: str = "instruct"

    def __init__(self, skill: Skill, agents: dict[str, Any], settings: Settings) -> None:
        self.skill = skill
        self.agents = agents
        self.settings = settings

    @classmethod
    def from_config(cls, skill: Skill, settings: Settings, build: FlowBuild) -> SeedInstructionFlow:
        agents = {
            t.id: build_agent(
                skill,
                "task_types",
                t,
                settings.agent,
                build=build,
                prefix="instruct",
                params={},
            )
            for t in skill.task_types
        }
        return cls(skill, agents, settings)

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: one call per task type drawn, ``tasks_per_type`` tasks each."""
        s = self.settings
        types = (
            min(s.task_types_per_seed, len(self.skill.task_types)) if self.skill.task_types else 0
        )
        return float(types), tasks + types * s.tasks_per_type

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        if item.material is None:
            raise RuntimeError(f"{self.name} needs a material: put content_transformation first")
        types = weighted_sample(
            self.skill.task_types_after(item.transformer),
            self.settings.task_types_per_seed,
            item.rng,
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
        material = item.material
        assert material is not None
        count = self.settings.tasks_per_type
        slots = draw_slots(self.skill, task_type, item.stream("slots", task_type.id), count)
        try:
            result = await agent.run(
                ctx.client,
                InstructInput(
                    skill=skill_view(self.skill),
                    category=category_view(self.skill, "task_types", task_type),
                    material=material,
                    material_text=material.render(ctx.prompts, "agent"),
                    count=count,
                    slots=slots,
                    slot_labels=slot_labels(self.skill, task_type),
                    slot_keys=slot_keys(self.skill, task_type),
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
        item.add(result)
        chain = [*item.agents, agent.name]
        drafts: list[TaskDraft] = result.output.tasks
        used = templates_of(agent, self.skill.guidance("task_types", task_type))
        return [
            self.make_task(item, ctx, task_type.id, d, chain, slot, used)
            for d, slot in zip(drafts, slots, strict=False)
        ]

    def make_task(
        self,
        item: WorkItem,
        ctx: RunContext,
        sub_category: str,
        draft: TaskDraft,
        chain: list[str],
        slot: dict[str, str],
        templates: list[str],
    ) -> Task:
        """A task from a draft: its own material, and how it is shown, drawn from its own
        stream; ``templates`` are those its agent rendered."""
        assert item.material is not None
        material = draft.material(item.material)
        instruction = draft.instruction.strip()
        tid = task_id(sub_category, material, instruction, draft.key)
        rng = task_stream(item.run_seed, tid, "view")
        return Task(
            sub_category=sub_category,
            material=material,
            instruction=instruction,
            key=draft.key,
            view=draw_view(self.skill.student, draft.key, ctx.keys, rng),
            agents=chain,
            slot=slot,
            templates=list(templates),
        )
