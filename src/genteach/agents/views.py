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


class PassageView(BaseModel):
    """The transformed seed: the text that tasks are written about."""

    title: str = ""
    text: str
    transformer: str = "identity"


class GoalView(BaseModel):
    """A refinement goal (e.g. make the question unanswerable from the passage)."""

    id: str
    name: str
    description: str = ""


__all__ = ["CategoryView", "GoalView", "PassageView", "SeedView", "SkillView"]
