"""Small typed views passed to templates: what a prompt may refer to, and nothing more."""

from __future__ import annotations

from pydantic import BaseModel


class SkillView(BaseModel):
    """The skill being taught (``skill.id``, ``skill.name``, ``skill.description``)."""

    id: str
    name: str
    description: str = ""


class CategoryView(BaseModel):
    """One sub-category: a transformer, a task type, a tool-use task family.

    ``guidance`` is the template (a partial under ``prompts/``) holding the
    sub-category's own instructions; family templates ``{% include category.guidance %}``.
    """

    id: str
    name: str
    description: str = ""
    origin: str = "paper"
    guidance: str = ""


class SeedView(BaseModel):
    """A raw seed as a template sees it."""

    id: str
    text: str
    source: str = ""
    kind: str = "text"
    language: str = ""


class GoalView(BaseModel):
    """A refinement goal (e.g. make the question unanswerable from the passage): what it
    ``edits`` (the material or the task) and what the new ``key`` must be."""

    id: str
    name: str
    description: str = ""
    edits: str = "task"
    key: str = "any"


__all__ = ["CategoryView", "GoalView", "SeedView", "SkillView"]
