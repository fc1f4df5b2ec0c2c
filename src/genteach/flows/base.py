"""What flows share: the work item that travels through a skill's pipeline, the run
context, and how agents are built from taxonomy entries."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from genteach.agents.base import AgentResult
from genteach.agents.instruct import SeedInstructionAgent
from genteach.agents.tool_use import ApiList, ApiListBuilder, ToolTaskAgent
from genteach.agents.transform import ContentTransformer, IdentityTransformer
from genteach.agents.views import CategoryView, PassageView, SkillView
from genteach.models.base import ModelClient, Usage
from genteach.prompts import PromptLibrary
from genteach.records import Record, Reject, Seed, content_id
from genteach.taxonomy import Skill, SubCategory, TaxonomyError, import_object


@dataclass
class Task:
    """A task on its way to becoming a record. Refined tasks link to their parent."""

    sub_category: str
    text: str
    instruction: str
    answer: str = ""
    parent_id: str | None = None
    round: int = 0
    goal: str | None = None
    suggestion: str | None = None
    agents: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return content_id(self.sub_category, self.text, self.instruction)


@dataclass
class WorkItem:
    """One seed going through one skill's pipeline (a *unit* of work)."""

    seed: Seed
    skill: Skill
    rng: random.Random
    passage: PassageView | None = None
    apis: ApiList | None = None
    transformer: str | None = None
    tasks: list[Task] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    agents: list[str] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return unit_key(self.skill.id, self.seed.id)

    def call_seed(self) -> int:
        """A model-call seed drawn from the item's RNG (reproducible runs)."""
        return self.rng.randrange(2**31)

    def add(self, result: AgentResult[Any]) -> None:
        self.usage = self.usage + result.usage

    def add_usage(self, usage: Usage) -> None:
        self.usage = self.usage + usage

    def reject(self, stage: str, agent: str, reason: str, raw: str = "") -> None:
        self.rejects.append(
            Reject(
                unit=self.unit,
                seed_id=self.seed.id,
                skill=self.skill.id,
                stage=stage,
                agent=agent,
                reason=reason,
                raw=raw[:4000],
            )
        )


def unit_key(skill_id: str, seed_id: str) -> str:
    return f"{skill_id}/{seed_id}"


@dataclass
class RunContext:
    """What flows need besides the item: the model, the prompts, the teacher's name."""

    client: ModelClient
    prompts: PromptLibrary
    teacher: str
    version: str = ""


class Flow(Protocol):
    """One stage of a skill's pipeline. It reads and extends the work item."""

    name: str

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None: ...


#: Builds a flow from (skill, stage settings, prompts, agent options).
FlowFactory = Callable[[Skill, Mapping[str, Any], PromptLibrary, Mapping[str, Any]], Flow]

#: The agent kinds a taxonomy entry may name in ``agent:`` (or give ``module:Class``).
AGENT_KINDS: dict[str, type[Any]] = {
    "transform": ContentTransformer,
    "identity": IdentityTransformer,
    "api_list": ApiListBuilder,
    "instruct": SeedInstructionAgent,
    "tool_task": ToolTaskAgent,
}

#: Which ``prompts:`` override keys of a skill apply to which agent kinds.
_TEMPLATE_KEYS = {
    "transform": ("transform_system", "transform_user"),
    "api_list": ("transform_system", "transform_user"),
    "instruct": ("instruct_system", "instruct_user"),
    "tool_task": ("instruct_system", "instruct_user"),
}


def agent_class(spec: str, where: str, folder: Path | None = None) -> type[Any]:
    """Resolve an ``agent:`` value: a kind from :data:`AGENT_KINDS` or ``module:Class``
    (a module not on the Python path is looked for in ``folder``, the taxonomy's)."""
    if spec in AGENT_KINDS:
        return AGENT_KINDS[spec]
    if ":" in spec:
        return import_object(spec, where, folder)
    raise TaxonomyError(
        f"{where}: unknown agent {spec!r} (kinds: {', '.join(AGENT_KINDS)}, or module:Class)"
    )


def build_agent(
    skill: Skill,
    kind_of_list: str,
    item: SubCategory,
    default_kind: str,
    *,
    prompts: PromptLibrary,
    prefix: str,
    params: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
) -> Any:
    """Build the agent for one sub-category entry of a skill."""
    spec = item.agent or default_kind
    where = f"skills.{skill.id}.{kind_of_list}.{item.id}.agent"
    cls = agent_class(spec, where, skill.folder)
    name = f"{prefix}/{item.id}"
    if cls is IdentityTransformer:
        return IdentityTransformer(name=name)
    keys = _TEMPLATE_KEYS.get(spec, (f"{prefix}_system", f"{prefix}_user"))
    return make_agent(
        cls, name, skill, prompts, params, options or {}, system_key=keys[0], user_key=keys[1]
    )


def make_agent(
    cls: type[Any],
    name: str,
    skill: Skill,
    prompts: PromptLibrary,
    settings: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    system_key: str,
    user_key: str | None = None,
) -> Any:
    """Build one of a flow's own agents (suggester, editor, responder...), taking the
    skill's template overrides for ``system_key`` / ``user_key`` when it has them."""
    return cls(
        name,
        prompts=prompts,
        system_template=skill.prompts.get(system_key),
        user_template=skill.prompts.get(user_key) if user_key else None,
        params=dict(settings),
        **dict(options),
    )


def skill_view(skill: Skill) -> SkillView:
    return SkillView(id=skill.id, name=skill.name, description=skill.description)


def category_view(skill: Skill, kind: str, item: SubCategory) -> CategoryView:
    guidance = skill.guidance(kind, item)  # type: ignore[arg-type]
    return CategoryView(
        id=item.id,
        name=item.name,
        description=item.description,
        origin=item.origin,
        guidance=guidance,
    )


__all__ = [
    "AGENT_KINDS",
    "Flow",
    "FlowFactory",
    "RunContext",
    "Task",
    "WorkItem",
    "agent_class",
    "build_agent",
    "category_view",
    "make_agent",
    "skill_view",
    "unit_key",
]
