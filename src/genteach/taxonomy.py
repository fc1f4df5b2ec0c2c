"""The YAML skill taxonomy: skills, their sub-categories, weights and pipelines.

A taxonomy file is validated by pydantic models; every error names the file and the key
path (``taxonomies/x.yaml: skills.rc.task_types[3].weight: ...``). Skills marked
``status: planned`` are listed but refused with a clear message when selected.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from genteach._resources import default_taxonomy_path

SeedKind = Literal["text", "code"]
_ALL_KINDS: tuple[SeedKind, ...] = ("text", "code")


class TaxonomyError(ValueError):
    """The taxonomy file is invalid, or a skill or key asked for is not in it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubCategory(_Strict):
    """A task type, tool-use task family, or anything else an agent is made for."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str = ""
    weight: float = Field(default=1.0, ge=0)
    origin: Literal["paper", "genteach"] = "paper"
    guidance: str | None = None
    agent: str | None = None


class Transformer(SubCategory):
    """A content transformer. ``task_types`` limits which task types may follow it."""

    task_types: list[str] | Literal["all"] = "all"


class RefinementGoal(_Strict):
    """What a suggester may aim for."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str = ""


class Stage(BaseModel):
    """One flow of a skill's pipeline; its other keys are the flow's settings."""

    model_config = ConfigDict(extra="allow")
    flow: str

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Skill(_Strict):
    """One skill of the taxonomy (Table 1 of the AgentInstruct paper)."""

    id: str = ""
    name: str
    description: str = ""
    weight: float = Field(default=1.0, ge=0)
    status: Literal["ready", "planned"] = "planned"
    seed_kinds: list[SeedKind] = Field(default_factory=lambda: list(_ALL_KINDS))
    prompts: dict[str, str] = Field(default_factory=dict)
    transformers: list[Transformer] = Field(default_factory=list)
    task_types: list[SubCategory] = Field(default_factory=list)
    refinement_goals: list[RefinementGoal] = Field(default_factory=list)
    pipeline: list[Stage] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Skill:
        for kind, items in (
            ("transformers", self.transformers),
            ("task_types", self.task_types),
            ("refinement_goals", self.refinement_goals),
        ):
            ids = [i.id for i in items]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{kind}: repeated id {', '.join(dupes)}")
        known = {t.id for t in self.task_types}
        for t in self.transformers:
            if t.task_types != "all":
                unknown = [x for x in t.task_types if x not in known]
                if unknown:
                    raise ValueError(
                        f"transformer {t.id}: task_types {unknown} are not in "
                        "this skill's task_types"
                    )
        if self.status == "ready":
            if not self.pipeline:
                raise ValueError("a ready skill needs a pipeline")
            if not self.task_types:
                raise ValueError("a ready skill needs task_types")
        return self

    @property
    def sub_category_count(self) -> int:
        return len(self.transformers) + len(self.task_types) + len(self.refinement_goals)

    def template(self, key: str, default: str) -> str:
        """The skill's template for ``key`` (``prompts:`` in the YAML), else ``default``."""
        return self.prompts.get(key, default)

    def guidance(self, kind: Literal["transformers", "task_types"], item: SubCategory) -> str:
        """The guidance template of a sub-category (default ``<skill>/<kind>/<id>.j2``)."""
        return item.guidance or f"{self.id}/{kind}/{item.id}.j2"

    def task_types_after(self, transformer_id: str | None) -> list[SubCategory]:
        """The task types allowed after a transformer (all when none limits them)."""
        t = next((t for t in self.transformers if t.id == transformer_id), None)
        if t is None or t.task_types == "all":
            return list(self.task_types)
        allowed = set(t.task_types)
        return [x for x in self.task_types if x.id in allowed]


class Taxonomy(_Strict):
    """A whole taxonomy file."""

    version: int = 1
    name: str
    description: str = ""
    skills: dict[str, Skill]
    source: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _ids(self) -> Taxonomy:
        for key, skill in self.skills.items():
            if skill.id and skill.id != key:
                raise ValueError(f"skills.{key}: id {skill.id!r} differs from its key")
            skill.id = key
        return self

    def skill(self, skill_id: str, *, ready: bool = True) -> Skill:
        """Return a skill by id; unknown or (with ``ready``) planned skills are refused."""
        where = self.source or self.name
        if skill_id not in self.skills:
            known = ", ".join(self.skills)
            raise TaxonomyError(f"{where}: no skill {skill_id!r} (skills: {known})")
        skill = self.skills[skill_id]
        if ready and skill.status != "ready":
            ready_ids = ", ".join(self.ready_skills())
            raise TaxonomyError(
                f"{where}: skill {skill_id!r} ({skill.name}) is listed but not built yet "
                f"(status: {skill.status}); ready skills: {ready_ids}"
            )
        return skill

    def ready_skills(self) -> list[str]:
        return [k for k, s in self.skills.items() if s.status == "ready"]

    def select(self, skill_ids: Iterable[str] | None) -> list[Skill]:
        """The skills to run: the given ids (all refused if one is not ready), or all ready."""
        ids = list(skill_ids) if skill_ids else self.ready_skills()
        return [self.skill(i) for i in ids]

    @property
    def sub_category_count(self) -> int:
        return sum(s.sub_category_count for s in self.skills.values())


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load and validate a taxonomy YAML file (default: the built-in AgentInstruct one)."""
    p = Path(path) if path is not None else default_taxonomy_path()
    if not p.is_file():
        raise TaxonomyError(f"{p}: taxonomy file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TaxonomyError(f"{p}: the top level must be a mapping with name and skills")
    try:
        taxonomy = Taxonomy.model_validate(data)
    except ValidationError as exc:
        lines = [f"{p}: {_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise TaxonomyError("\n".join(lines)) from exc
    taxonomy.source = str(p)
    return taxonomy


def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "list[str]", "literal['all']") or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


class _Weighted(Protocol):
    weight: float


W = TypeVar("W", bound=_Weighted)


def weighted_sample(items: Sequence[W], k: int, rng: random.Random) -> list[W]:
    """Pick up to ``k`` distinct items, each draw proportional to weight."""
    pool = [i for i in items if i.weight > 0]
    chosen: list[W] = []
    while pool and len(chosen) < k:
        pick = rng.choices(pool, weights=[i.weight for i in pool], k=1)[0]
        chosen.append(pick)
        pool.remove(pick)
    return chosen


__all__ = [
    "RefinementGoal",
    "Skill",
    "Stage",
    "SubCategory",
    "Taxonomy",
    "TaxonomyError",
    "Transformer",
    "load_taxonomy",
    "weighted_sample",
]
