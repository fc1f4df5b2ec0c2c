"""RefinementFlow: suggester-editor rounds. Originals and refined versions are both kept;
each refined task links to the task it was made from."""

from __future__ import annotations

import asyncio
import random

from pydantic import Field

from genteach.agents.base import AgentError
from genteach.agents.refine import EditInput, Editor, Suggester, SuggestInput, TaskView
from genteach.agents.views import GoalView
from genteach.flows.base import (
    FlowBuild,
    FlowSettings,
    RunContext,
    Task,
    WorkItem,
    agent_class,
    category_view,
    draw_view,
    key_classes,
    make_agent,
    presented_key,
    skill_view,
    task_id,
    task_stream,
    task_type,
    templates_of,
)
from genteach.material import Editable
from genteach.models.base import ModelError
from genteach.taxonomy import RefinementGoal, Skill, TaxonomyError


class RefinementFlow:
    """For each task: ``suggestions`` goals are drawn in code (by weight, among the goals
    its task type allows and its material supports), the suggester proposes one change
    per goal, and the editor writes one checked revision per suggestion. ``rounds`` > 1
    refines the previous round's new tasks again."""

    name = "refinement"

    class Settings(FlowSettings):
        """Attributes:
        rounds: refinement rounds (0: none).
        suggestions: suggestions (and new tasks) per task and round, 1 to 6.
        editor: the editor's agent kind (``editor``, ``tool_editor``) or ``module:Class``.
        """

        rounds: int = Field(default=1, ge=0)
        suggestions: int = Field(default=3, ge=1, le=6)
        editor: str = "editor"

    def __init__(
        self, skill: Skill, suggester: Suggester, editor: Editor, settings: Settings
    ) -> None:
        if not skill.refinement_goals:
            raise TaxonomyError(
                f"skills.{skill.id}.refinement_goals: the refinement flow needs goals"
            )
        self.skill = skill
        self.suggester = suggester
        self.editor = editor
        self.settings = settings

    @classmethod
    def from_config(cls, skill: Skill, settings: Settings, build: FlowBuild) -> RefinementFlow:
        suggester = make_agent(
            Suggester, "suggester", skill, build.prompts, {}, build.options,
            system_key="suggest_system", user_key="suggest_user",
        )  # fmt: skip
        # The editor may answer with any key kind of the skill; each task allows its own.
        classes = list(
            dict.fromkeys(k for t in skill.task_types for k in key_classes(skill, t, build.keys))
        )
        editor_cls = agent_class(
            settings.editor, f"skills.{skill.id}.pipeline.refinement.editor", skill.folder
        )
        editor = make_agent(
            editor_cls, "editor", skill, build.prompts, {}, {**build.options, "key_kinds": classes},
            system_key="edit_system", user_key="edit_user",
        )  # fmt: skip
        return cls(skill, suggester, editor, settings)

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: a suggester and an editor call per task and round; each
        round's tasks are the refined versions of the last round's."""
        calls, current, total = 0.0, tasks, tasks
        for _ in range(self.settings.rounds):
            calls += 2 * current
            current *= self.settings.suggestions
            total += current
        return calls, total

    def goals_for(self, task: Task) -> list[RefinementGoal]:
        """The goals a task may be refined toward: its type's allowed goals, without
        material edits when its material cannot be edited."""
        return [
            g
            for g in self.skill.goals_for(task.sub_category)
            if g.weight > 0 and (g.edits != "material" or isinstance(task.material, Editable))
        ]

    def draw_goals(self, task: Task, rng: random.Random) -> list[RefinementGoal]:
        """``suggestions`` goals by weight: distinct while they last, then again."""
        pool = self.goals_for(task)
        out: list[RefinementGoal] = []
        while pool and len(out) < self.settings.suggestions:
            left = [g for g in pool if g not in out] or pool
            out.append(rng.choices(left, weights=[g.weight for g in left], k=1)[0])
        return out

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        current = list(item.tasks)
        for round_no in range(1, self.settings.rounds + 1):
            results = await asyncio.gather(*(self._refine(item, ctx, t, round_no) for t in current))
            current = [t for new in results for t in new]
            item.tasks.extend(current)

    def view_of(self, task: Task, ctx: RunContext) -> TaskView:
        shown = presented_key(task.key, ctx.keys)
        return TaskView(
            material_text=task.material.render(ctx.prompts, "agent"),
            instruction=task.instruction,
            question=shown.view(task.view.layout),
            key=task.key.written(),
        )

    async def _refine(
        self, item: WorkItem, ctx: RunContext, task: Task, round_no: int
    ) -> list[Task]:
        rng = task.stream(item.run_seed, f"refine{round_no}")
        goals = self.draw_goals(task, rng)
        if not goals:
            return []
        seeds = (rng.randrange(2**31), rng.randrange(2**31))
        ttype = task_type(self.skill, task.sub_category)
        skill = skill_view(self.skill)
        category = category_view(self.skill, "task_types", ttype)
        views = [GoalView(**g.model_dump(exclude={"weight"})) for g in goals]
        view = self.view_of(task, ctx)
        agent = self.suggester.name
        try:
            sug = await self.suggester.run(
                ctx.client,
                SuggestInput(skill=skill, category=category, task=view, goals=views),
                seed=seeds[0],
            )
            item.add(sug)
            agent = self.editor.name
            suggestions = sug.output.suggestions
            ed = await self.editor.run(
                ctx.client,
                EditInput(
                    skill=skill,
                    category=category,
                    task=view,
                    goals=views,
                    suggestions=suggestions,
                    kinds=ttype.key,
                    material=task.material,
                    key=task.key,
                ),
                seed=seeds[1],
            )
            item.add(ed)
        except AgentError as exc:
            item.add_usage(exc.usage)
            item.reject(self.name, exc.agent, exc.reason, exc.raw)
            return []
        except ModelError as exc:
            item.reject(self.name, agent, f"model error: {exc}")
            return []
        out = []
        for rev, goal, suggestion in zip(ed.output.revisions, goals, suggestions, strict=True):
            tid = task_id(task.sub_category, rev.material, rev.instruction, rev.key)
            shown = draw_view(
                self.skill.student, rev.key, ctx.keys, task_stream(item.run_seed, tid, "view")
            )
            out.append(
                Task(
                    sub_category=task.sub_category,
                    material=rev.material,
                    instruction=rev.instruction,
                    key=rev.key,
                    view=shown,
                    parent_id=task.id,
                    round=round_no,
                    goal=goal.id,
                    suggestion=suggestion,
                    agents=[*task.agents, self.suggester.name, self.editor.name],
                    slot=dict(task.slot),
                    templates=[
                        *task.templates,
                        *templates_of(self.suggester),
                        *templates_of(self.editor),
                    ],
                )
            )
        return out
