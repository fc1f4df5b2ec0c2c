"""RefinementFlow: suggester-editor rounds. Originals and refined versions are both kept;
each refined task links to the task it was made from."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from genteach.agents.base import AgentError
from genteach.agents.refine import EditInput, Editor, Suggester, SuggestInput, TaskView
from genteach.agents.views import GoalView
from genteach.flows.base import RunContext, Task, WorkItem, make_agent, skill_view
from genteach.models.base import ModelError
from genteach.prompts import PromptLibrary
from genteach.taxonomy import Skill, TaxonomyError


class RefinementFlow:
    """For each task: the suggester proposes ``suggestions`` changes toward the skill's
    refinement goals, the editor writes one new task per suggestion. ``rounds`` > 1
    refines the previous round's new tasks again."""

    name = "refinement"

    def __init__(
        self,
        skill: Skill,
        suggester: Suggester,
        editor: Editor,
        *,
        rounds: int = 1,
        suggestions: int = 3,
    ) -> None:
        if not skill.refinement_goals:
            raise TaxonomyError(
                f"skills.{skill.id}.refinement_goals: the refinement flow needs goals"
            )
        self.skill = skill
        self.suggester = suggester
        self.editor = editor
        self.rounds = rounds
        self.suggestions = suggestions
        self.goals = [GoalView(**g.model_dump()) for g in skill.refinement_goals]

    @classmethod
    def from_config(
        cls,
        skill: Skill,
        settings: Mapping[str, Any],
        prompts: PromptLibrary,
        options: Mapping[str, Any],
    ) -> RefinementFlow:
        suggester = make_agent(
            Suggester, "suggester", skill, prompts, settings, options,
            system_key="suggest_system", user_key="suggest_user",
        )  # fmt: skip
        editor = make_agent(
            Editor, "editor", skill, prompts, settings, options,
            system_key="edit_system", user_key="edit_user",
        )  # fmt: skip
        return cls(
            skill,
            suggester,
            editor,
            rounds=int(settings.get("rounds", 1)),
            suggestions=int(settings.get("suggestions", 3)),
        )

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: a suggester and an editor call per task and round; each
        round's tasks are the refined versions of the last round's."""
        calls, current, total = 0.0, tasks, tasks
        for _ in range(self.rounds):
            calls += 2 * current
            current *= self.suggestions
            total += current
        return calls, total

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        current = list(item.tasks)
        for round_no in range(1, self.rounds + 1):
            seeds = [(item.call_seed(), item.call_seed()) for _ in current]
            results = await asyncio.gather(
                *(
                    self._refine(item, ctx, t, round_no, s)
                    for t, s in zip(current, seeds, strict=True)
                )
            )
            current = [t for new in results for t in new]
            item.tasks.extend(current)

    async def _refine(
        self, item: WorkItem, ctx: RunContext, task: Task, round_no: int, seeds: tuple[int, int]
    ) -> list[Task]:
        view = TaskView(text=task.text, instruction=task.instruction, answer=task.answer)
        skill = skill_view(self.skill)
        agent = self.suggester.name
        try:
            sug = await self.suggester.run(
                ctx.client,
                SuggestInput(skill=skill, task=view, goals=self.goals, count=self.suggestions),
                seed=seeds[0],
            )
            item.add(sug)
            agent = self.editor.name
            suggestions = sug.output.suggestions
            ed = await self.editor.run(
                ctx.client,
                EditInput(skill=skill, task=view, goals=self.goals, suggestions=suggestions),
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
        for edit in ed.output.edits:
            s = suggestions[edit.suggestion - 1]
            out.append(
                Task(
                    sub_category=task.sub_category,
                    text=(edit.text or task.text).strip(),
                    instruction=edit.instruction.strip(),
                    answer=edit.answer.strip(),
                    parent_id=task.id,
                    round=round_no,
                    goal=s.goal,
                    suggestion=s.suggestion,
                    agents=[*task.agents, self.suggester.name, self.editor.name],
                    extra=dict(task.extra),
                )
            )
        return out
