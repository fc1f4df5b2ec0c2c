"""Content-transformation agents: turn a raw seed into a text that makes good tasks easy.

Each transformer (argument passage, debate, meeting transcript, ...) is a
:class:`ContentTransformer` configured with its own guidance template;
:class:`IdentityTransformer` returns the seed unchanged without a model call.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from genteach.agents.base import Agent, AgentResult
from genteach.agents.parsing import ParseError
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
    #: A text is a copy of the seed when more than this share of the seed's word 8-grams
    #: occur in it and it is less than ``min_growth`` times as long (an extending
    #: transformer such as long_text may keep the seed, but must add to it).
    max_copied_share: float = 0.8
    min_growth: float = 1.3

    def parse(self, text: str, inputs: TransformInput | None = None) -> TransformedText:
        out = super().parse(text, inputs)
        if inputs is not None:
            share = copied_share(inputs.seed.text, out.text)
            grew = len(out.text.split()) >= self.min_growth * len(inputs.seed.text.split())
            if share > self.max_copied_share and not grew:
                raise ParseError(
                    f"the text repeats {share:.0%} of the seed word for word: transform it into "
                    "the form your role asks for"
                )
        return out


def copied_share(source: str, text: str, n: int = 8) -> float:
    """Share of ``source``'s word n-grams that occur in ``text`` (0 when source is short)."""
    a, b = source.lower().split(), text.lower().split()
    grams = {tuple(a[i : i + n]) for i in range(len(a) - n + 1)}
    if not grams:
        return 0.0
    found = {tuple(b[i : i + n]) for i in range(len(b) - n + 1)}
    return len(grams & found) / len(grams)


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


__all__ = [
    "ContentTransformer",
    "IdentityTransformer",
    "TransformInput",
    "TransformedText",
    "copied_share",
]
