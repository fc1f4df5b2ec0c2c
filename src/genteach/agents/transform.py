"""Content-transformation agents: turn a raw seed into a text that makes good tasks easy.

Each transformer (argument passage, debate, meeting transcript, ...) is a
:class:`ContentTransformer` configured with its own guidance template;
:class:`IdentityTransformer` returns the seed unchanged without a model call.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from genteach.agents.base import Agent, AgentResult
from genteach.agents.views import CategoryView, PassageView, SeedView, SkillView
from genteach.models.base import ModelClient, Usage


class TransformInput(BaseModel):
    """What a transformer sees: the skill, its own sub-category and the seed."""

    skill: SkillView
    category: CategoryView
    seed: SeedView


class TransformedText(BaseModel):
    """A transformer's answer: a titled passage."""

    title: str = Field(default="", max_length=200)
    text: str = Field(min_length=80)

    def passage(self, transformer: str) -> PassageView:
        return PassageView(title=self.title, text=self.text.strip(), transformer=transformer)


class ContentTransformer(Agent[TransformInput, TransformedText]):
    """Rewrites a seed into a new form (see the transformer's guidance template)."""

    input_model = TransformInput
    output_model = TransformedText
    default_system_template = "common/transform_system.j2"
    default_user_template = "common/transform_user.j2"
    format_hint = (
        'a single JSON object {"title": ..., "text": ...} (or {"skip": true, "reason": ...})'
    )


@dataclass
class IdentityTransformer:
    """The identity agent: the seed passes through unchanged (no model call)."""

    name: str = "identity"

    async def run(
        self, client: ModelClient, inputs: TransformInput, *, seed: int | None = None
    ) -> AgentResult[TransformedText]:
        del client, seed
        out = TransformedText.model_construct(title="", text=inputs.seed.text)
        return AgentResult(output=out, raw=inputs.seed.text, usage=Usage(), attempts=0)


__all__ = ["ContentTransformer", "IdentityTransformer", "TransformInput", "TransformedText"]
