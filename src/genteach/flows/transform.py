"""ContentTransformationFlow: one transformer, drawn by weight, rewrites the seed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genteach.agents.tool_use import ApiList, ApiListBuilder, ApiListInput
from genteach.agents.transform import TransformedText, TransformInput
from genteach.agents.views import PassageView, SeedView
from genteach.flows.base import RunContext, WorkItem, build_agent, category_view, skill_view
from genteach.prompts import PromptLibrary
from genteach.taxonomy import Skill, TaxonomyError, Transformer


class ContentTransformationFlow:
    """Picks one transformer per seed (identity included) by weight and runs it.

    Sets ``item.passage`` (and ``item.apis`` for API-list transformers) and
    ``item.transformer``, which limits the task types that may follow.
    """

    name = "content_transformation"

    def __init__(self, skill: Skill, agents: Mapping[str, Any], settings: Mapping[str, Any]):
        if not skill.transformers:
            raise TaxonomyError(
                f"skills.{skill.id}.transformers: the flow {self.name} needs at least one"
            )
        self.skill = skill
        self.agents = dict(agents)
        self.settings = dict(settings)

    @classmethod
    def from_config(
        cls,
        skill: Skill,
        settings: Mapping[str, Any],
        prompts: PromptLibrary,
        options: Mapping[str, Any],
    ) -> ContentTransformationFlow:
        agents = {
            t.id: build_agent(
                skill,
                "transformers",
                t,
                "transform",
                prompts=prompts,
                prefix="transform",
                params=settings,
                options=options,
            )
            for t in skill.transformers
        }
        return cls(skill, agents, settings)

    def expected_calls(self, tasks: float) -> tuple[float, float]:
        """For ``--dry-run``: model calls per unit (identity transformers make none) and
        the tasks after this stage (unchanged)."""
        pool = [t for t in self.skill.transformers if t.weight > 0]
        total = sum(t.weight for t in pool)
        calls = sum(t.weight for t in pool if t.agent != "identity") / total if total else 0.0
        return calls, tasks

    def choose(self, item: WorkItem) -> Transformer:
        pool = [t for t in self.skill.transformers if t.weight > 0]
        return item.rng.choices(pool, weights=[t.weight for t in pool], k=1)[0]

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None:
        transformer = self.choose(item)
        agent = self.agents[transformer.id]
        seed_view = SeedView(**item.seed.model_dump())
        category = category_view(self.skill, "transformers", transformer)
        call_seed = item.call_seed()
        if isinstance(agent, ApiListBuilder):
            result = await agent.run(
                ctx.client,
                ApiListInput(
                    skill=skill_view(self.skill),
                    category=category,
                    seed=seed_view,
                    min_apis=int(self.settings.get("min_apis", 4)),
                    max_apis=int(self.settings.get("max_apis", 10)),
                ),
                seed=call_seed,
            )
            apis: ApiList = result.output
            item.apis = apis
            item.passage = PassageView(
                title=apis.library,
                text=ctx.prompts.render(
                    "tool_use/api_list_text.j2",
                    library=apis.library,
                    description=apis.description,
                    apis=[a.model_dump() for a in apis.apis],
                ),
                transformer=transformer.id,
            )
        else:
            result = await agent.run(
                ctx.client,
                TransformInput(skill=skill_view(self.skill), category=category, seed=seed_view),
                seed=call_seed,
            )
            out: TransformedText = result.output
            item.passage = out.passage(transformer.id)
        item.add(result)
        item.transformer = transformer.id
        item.agents.append(agent.name)
