"""ContentTransformationFlow: one transformer, drawn by weight, turns the seed into the
unit's material."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from genteach.agents.transform import TransformInput
from genteach.agents.views import SeedView
from genteach.flows.base import (
    FlowBuild,
    FlowSettings,
    RunContext,
    WorkItem,
    build_agent,
    category_view,
    model_free,
    skill_view,
    templates_of,
)
from genteach.taxonomy import Skill, TaxonomyError, Transformer


class ContentTransformationFlow:
    """Picks one transformer per seed (identity included) by weight and runs it.

    Sets ``item.material`` (the output's ``material()``) and ``item.transformer``, which
    limits the task types that may follow.
    """

    name = "content_transformation"
    #: It makes the unit's material, not tasks (the pipeline goes on without tasks).
    material_stage = True

    class Settings(FlowSettings):
        """Bounds of what transformers write, and the default agent kind.

        Attributes:
            min_words / max_words: length of a transformed text (a transformer's own
                ``min_words``/``max_words`` in the taxonomy win).
            min_items / max_items: items of a list material (APIs of an API list).
            agent: the agent kind of transformers that name none (``transform``).
        """

        min_words: int = Field(default=150, ge=1)
        max_words: int = Field(default=600, ge=1)
        min_items: int = Field(default=4, ge=1)
        max_items: int = Field(default=10, ge=1)
        agent: str = "transform"

        @model_validator(mode="after")
        def _bounds(self) -> ContentTransformationFlow.Settings:
            if self.min_words > self.max_words:
                raise ValueError(f"min_words {self.min_words} > max_words {self.max_words}")
            if self.min_items > self.max_items:
                raise ValueError(f"min_items {self.min_items} > max_items {self.max_items}")
            return self

    def __init__(self, skill: Skill, agents: dict[str, Any], settings: Settings) -> None:
        if not skill.transformers:
            raise TaxonomyError(
                f"skills.{skill.id}.transformers: the flow {self.name} needs at least one"
            )
        self.skill = skill
        self.agents = agents
        self.settings = settings

    @classmethod
    def from_config(
        cls, skill: Skill, settings: Settings, build: FlowBuild
    ) -> ContentTransformationFlow:
        agents = {
            t.id: build_agent(
                skill,
                "transformers",
                t,
                settings.agent,
                build=build,
                prefix="transform",
                params=settings.model_dump(exclude={"agent"}),
            )
            for t in skill.transformers
        }
        return cls(skill, agents, settings)

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: model calls per unit (identity transformers make none) and
        the tasks after this stage (unchanged)."""
        pool = [t for t in self.skill.transformers if t.weight > 0]
        total = sum(t.weight for t in pool)
        calls = sum(t.weight for t in pool if not model_free(t.agent)) / total if total else 0.0
        return calls, tasks

    def choose(self, item: WorkItem) -> Transformer | None:
        """A transformer drawn by weight among those for the seed's kind (None: none is)."""
        kind = item.seed.kind
        pool = [
            t
            for t in self.skill.transformers
            if t.weight > 0 and (t.seed_kinds is None or kind in t.seed_kinds)
        ]
        if not pool:
            return None
        return item.rng.choices(pool, weights=[t.weight for t in pool], k=1)[0]

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        transformer = self.choose(item)
        if transformer is None:
            item.reject(
                self.name, self.name, f"no transformer of the skill takes a {item.seed.kind} seed"
            )
            return
        agent = self.agents[transformer.id]
        s = self.settings
        result = await agent.run(
            ctx.client,
            TransformInput(
                skill=skill_view(self.skill),
                category=category_view(self.skill, "transformers", transformer),
                seed=SeedView(**item.seed.model_dump()),
                min_words=transformer.min_words or s.min_words,
                max_words=transformer.max_words or s.max_words,
                min_items=s.min_items,
                max_items=s.max_items,
            ),
            seed=item.call_seed(),
        )
        item.add(result)
        item.material = result.output.material()
        item.transformer = transformer.id
        item.agents.append(agent.name)
        if not model_free(transformer.agent):
            item.templates += templates_of(agent, self.skill.guidance("transformers", transformer))
