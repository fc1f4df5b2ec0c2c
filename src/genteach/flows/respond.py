"""ResponseFlow: the teacher answers each task; each answer is verified against the task's
key before it becomes a record."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from genteach.agents.base import AgentError
from genteach.agents.parsing import ParseError
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
    templates_of,
)
from genteach.keys import ChoiceKey, UnanswerableKey, Verification, public_view
from genteach.models.base import Message, ModelError, Usage, message
from genteach.records import Record, RecordMeta
from genteach.runtime import EpisodeSettings, Tool, ToolLoop
from genteach.taxonomy import Skill, import_object

#: How the summary names the position of a correct option (whatever its label style).
POSITIONS = "ABCDEFGH"

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
        tools: tools the teacher may call before it answers (``module:Class`` each, a
            :class:`~genteach.runtime.Tool` made with no arguments; resolved next to the
            taxonomy file like agents); none by default.
        tool_trace: ``keep`` the calls and results in the record (the student learns to
            use the tools) or ``hide`` them (the student sees the answer alone).
        tool_turns: most model turns of a tool loop, the answer included.
        """

        verify_retries: int = Field(default=1, ge=0, le=5)
        tools: list[str] = Field(default_factory=list)
        tool_trace: Literal["keep", "hide"] = "keep"
        tool_turns: int = Field(default=6, ge=1, le=30)

    def __init__(
        self,
        skill: Skill,
        responder: Responder,
        settings: Settings,
        tools: Sequence[Tool] = (),
    ) -> None:
        self.skill = skill
        self.responder = responder
        self.settings = settings
        self.tool_loop = (
            ToolLoop(tools, settings=EpisodeSettings(max_turns=settings.tool_turns))
            if tools
            else None
        )

    @classmethod
    def from_config(cls, skill: Skill, settings: Settings, build: FlowBuild) -> ResponseFlow:
        responder = make_agent(
            Responder, "responder", skill, build.prompts, {}, build.options,
            system_key="respond_system",
        )  # fmt: skip
        tools = [
            import_object(spec, f"skills.{skill.id}.pipeline.response.tools[{i}]", skill.folder)()
            for i, spec in enumerate(settings.tools)
        ]
        return cls(skill, responder, settings, tools)

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
                answered = await self.respond(ctx, inputs, rng.randrange(2**31))
            except AgentError as exc:
                item.add_usage(usage + exc.usage)
                item.reject(self.name, exc.agent, exc.reason, exc.raw)
                return None
            except ModelError as exc:
                item.add_usage(usage)
                item.reject(self.name, self.responder.name, f"model error: {exc}")
                return None
            text, turns, cost = answered
            usage = usage + cost
            verification = await ctx.verify(task, text)
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
        if isinstance(shown, ChoiceKey) and not isinstance(task.key, UnanswerableKey):
            for p in shown.correct_positions(task.view.layout):
                item.positions[POSITIONS[p]] += 1
        used = [*templates_of(self.responder), task.view.framing, f"answers/{shown.form}.j2"]
        return make_record(
            item,
            ctx,
            task,
            turns,
            [*task.agents, self.responder.name],
            usage,
            verification,
            templates=used,
        )

    async def respond(
        self, ctx: RunContext, inputs: RespondInput, seed: int
    ) -> tuple[str, list[Message], Usage]:
        """One answer to the student's conversation: its text, the record's messages and
        the cost. With tools, the teacher may call them first (its system prompt is the
        loop's guidance, never part of the record); the trace is kept or hidden as the
        settings say.

        Raises:
            AgentError: no usable answer (the responder's checks, or a tool loop that
                ended without one).
        """
        if self.tool_loop is None:
            result = await self.responder.run(ctx.client, inputs, seed=seed)
            text = result.output.text
            return text, [*inputs.conversation, message("assistant", text)], result.usage
        system = (
            inputs.conversation[0]["content"] if inputs.conversation[0]["role"] == "system" else ""
        )
        loop = await self.tool_loop.run(
            ctx.client,
            ctx.prompts,
            inputs.conversation[-1]["content"],
            system=system,
            guidance=self.responder.render(inputs)[0]["content"],
            seed=seed,
        )
        cost = loop.episode.usage
        if loop.answer is None:
            raise AgentError(
                self.responder.name,
                f"tool loop: {loop.episode.end}: {loop.episode.detail}",
                loop.episode.raw,
                cost,
            )
        try:
            text = self.responder.parse(loop.answer, inputs).text
        except ParseError as exc:
            raise AgentError(self.responder.name, exc.reason, loop.answer, cost) from exc
        return text, loop.messages(keep_trace=self.settings.tool_trace == "keep"), cost


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
    templates: Sequence[str] = (),
) -> Record:
    """Build the record of a finished, verified task. Its ``prompts_sha256`` covers every
    template the chain rendered: the unit's, the task's and ``templates``."""
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
            prompts_sha256=ctx.prompts.chain_hash([*item.templates, *task.templates, *templates]),
            genteach_version=ctx.version,
        ),
    )
