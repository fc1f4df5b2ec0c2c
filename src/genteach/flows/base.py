"""What flows share: the task and the work item that travel through a skill's pipeline,
the run context, typed flow settings, and how agents are built from taxonomy entries."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from genteach.agents.base import REPAIR_TEMPLATE, RETRY_NOTE_TEMPLATE, Agent, AgentResult
from genteach.agents.db import DatabaseFileReader, DbTablesBuilder, DbTaskAgent
from genteach.agents.documents import WithheldDocumentsAgent
from genteach.agents.instruct import ClosedBookTaskAgent, ExcerptTaskAgent, SeedInstructionAgent
from genteach.agents.refine import ClosedBookEditor, Editor
from genteach.agents.tool_use import ApiListBuilder, ToolEditor, ToolTaskAgent
from genteach.agents.transform import ContentTransformer, IdentityTransformer
from genteach.agents.views import CategoryView, SkillView
from genteach.agents.web import WebSiteBuilder
from genteach.keys import AnswerKey, KeyKinds, Layout, UnanswerableKey, Verification
from genteach.material import Material
from genteach.models.base import Message, ModelClient, Usage
from genteach.prompts import PromptLibrary
from genteach.records import Record, Reject, Seed, content_id
from genteach.retrieval import SeedIndex
from genteach.runtime import EpisodeSettings, Sandbox
from genteach.taxonomy import (
    Delimiter,
    Skill,
    StudentSettings,
    SubCategory,
    TaxonomyError,
    import_object,
)

#: The student-message template used when a skill lists no framings.
DEFAULT_FRAMING = "common/framings/instruction_first.j2"


@dataclass(frozen=True)
class StudentView:
    """How one task is shown to the student, drawn in code from the task's own stream:
    the system message (None: none; "": an empty one), the framing template of the user
    message, the delimiters around the material and the layout of the key (option order,
    label style)."""

    system: str | None
    framing: str
    delimiter: Delimiter | None
    layout: Layout

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "framing": self.framing,
            "delimiter": self.delimiter.model_dump() if self.delimiter else None,
            "layout": self.layout.model_dump(),
        }


def presented_key(key: AnswerKey, kinds: KeyKinds) -> AnswerKey:
    """The key whose form the student sees: an unanswerable task keeps the question (and
    options) of the key it was made from."""
    if isinstance(key, UnanswerableKey):
        shown = key.presented(kinds)
        if shown is not None:
            return shown
    return key


def draw_view(
    student: StudentSettings, key: AnswerKey, kinds: KeyKinds, rng: random.Random
) -> StudentView:
    """Draw a task's :class:`StudentView` from ``rng`` (the task's own stream)."""
    system = student.system_prompts.draw(rng) if student.system_prompts else None
    framing = student.framings.draw(rng) if student.framings else DEFAULT_FRAMING
    delimiter = rng.choice(student.delimiters) if student.delimiters else None
    layout = presented_key(key, kinds).layout(rng, student.label_styles)
    return StudentView(system=system, framing=framing, delimiter=delimiter, layout=layout)


@dataclass
class Task:
    """A task on its way to becoming a record: its material, the instruction the student
    reads, its typed answer key and how it is shown. Refined tasks link to their parent.

    ``slot`` holds the values drawn in code for the agent that wrote it (a target
    language, a question stem...), kept in the record's metadata; ``templates`` the
    templates its agents rendered (their hash goes into the record, see
    :func:`templates_of`).
    """

    sub_category: str
    material: Material
    instruction: str
    key: AnswerKey
    view: StudentView
    parent_id: str | None = None
    round: int = 0
    goal: str | None = None
    suggestion: str | None = None
    agents: list[str] = field(default_factory=list)
    slot: dict[str, str] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        """Content-derived: the same task written again gets the same id."""
        return task_id(self.sub_category, self.material, self.instruction, self.key)

    def stream(self, run_seed: int, purpose: str) -> random.Random:
        """The task's own random stream for ``purpose``: derived from the run's seed and
        the task's identity, so a sibling's fate (a reject) never shifts it."""
        return task_stream(run_seed, self.id, purpose)


def task_stream(run_seed: int, tid: str, purpose: str) -> random.Random:
    """The random stream of the task with id ``tid`` for ``purpose``."""
    return random.Random(f"{run_seed}:{tid}:{purpose}")


def material_data(material: Material) -> Any:
    """A material's data, for ids and metadata (pydantic models dump themselves)."""
    dump = getattr(material, "model_dump", None)
    return dump(mode="json") if callable(dump) else repr(material)


def task_id(sub_category: str, material: Material, instruction: str, key: AnswerKey) -> str:
    return content_id(sub_category, material_data(material), instruction, key.model_dump())


@dataclass
class WorkItem:
    """One seed going through one skill's pipeline (a *unit* of work).

    ``stream_key`` names the unit's random streams (run seed, skill, seed id); every
    draw that must not depend on other draws uses :meth:`stream` with its own purpose.
    ``run_seed`` seeds the streams of tasks (:meth:`Task.stream`), which depend on the
    task's content only: the same task drawn in two units is shown and answered alike.
    """

    seed: Seed
    skill: Skill
    rng: random.Random
    stream_key: str = ""
    run_seed: int = 0
    material: Material | None = None
    transformer: str | None = None
    tasks: list[Task] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    agents: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    verified: Counter[str] = field(default_factory=Counter)
    positions: Counter[str] = field(default_factory=Counter)

    @property
    def unit(self) -> str:
        return unit_key(self.skill.id, self.seed.id)

    def stream(self, *purpose: str) -> random.Random:
        """An independent random stream of this unit for ``purpose``."""
        return random.Random(":".join([self.stream_key, *purpose]))

    def call_seed(self) -> int:
        """A model-call seed drawn from the item's RNG (reproducible runs)."""
        return self.rng.randrange(2**31)

    def add(self, result: AgentResult[Any]) -> None:
        self.usage = self.usage + result.usage

    def add_usage(self, usage: Usage) -> None:
        self.usage = self.usage + usage

    def count(self, verification: Verification) -> None:
        """Count a response's verification (passed, failed, unchecked) for the summary."""
        self.verified[verification.status] += 1

    def reject(
        self,
        stage: str,
        agent: str,
        reason: str,
        raw: str = "",
        *,
        messages: Sequence[Message] | None = None,
    ) -> None:
        """Add a reject: ``raw`` is the model's last answer (cut to 4000 characters);
        ``messages`` the whole transcript of a filtered episode, when there was one."""
        self.rejects.append(
            Reject(
                unit=self.unit,
                seed_id=self.seed.id,
                skill=self.skill.id,
                stage=stage,
                agent=agent,
                reason=reason,
                raw=raw[:4000],
                messages=list(messages) if messages else None,
            )
        )


def templates_of(agent: Any, *guidance: str) -> list[str]:
    """The templates an agent renders (its ``templates()``, else its system and user
    templates; the repair templates for every genteach agent) and the ``guidance``
    templates it includes by name: what a record's prompt hash covers."""
    own = getattr(agent, "templates", None)
    if callable(own):
        names = [str(n) for n in own()]
    else:
        pair = (getattr(agent, "system_template", None), getattr(agent, "user_template", None))
        names = [t for t in pair if isinstance(t, str)]
    if isinstance(agent, Agent):
        names += [REPAIR_TEMPLATE, RETRY_NOTE_TEMPLATE]
    return [*names, *guidance]


def unit_key(skill_id: str, seed_id: str) -> str:
    return f"{skill_id}/{seed_id}"


class Judge(Protocol):
    """Decides what code cannot (free-text answers): returns a verification with status
    passed or failed. Off by default; pass one to the Pipeline (``judge=``)."""

    async def __call__(self, task: Task, response: str, ctx: RunContext) -> Verification: ...


@dataclass
class RunContext:
    """What flows need besides the item: the model, the prompts, the teacher's name, the
    key kinds, the optional judge, the sandbox that program-tests keys run code in
    (:class:`~genteach.keys.KeyTools`; made on first use when none is given), and the
    run's index of its seeds (built by the pipeline when a stage needs it)."""

    client: ModelClient
    prompts: PromptLibrary
    teacher: str
    version: str = ""
    keys: KeyKinds = field(default_factory=KeyKinds)
    judge: Judge | None = None
    code_sandbox: Sandbox | None = None
    seed_index: SeedIndex | None = None

    def sandbox(self) -> Sandbox:
        """The run's sandbox (:class:`~genteach.runtime.Sandbox` with its default limits
        unless one was given).

        Raises:
            SandboxUnavailable: no isolation works on this machine.
        """
        if self.code_sandbox is None:
            self.code_sandbox = Sandbox()
        return self.code_sandbox

    async def verify(self, task: Task, response: str) -> Verification:
        """``task``'s key verifies ``response``; what code cannot settle goes to the judge
        when there is one."""
        verification = await task.key.verify(response, task.view.layout, self)
        if verification.status == "unchecked" and self.judge is not None:
            verification = await self.judge(task, response, self)
        return verification


@dataclass(frozen=True)
class FlowBuild:
    """What building a flow needs: the prompts, the agents' options (temperature,
    repairs...) and the key kinds of the run."""

    prompts: PromptLibrary
    options: Mapping[str, Any] = field(default_factory=dict)
    keys: KeyKinds = field(default_factory=KeyKinds)


class FlowSettings(BaseModel):
    """Base of a flow's typed settings (a stage's keys in the taxonomy, and ``--set``)."""

    model_config = ConfigDict(extra="forbid")


class Flow(Protocol):
    """One stage of a skill's pipeline. It reads and extends the work item."""

    name: str

    async def __call__(self, item: WorkItem, ctx: RunContext) -> None: ...


class FlowType(Protocol):
    """A flow class as the taxonomy's ``flow:`` names it: typed settings and a builder."""

    Settings: ClassVar[type[FlowSettings]]

    @classmethod
    def from_config(cls, skill: Skill, settings: Any, build: FlowBuild) -> Flow: ...


def validate_settings(
    flow: type[FlowSettings], values: Mapping[str, Any], where: str
) -> FlowSettings:
    """Validate a stage's settings; errors name ``where`` (file and key path) and the key."""
    try:
        return flow.model_validate(dict(values))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        given = f" (got {first['input']!r})" if first["type"] != "extra_forbidden" else ""
        msg = "not a setting of this flow" if first["type"] == "extra_forbidden" else first["msg"]
        known = ", ".join(flow.model_fields)
        raise TaxonomyError(f"{where}.{key}: {msg}{given} (settings: {known})") from exc


#: The agent kinds a taxonomy entry may name in ``agent:`` (or give ``module:Class``).
AGENT_KINDS: dict[str, type[Any]] = {
    "transform": ContentTransformer,
    "identity": IdentityTransformer,
    "api_list": ApiListBuilder,
    "web_site": WebSiteBuilder,
    "db_tables": DbTablesBuilder,
    "db_file": DatabaseFileReader,
    "instruct": SeedInstructionAgent,
    "excerpt": ExcerptTaskAgent,
    "closed_book": ClosedBookTaskAgent,
    "tool_task": ToolTaskAgent,
    "withheld_documents": WithheldDocumentsAgent,
    "db_task": DbTaskAgent,
    "editor": Editor,
    "closed_book_editor": ClosedBookEditor,
    "tool_editor": ToolEditor,
}

#: Which ``prompts:`` override keys of a skill apply to which agent kinds.
_TEMPLATE_KEYS = {
    "transform": ("transform_system", "transform_user"),
    "api_list": ("transform_system", "transform_user"),
    "web_site": ("transform_system", "transform_user"),
    "db_tables": ("transform_system", "transform_user"),
    "instruct": ("instruct_system", "instruct_user"),
    "excerpt": ("instruct_system", "instruct_user"),
    "closed_book": ("instruct_system", "instruct_user"),
    "tool_task": ("instruct_system", "instruct_user"),
    "withheld_documents": ("instruct_system", "instruct_user"),
    "db_task": ("instruct_system", "instruct_user"),
}


def model_free(spec: str | None) -> bool:
    """Whether the agent kind ``spec`` makes its output without a model call (and so
    renders no template): the identity transformer, the database-file reader."""
    return bool(getattr(AGENT_KINDS.get(spec or ""), "model_free", False))


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


def key_classes(skill: Skill, item: SubCategory, keys: KeyKinds) -> list[type[AnswerKey]]:
    """The key classes a task type allows (its ``key:`` list)."""
    out = []
    for kind in item.key:
        if kind not in keys:
            raise TaxonomyError(
                f"skills.{skill.id}.task_types.{item.id}.key: unknown key kind {kind!r} "
                f"(kinds: {', '.join(keys.names())})"
            )
        out.append(keys.get(kind))
    return out


def build_agent(
    skill: Skill,
    kind_of_list: str,
    item: SubCategory,
    default_kind: str,
    *,
    build: FlowBuild,
    prefix: str,
    params: Mapping[str, Any],
) -> Any:
    """Build the agent for one sub-category entry of a skill."""
    spec = item.agent or default_kind
    where = f"skills.{skill.id}.{kind_of_list}.{item.id}.agent"
    cls = agent_class(spec, where, skill.folder)
    name = f"{prefix}/{item.id}"
    if getattr(cls, "model_free", False):
        return cls(name=name)
    keys = _TEMPLATE_KEYS.get(spec, (f"{prefix}_system", f"{prefix}_user"))
    options = dict(build.options)
    if getattr(cls, "keyed", False):
        options["key_kinds"] = key_classes(skill, item, build.keys)
    return make_agent(
        cls, name, skill, build.prompts, params, options, system_key=keys[0], user_key=keys[1]
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


def task_type(skill: Skill, sub_category: str) -> SubCategory:
    return next(t for t in skill.task_types if t.id == sub_category)


#: How the prompt names a drawn question stem.
STEM_LABEL = "question stem (complete it for this passage)"


def slot_labels(skill: Skill, item: SubCategory) -> dict[str, str]:
    """How prompts name the values of a task type's slots."""
    labels = {name: skill.vary[name].label or name.replace("_", " ") for name in item.vary}
    if item.stems:
        labels["stem"] = STEM_LABEL
    return labels


def slot_keys(skill: Skill, item: SubCategory) -> dict[str, dict[str, dict[str, Any]]]:
    """Per slot of a task type, the key fields each of its values requires (the ``vary``
    lists' ``key``)."""
    return {name: skill.vary[name].key for name in item.vary if skill.vary[name].key}


def draw_slots(
    skill: Skill, item: SubCategory, rng: random.Random, count: int
) -> list[dict[str, str]]:
    """Per task to write, the values drawn for the task type: one value of each of its
    ``vary`` lists and, if it has stems, a question stem (distinct while stems last)."""
    stems = list(item.stems)
    rng.shuffle(stems)
    slots = []
    for i in range(count):
        slot = {name: skill.vary[name].draw(rng) for name in item.vary}
        if stems:
            slot["stem"] = stems[i % len(stems)]
        slots.append(slot)
    return slots


def episode_settings(options: dict[str, Any], max_turns: int) -> EpisodeSettings:
    """The episode settings of a multi-turn flow: ``max_turns`` and the run's repair and
    sampling options (``FlowBuild.options``)."""
    return EpisodeSettings(
        max_turns=max_turns,
        max_repairs=options.get("max_parse_retries", 2),
        repair_style=options.get("repair_style", "show"),
        repair_temperature=options.get("repair_temperature"),
        temperature=options.get("temperature"),
        max_call_tokens=options.get("max_tokens"),
    )


__all__ = [
    "AGENT_KINDS",
    "DEFAULT_FRAMING",
    "Flow",
    "FlowBuild",
    "FlowSettings",
    "FlowType",
    "Judge",
    "RunContext",
    "StudentView",
    "Task",
    "WorkItem",
    "agent_class",
    "build_agent",
    "category_view",
    "draw_slots",
    "draw_view",
    "episode_settings",
    "key_classes",
    "make_agent",
    "material_data",
    "model_free",
    "presented_key",
    "skill_view",
    "slot_keys",
    "slot_labels",
    "task_id",
    "task_stream",
    "task_type",
    "templates_of",
    "unit_key",
    "validate_settings",
]
