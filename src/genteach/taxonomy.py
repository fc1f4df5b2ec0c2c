"""The YAML skill taxonomy: skills, their sub-categories, weights and pipelines.

A taxonomy file is validated by pydantic models; every error names the file and the key
path (``taxonomies/x.yaml: skills.rc.task_types[3].weight: ...``). Skills marked
``status: planned`` are listed but refused with a clear message when selected.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import random
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from genteach._resources import default_taxonomy_path
from genteach.records import SeedKind

#: A skill takes text and code seeds unless it names its kinds (only a skill that says so
#: takes database seeds).
_ALL_KINDS: tuple[SeedKind, ...] = ("text", "code")


class TaxonomyError(ValueError):
    """The taxonomy file is invalid, or a skill or key asked for is not in it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Choices(_Strict):
    """A list of values drawn in code (by a unit's or task's random stream), with optional
    weights; ``label`` names the list where a prompt shows a drawn value."""

    label: str = ""
    values: list[str] = Field(min_length=1)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _weights(self) -> Choices:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(
                    f"weights: {len(self.weights)} weights for {len(self.values)} values"
                )
            if any(w < 0 for w in self.weights) or not any(w > 0 for w in self.weights):
                raise ValueError("weights: must be >= 0 with at least one > 0")
        return self

    def draw(self, rng: random.Random) -> str:
        return rng.choices(self.values, weights=self.weights, k=1)[0]


class VaryChoices(Choices):
    """A ``vary`` list: values drawn per task and shown to the task's writer. ``key`` gives,
    per value, fields the task's answer key must have when that value is drawn for it
    (``{"a Markdown table with named columns": {"format": "markdown_table"}}``); they are
    checked when the task is written, so a task that ignores its drawn value is sent back."""

    key: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _key_values(self) -> VaryChoices:
        unknown = [v for v in self.key if v not in self.values]
        if unknown:
            raise ValueError(f"key: {unknown[0]!r} is not one of the values")
        return self


class Delimiter(_Strict):
    """Marks around the material in the student's message (``open``/``close``)."""

    open: str
    close: str = ""


class StudentSettings(_Strict):
    """How the student's side of a record is drawn, per task: the system prompt (an empty
    one included, as in orca-agentinstruct-1M), the framing template of the user message,
    the delimiters around the material and the label style of options."""

    system_prompts: Choices | None = None
    framings: Choices | None = None
    delimiters: list[Delimiter] = Field(default_factory=list)
    label_styles: list[str] = Field(default_factory=list)

    def merged(self, over: StudentSettings) -> StudentSettings:
        """These settings with ``over``'s set fields replacing them."""
        return StudentSettings.model_validate(
            {**self.model_dump(exclude_unset=True), **over.model_dump(exclude_unset=True)}
        )


class SubCategory(_Strict):
    """A task type, tool-use task family, or anything else an agent is made for.

    ``key`` lists the answer-key kinds its tasks may have (see genteach.keys), ``goals``
    the refinement goals allowed for it (all when absent), ``vary`` the taxonomy's
    ``vary`` lists drawn per task and shown to its agent, ``stems`` question openings
    drawn per task.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str = ""
    weight: float = Field(default=1.0, ge=0)
    origin: Literal["paper", "genteach"] = "paper"
    guidance: str | None = None
    agent: str | None = None
    key: list[str] = Field(default_factory=lambda: ["free_text"], min_length=1)
    goals: list[str] | None = None
    vary: list[str] = Field(default_factory=list)
    stems: list[str] = Field(default_factory=list)


class Transformer(SubCategory):
    """A content transformer. ``task_types`` limits which task types may follow it;
    ``seed_kinds`` the seeds it is drawn for (None: every kind the skill takes);
    ``min_words``/``max_words`` replace the stage's length bounds for it."""

    task_types: list[str] | Literal["all"] = "all"
    seed_kinds: list[SeedKind] | None = None
    min_words: int | None = Field(default=None, ge=1)
    max_words: int | None = Field(default=None, ge=1)


class RefinementGoal(_Strict):
    """What a suggester may aim for.

    ``edits``: what the editor changes: ``material`` (find/replace edits of the passage;
    the question stays) or ``task`` (the question, its options or constraints; the
    material stays). ``key``: what the new answer key must be: ``unanswerable`` (the
    material no longer settles it), ``changed`` (same kind, another answer) or ``any``.
    ``weight``: how often it is drawn.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str = ""
    weight: float = Field(default=1.0, ge=0)
    edits: Literal["material", "task"] = "task"
    key: Literal["any", "changed", "unanswerable"] = "any"


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
    vary: dict[str, VaryChoices] = Field(default_factory=dict)
    student: StudentSettings = Field(default_factory=StudentSettings)
    transformers: list[Transformer] = Field(default_factory=list)
    task_types: list[SubCategory] = Field(default_factory=list)
    refinement_goals: list[RefinementGoal] = Field(default_factory=list)
    pipeline: list[Stage] = Field(default_factory=list)
    _folder: Path | None = PrivateAttr(default=None)

    @property
    def folder(self) -> Path | None:
        """The folder of the taxonomy file the skill was loaded from (for ``module:Class``
        agents next to it), or None."""
        return self._folder

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
        goals = {g.id for g in self.refinement_goals}
        for t in self.task_types:
            if t.goals is not None:
                unknown = [g for g in t.goals if g not in goals]
                if unknown:
                    raise ValueError(
                        f"task type {t.id}: goals {unknown} are not in this skill's "
                        "refinement_goals"
                    )
        known = {t.id for t in self.task_types}
        for t in self.transformers:
            if t.seed_kinds is not None and not set(t.seed_kinds) <= set(self.seed_kinds):
                raise ValueError(
                    f"transformer {t.id}: seed_kinds {t.seed_kinds} are not all among the "
                    f"skill's seed_kinds {self.seed_kinds}"
                )
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

    def goals_for(self, task_type: str) -> list[RefinementGoal]:
        """The refinement goals allowed for a task type (all when it names none)."""
        t = next((t for t in self.task_types if t.id == task_type), None)
        if t is None or t.goals is None:
            return list(self.refinement_goals)
        return [g for g in self.refinement_goals if g.id in t.goals]

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
    keys: list[str] = Field(default_factory=list)
    vary: dict[str, VaryChoices] = Field(default_factory=dict)
    student: StudentSettings = Field(default_factory=StudentSettings)
    skills: dict[str, Skill]
    source: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _ids(self) -> Taxonomy:
        from genteach.keys import LABEL_STYLES

        for key, skill in self.skills.items():
            if skill.id and skill.id != key:
                raise ValueError(f"skills.{key}: id {skill.id!r} differs from its key")
            skill.id = key
            # Taxonomy-wide lists and student settings, under the skill's own.
            skill.vary = {**self.vary, **skill.vary}
            skill.student = self.student.merged(skill.student)
            for item in [*skill.transformers, *skill.task_types]:
                unknown = [v for v in item.vary if v not in skill.vary]
                if unknown:
                    raise ValueError(
                        f"skills.{key}: {item.id}: vary {unknown} are not lists of the "
                        f"taxonomy's or the skill's vary (lists: {', '.join(skill.vary)})"
                    )
                for name in item.vary:
                    problem = _key_fields_problem(skill.vary[name].key, item.key)
                    if problem:
                        raise ValueError(f"skills.{key}: {item.id}: vary {name}: {problem}")
            bad = [s for s in skill.student.label_styles if s not in LABEL_STYLES]
            if bad:
                raise ValueError(
                    f"skills.{key}.student.label_styles: unknown {bad} "
                    f"(styles: {', '.join(LABEL_STYLES)})"
                )
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

    def key_classes(self) -> list[type[Any]]:
        """The answer-key classes the taxonomy adds (``keys:``, ``module:Class`` each,
        resolved next to the taxonomy file as agents are)."""
        folder = Path(self.source).resolve().parent if self.source else None
        return [import_object(spec, f"keys[{i}]", folder) for i, spec in enumerate(self.keys)]

    def ready_skills(self) -> list[str]:
        return [k for k, s in self.skills.items() if s.status == "ready"]

    def select(self, skill_ids: Iterable[str] | None) -> list[Skill]:
        """The skills to run: the given ids (all refused if one is not ready), or all ready."""
        ids = list(skill_ids) if skill_ids else self.ready_skills()
        return [self.skill(i) for i in ids]

    @property
    def sub_category_count(self) -> int:
        return sum(s.sub_category_count for s in self.skills.values())


def _key_fields_problem(required: dict[str, dict[str, Any]], kinds: list[str]) -> str | None:
    """What is wrong with a ``vary`` list's ``key`` for a task type whose keys are of
    ``kinds``: a field no built-in kind of them has, or a value it refuses. Kinds a
    taxonomy adds are checked when tasks are written."""
    from pydantic import TypeAdapter, ValidationError

    from genteach.keys import BUILTIN_KEYS, kind_of

    classes = [c for c in BUILTIN_KEYS if kind_of(c) in kinds]
    if len(classes) < len(kinds):
        return None
    for value, fields in required.items():
        for field, want in fields.items():
            infos = [c.model_fields[field] for c in classes if field in c.model_fields]
            if not infos:
                named = ", ".join(kinds)
                return f'key of "{value}": no key kind of the task type ({named}) has "{field}"'
            try:
                TypeAdapter(infos[0].annotation or Any).validate_python(want)
            except ValidationError:
                return f'key of "{value}": {want!r} is not a value of "{field}"'
    return None


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load and validate a taxonomy YAML file (default: the built-in AgentInstruct one).

    Raises:
        TaxonomyError: one line naming the file (and the line, or the key path) and what
            is wrong: missing, binary or not UTF-8, not YAML, or not a valid taxonomy.
    """
    p = Path(path) if path is not None else default_taxonomy_path()
    if p.is_dir():
        raise TaxonomyError(f"{p}: is a folder; give the taxonomy's YAML file")
    if not p.is_file():
        raise TaxonomyError(f"{p}: taxonomy file not found")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise TaxonomyError(f"{p}: cannot read the taxonomy: {exc.strerror}") from None
    if b"\x00" in raw[:8192]:
        raise TaxonomyError(f"{p}: not a YAML text file (binary content)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TaxonomyError(f"{p}:{line}: not a YAML text file (not UTF-8)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaxonomyError(_yaml_error(p, exc)) from None
    if not isinstance(data, dict):
        raise TaxonomyError(f"{p}: the top level must be a mapping with name and skills")
    try:
        taxonomy = Taxonomy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise TaxonomyError(f"{p}: {_loc(first['loc'])}: {first['msg']}{more}") from None
    taxonomy.source = str(p)
    for skill in taxonomy.skills.values():
        skill._folder = p.resolve().parent
    return taxonomy


def _yaml_error(p: Path, exc: yaml.YAMLError) -> str:
    """A YAML error as one line: ``file:line:column: not valid YAML: problem``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(p)
    line = f"{where}: not valid YAML: {problem}"
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark.line != getattr(mark, "line", None):
        line += f" ({context} started on line {context_mark.line + 1})"
    return line


def import_object(spec: str, where: str, folder: Path | None = None) -> Any:
    """Import ``module:Name``. A module not on the Python path is looked for in ``folder``
    (a taxonomy's own folder), without changing ``sys.path``.

    Raises:
        TaxonomyError: one line naming ``where`` and what could not be found.
    """
    module, _, name = spec.partition(":")
    top = module.split(".")[0]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        found = None
        if exc.name == top and folder is not None:
            found = importlib.machinery.PathFinder.find_spec(top, [str(folder)])
        if found is None or found.loader is None:
            hint = f" or in {folder}" if folder is not None else ""
            raise TaxonomyError(
                f"{where}: cannot import {spec!r}: no module {module!r} on the Python "
                f"path{hint}; set PYTHONPATH to the folder that holds it"
            ) from None
        loaded = importlib.util.module_from_spec(found)
        sys.modules[top] = loaded
        try:
            found.loader.exec_module(loaded)
            mod = importlib.import_module(module)
        except Exception as err:
            sys.modules.pop(top, None)
            raise TaxonomyError(
                f"{where}: cannot import {spec!r}: {type(err).__name__}: {err}"
            ) from err
    except ImportError as exc:
        raise TaxonomyError(f"{where}: cannot import {spec!r}: {exc}") from exc
    try:
        return getattr(mod, name)
    except AttributeError:
        raise TaxonomyError(
            f"{where}: cannot import {spec!r}: module {module!r} has no {name!r}"
        ) from None


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
    "Choices",
    "Delimiter",
    "RefinementGoal",
    "Skill",
    "Stage",
    "StudentSettings",
    "SubCategory",
    "Taxonomy",
    "TaxonomyError",
    "Transformer",
    "VaryChoices",
    "import_object",
    "load_taxonomy",
    "weighted_sample",
]
