"""Content-transformation agents: turn a raw seed into a material that makes good tasks
easy to write.

Each transformer (argument passage, debate, meeting transcript, API list...) is an agent
configured with its own guidance template; its output's ``material()`` is the typed
material the work item holds. :class:`IdentityTransformer` returns the seed unchanged
without a model call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from genteach.agents.base import Agent, AgentResult
from genteach.agents.parsing import ParseError
from genteach.agents.views import CategoryView, SeedView, SkillView
from genteach.material import Material, Passage
from genteach.models.base import ModelClient, Usage


class TransformInput(BaseModel):
    """What a transformer sees: the skill, its own sub-category, the seed, and the bounds
    of what it writes (words of a text; items of a list material such as APIs)."""

    skill: SkillView
    category: CategoryView
    seed: SeedView
    min_words: int = 150
    max_words: int = 600
    min_items: int = 4
    max_items: int = 10


class TransformedText(BaseModel):
    """A transformer's answer: a titled text."""

    title: str = Field(default="", max_length=200, description="a short, specific title")
    text: str = Field(
        min_length=80, description="the transformed text, paragraphs separated by \\n\\n"
    )

    def material(self) -> Material:
        return Passage(title=self.title.strip(), text=self.text.strip())


class ContentTransformer(Agent[TransformInput, TransformedText]):
    """Rewrites a seed into a new form (see the transformer's guidance template).

    The parser enforces the prompt's length bounds (words, with a 15% margin for the
    model's counting) and sends back a text that only copies the seed.
    """

    input_model = TransformInput
    output_model = TransformedText
    default_system_template = "common/transform_system.j2"
    default_user_template = "common/transform_user.j2"
    #: A text is a copy of the seed when more than this share of the seed's word 8-grams
    #: occur in it and it is less than ``min_growth`` times as long (an extending
    #: transformer such as long_text may keep the seed, but must add to it).
    max_copied_share: float = 0.8
    min_growth: float = 1.3
    #: Slack on the word bounds: models count words roughly.
    length_margin: float = 0.15

    def parse(self, text: str, inputs: TransformInput | None = None) -> TransformedText:
        out = super().parse(text, inputs)
        if inputs is None:
            return out
        words = len(out.text.split())
        low = round(inputs.min_words * (1 - self.length_margin))
        high = round(inputs.max_words * (1 + self.length_margin))
        if not low <= words <= high:
            raise ParseError(
                f"the text has {words} words; write between {inputs.min_words} and "
                f"{inputs.max_words} words"
            )
        share = copied_share(inputs.seed.text, out.text)
        grew = words >= self.min_growth * len(inputs.seed.text.split())
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


class _Unchanged(BaseModel):
    text: str

    def material(self) -> Material:
        return Passage(title="", text=self.text)


@dataclass
class IdentityTransformer:
    """The identity agent: the seed passes through unchanged (no model call)."""

    name: str = "identity"
    system_template: str | None = None
    user_template: str | None = None
    #: The transformation stage makes no model call (no template, no cost).
    model_free: ClassVar[bool] = True

    async def run(
        self, client: ModelClient, inputs: TransformInput, *, seed: int | None = None
    ) -> AgentResult[Any]:
        del client, seed
        out = _Unchanged(text=inputs.seed.text)
        return AgentResult(output=out, raw=inputs.seed.text, usage=Usage(), attempts=0)


__all__ = [
    "ContentTransformer",
    "IdentityTransformer",
    "TransformInput",
    "TransformedText",
    "copied_share",
]
