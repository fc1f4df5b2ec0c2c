"""ResponseFlow: the teacher answers each task; each answered task becomes a record."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from genteach.agents.base import AgentError
from genteach.agents.respond import Responder, RespondInput
from genteach.flows.base import (
    RunContext,
    Task,
    WorkItem,
    category_view,
    make_agent,
    skill_view,
)
from genteach.models.base import Message, ModelError, Usage, message
from genteach.prompts import PromptLibrary
from genteach.records import Record, RecordMeta
from genteach.taxonomy import Skill


class ResponseFlow:
    """Renders each task as the student's message (``task_user`` template, with a layout
    drawn per task) and has the responder answer it."""

    name = "response"

    def __init__(self, skill: Skill, responder: Responder, task_template: str) -> None:
        self.skill = skill
        self.responder = responder
        self.task_template = task_template

    @classmethod
    def from_config(
        cls,
        skill: Skill,
        settings: Mapping[str, Any],
        prompts: PromptLibrary,
        options: Mapping[str, Any],
    ) -> ResponseFlow:
        responder = make_agent(
            Responder, "responder", skill, prompts, settings, options, system_key="respond_system"
        )
        return cls(skill, responder, skill.template("task_user", "common/task_user.j2"))

    def student_messages(
        self, item: WorkItem, task: Task, ctx: RunContext, layout: int
    ) -> list[Message]:
        title = item.passage.title if item.passage else ""
        content = ctx.prompts.render(
            self.task_template,
            task={"text": task.text, "instruction": task.instruction, "answer": task.answer},
            layout=layout,
            title=title,
            skill=skill_view(self.skill).model_dump(),
        )
        return [message("user", content)]

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: one teacher answer per task."""
        return tasks, tasks

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        draws = [(item.rng.randrange(3), item.call_seed()) for _ in item.tasks]
        records = await asyncio.gather(
            *(self._answer(item, ctx, t, d) for t, d in zip(item.tasks, draws, strict=True))
        )
        item.records.extend(r for r in records if r is not None)

    async def _answer(
        self, item: WorkItem, ctx: RunContext, task: Task, draw: tuple[int, int]
    ) -> Record | None:
        conversation = self.student_messages(item, task, ctx, draw[0])
        sub = next(t for t in self.skill.task_types if t.id == task.sub_category)
        try:
            result = await self.responder.run(
                ctx.client,
                RespondInput(
                    skill=skill_view(self.skill),
                    category=category_view(self.skill, "task_types", sub),
                    conversation=conversation,
                ),
                seed=draw[1],
            )
        except AgentError as exc:
            item.add_usage(exc.usage)
            item.reject(self.name, exc.agent, exc.reason, exc.raw)
            return None
        except ModelError as exc:
            item.reject(self.name, self.responder.name, f"model error: {exc}")
            return None
        item.add(result)
        messages = [*conversation, message("assistant", result.output.text)]
        return make_record(
            item, ctx, task, messages, [*task.agents, self.responder.name], result.usage
        )


def make_record(
    item: WorkItem,
    ctx: RunContext,
    task: Task,
    messages: list[Message],
    agents: list[str],
    usage: Usage,
    outcome: str | None = None,
) -> Record:
    """Build the record of a finished task."""
    return Record(
        id=Record.make_id(messages),
        messages=messages,
        meta=RecordMeta(
            skill=item.skill.id,
            sub_category=task.sub_category,
            seed_id=item.seed.id,
            unit=item.unit,
            agents=agents,
            teacher=ctx.teacher,
            usage=usage.as_dict(),
            task_id=task.id,
            parent_task_id=task.parent_id,
            refinement_round=task.round,
            refinement_goal=task.goal,
            refinement_suggestion=task.suggestion,
            transformer=item.transformer,
            reference_answer=task.answer or None,
            outcome=outcome,
            genteach_version=ctx.version,
        ),
    )
