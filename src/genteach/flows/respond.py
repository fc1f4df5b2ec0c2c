"""ResponseFlow: the teacher answers each task; each answer is verified against the task's
key before it becomes a record."""

from __future__ import annotations

import asyncio

from pydantic import Field

from genteach.agents.base import AgentError
from genteach.agents.respond import Responder, RespondInput
from genteach.flows.base import (
    DEFAULT_FRAMING,
    FlowBuild,
    FlowSettings,
    RunContext,
    Task,
    WorkItem,
    category_view,
    make_agent,
    presented_key,
    skill_view,
    task_type,
)
from genteach.keys import Verification, public_view
from genteach.models.base import Message, ModelError, Usage, message
from genteach.records import Record, RecordMeta
from genteach.taxonomy import Skill

#: The forms a question may take (genteach.keys), each with its answer format template.
ANSWER_FORMS = ("choice", "items", "matching", "labels", "short", "open")


class ResponseFlow:
    """Renders each task as the student sees it (its drawn system prompt and framing) and
    has the responder answer it; the answer is checked against the task's key.

    A response that disagrees with its key is answered again (``verify_retries`` times,
    each with a new seed), then rejected with a reason quoting the key and the response's
    answer: no record ever contradicts its key. Kinds that code cannot check (free text)
    go to the run's judge when there is one, else the record says ``unchecked``.
    """

    name = "response"

    class Settings(FlowSettings):
        """Attributes:
        verify_retries: new answers asked for when a response disagrees with its key.
        """

        verify_retries: int = Field(default=1, ge=0, le=5)

    def __init__(self, skill: Skill, responder: Responder, settings: Settings) -> None:
        self.skill = skill
        self.responder = responder
        self.settings = settings

    @classmethod
    def from_config(cls, skill: Skill, settings: Settings, build: FlowBuild) -> ResponseFlow:
        responder = make_agent(
            Responder, "responder", skill, build.prompts, {}, build.options,
            system_key="respond_system",
        )  # fmt: skip
        return cls(skill, responder, settings)

    def templates(self) -> list[str]:
        """The templates this flow renders itself: the student-message framings and the
        answer formats the responder includes by form."""
        framings = self.skill.student.framings
        return [
            *(framings.values if framings else [DEFAULT_FRAMING]),
            *(f"answers/{form}.j2" for form in ANSWER_FORMS),
        ]

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: one teacher answer per task (re-answers not counted)."""
        return tasks, tasks

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        records = await asyncio.gather(*(self._answer(item, ctx, t) for t in item.tasks))
        item.records.extend(r for r in records if r is not None)

    async def _answer(self, item: WorkItem, ctx: RunContext, task: Task) -> Record | None:
        conversation = student_messages(task, ctx)
        shown = presented_key(task.key, ctx.keys)
        inputs = RespondInput(
            skill=skill_view(self.skill),
            category=category_view(
                self.skill, "task_types", task_type(self.skill, task.sub_category)
            ),
            conversation=conversation,
            form=shown.form,
            question=public_view(shown.view(task.view.layout)),
        )
        rng = task.stream(item.run_seed, "respond")
        usage = Usage()
        verification: Verification | None = None
        for _ in range(self.settings.verify_retries + 1):
            try:
                result = await self.responder.run(ctx.client, inputs, seed=rng.randrange(2**31))
            except AgentError as exc:
                item.add_usage(usage + exc.usage)
                item.reject(self.name, exc.agent, exc.reason, exc.raw)
                return None
            except ModelError as exc:
                item.add_usage(usage)
                item.reject(self.name, self.responder.name, f"model error: {exc}")
                return None
            usage = usage + result.usage
            text = result.output.text
            verification = task.key.check(text, task.view.layout)
            if verification.status == "unchecked" and ctx.judge is not None:
                verification = await ctx.judge(task, text, ctx)
            item.count(verification)
            if verification.status != "failed":
                break
        item.add_usage(usage)
        assert verification is not None
        if verification.status == "failed":
            item.reject(
                self.name,
                self.responder.name,
                f"the answer disagrees with its key: {verification.detail}",
                text,
            )
            return None
        messages = [*conversation, message("assistant", text)]
        return make_record(
            item, ctx, task, messages, [*task.agents, self.responder.name], usage, verification
        )


def student_messages(task: Task, ctx: RunContext) -> list[Message]:
    """The student's side of a task: the drawn system message (if any) and the user
    message rendered by the task's framing template."""
    shown = presented_key(task.key, ctx.keys)
    content = ctx.prompts.render(
        task.view.framing,
        instruction=task.instruction,
        question=shown.view(task.view.layout),
        material=task.material.render(ctx.prompts, "student"),
        title=task.material.title,
        delimiter=task.view.delimiter.model_dump() if task.view.delimiter else None,
    )
    out: list[Message] = []
    if task.view.system is not None:
        out.append(message("system", task.view.system))
    out.append(message("user", content))
    return out


def make_record(
    item: WorkItem,
    ctx: RunContext,
    task: Task,
    messages: list[Message],
    agents: list[str],
    usage: Usage,
    verification: Verification | None = None,
    outcome: str | None = None,
) -> Record:
    """Build the record of a finished, verified task."""
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
            instruction=task.instruction,
            key=task.key.model_dump(),
            view=task.view.as_dict(),
            slot=dict(task.slot),
            verification=verification,
            outcome=outcome,
            genteach_version=ctx.version,
        ),
    )
