"""Seed-instruction agents: write tasks of one type about a passage.

One :class:`SeedInstructionAgent` per task type (a reading-comprehension question type,
a text-modification task type); each is configured from the taxonomy with the guidance
template that defines its type.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from genteach.agents.base import Agent
from genteach.agents.views import CategoryView, PassageView, SkillView


class InstructInput(BaseModel):
    """What an instruction agent sees: skill, task type, the passage and how many tasks."""

    skill: SkillView
    category: CategoryView
    passage: PassageView
    count: int = Field(ge=1, le=10)


class TaskDraft(BaseModel):
    """One task as written by an instruction agent.

    ``instruction`` is what the student is asked (with answer options, if any);
    ``text`` is the part of the passage the task works on when the task type needs its
    own excerpt (text modification), else null (the whole passage is shown);
    ``answer`` is the answer key or a short description of a correct answer.
    """

    instruction: str = Field(min_length=10)
    answer: str = ""
    text: str | None = None


class InstructionBatch(BaseModel):
    """An instruction agent's answer."""

    tasks: list[TaskDraft] = Field(min_length=1, max_length=10)


class SeedInstructionAgent(Agent[InstructInput, InstructionBatch]):
    """Writes ``count`` tasks of its type about a passage."""

    input_model = InstructInput
    output_model = InstructionBatch
    default_system_template = "common/instruct_system.j2"
    default_user_template = "common/instruct_user.j2"
    format_hint = (
        'a single JSON object {"tasks": [{"instruction": ..., "answer": ..., "text": ...}]} '
        '(or {"skip": true, "reason": ...})'
    )


__all__ = ["InstructInput", "InstructionBatch", "SeedInstructionAgent", "TaskDraft"]
