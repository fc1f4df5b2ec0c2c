"""Refinement agents: a suggester proposes ways to make a task harder (or unanswerable,
or to flip its answer); an editor rewrites the task once per suggestion."""

from __future__ import annotations

from pydantic import BaseModel, Field

from genteach.agents.base import Agent
from genteach.agents.parsing import ParseError
from genteach.agents.views import GoalView, SkillView


class TaskView(BaseModel):
    """A task as the refinement agents see it."""

    text: str
    instruction: str
    answer: str = ""


class SuggestInput(BaseModel):
    """What the suggester sees."""

    skill: SkillView
    task: TaskView
    goals: list[GoalView]
    count: int = Field(ge=1, le=6)


class Suggestion(BaseModel):
    """One proposed change, and which refinement goal it serves."""

    goal: str = Field(min_length=1)
    suggestion: str = Field(min_length=10)


class Suggestions(BaseModel):
    """The suggester's answer."""

    suggestions: list[Suggestion] = Field(min_length=1, max_length=6)


class Suggester(Agent[SuggestInput, Suggestions]):
    """Proposes ``count`` concrete ways to make a task more demanding."""

    input_model = SuggestInput
    output_model = Suggestions
    default_system_template = "common/suggest_system.j2"
    default_user_template = "common/suggest_user.j2"
    format_hint = 'a single JSON object {"suggestions": [{"goal": ..., "suggestion": ...}]}'

    def parse(self, text: str, inputs: SuggestInput | None = None) -> Suggestions:
        out = super().parse(text, inputs)
        if inputs is not None:
            known = {g.id for g in inputs.goals}
            bad = sorted({s.goal for s in out.suggestions} - known)
            if bad:
                raise ParseError(
                    f"unknown goal {', '.join(bad)} (goals: {', '.join(sorted(known))})"
                )
            out.suggestions = out.suggestions[: inputs.count]
        return out


class EditInput(BaseModel):
    """What the editor sees: the task and the suggestions to apply, one edit each."""

    skill: SkillView
    task: TaskView
    goals: list[GoalView]
    suggestions: list[Suggestion]


class Edit(BaseModel):
    """One rewritten task. ``text`` is the edited passage, or null when unchanged."""

    suggestion: int = Field(ge=1)
    instruction: str = Field(min_length=10)
    answer: str = ""
    text: str | None = None


class Edits(BaseModel):
    """The editor's answer."""

    edits: list[Edit] = Field(min_length=1, max_length=6)


class Editor(Agent[EditInput, Edits]):
    """Rewrites a task once per suggestion."""

    input_model = EditInput
    output_model = Edits
    default_system_template = "common/edit_system.j2"
    default_user_template = "common/edit_user.j2"
    format_hint = (
        'a single JSON object {"edits": [{"suggestion": 1, "text": ..., "instruction": ..., '
        '"answer": ...}]}'
    )

    def parse(self, text: str, inputs: EditInput | None = None) -> Edits:
        edits = super().parse(text, inputs)
        numbers = [e.suggestion for e in edits.edits]
        if len(set(numbers)) != len(numbers):
            raise ParseError(f"two edits answer the same suggestion ({sorted(numbers)})")
        if inputs is not None:
            n = len(inputs.suggestions)
            if max(numbers) > n:
                raise ParseError(f"an edit answers suggestion {max(numbers)}, but there are {n}")
            if len(numbers) != n:
                raise ParseError(f"{len(numbers)} edits for {n} suggestions: write one each")
        return edits


__all__ = [
    "Edit",
    "EditInput",
    "Editor",
    "Edits",
    "SuggestInput",
    "Suggester",
    "Suggestion",
    "Suggestions",
    "TaskView",
]
