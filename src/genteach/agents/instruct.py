"""Seed-instruction agents: write tasks of one type about a material, each with a typed
answer key.

One agent per task type (a reading-comprehension question type, a text-modification task
type, a tool-use task family), configured from the taxonomy with the guidance template
that defines the type and the key kinds it allows. The agent's output model is built
from those kinds, so the prompt's format section, the JSON schema for constrained
decoding and the parser all come from one place.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import SkipJsonSchema

from genteach.agents.base import Agent, AgentResult, AgentSkipped, list_bounded
from genteach.agents.parsing import ParseError
from genteach.agents.shapes import json_shape
from genteach.agents.views import CategoryView, SkillView
from genteach.keys import BUILTIN_KEYS, AnswerKey, ChoiceKey, KeyKinds, kind_of
from genteach.material import Material, Passage
from genteach.models.base import ModelClient

#: What the instruction agents see of the key kinds: the shape of each kind's JSON.
KEY_PLACEHOLDER = "<the answer key: an object of one of the key kinds listed above>"


class InstructInput(BaseModel):
    """What an instruction agent sees.

    ``material`` is the material object (parsers check answers against it) and
    ``material_text`` its rendering for agents; ``slots`` holds, per task to write, the
    values drawn in code that the task must use (a target language, an audience, a
    question stem...), and ``slot_labels`` how the prompt names each of them.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    skill: SkillView
    category: CategoryView
    material: Any
    material_text: str
    count: int = Field(ge=1, le=10)
    slots: list[dict[str, str]] = Field(default_factory=list)
    slot_labels: dict[str, str] = Field(default_factory=dict)
    #: Per slot name, per value: fields the task's key must have when that value is drawn
    #: for it (a ``vary`` list's ``key``).
    slot_keys: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)


class TaskDraft(BaseModel):
    """One task as an instruction agent writes it. Subclasses add fields that build the
    task's own material (an excerpt, the APIs withheld from the assistant)."""

    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(
        min_length=10,
        description="the complete instruction the student reads; options, items or "
        "statements to judge go in the key, not here",
    )
    key: AnswerKey

    def material(self, base: Material) -> Material:
        """The material this task works on (default: the unit's material)."""
        return base


class ExcerptDraft(TaskDraft):
    """A task that works on its own excerpt of the passage (text modification). The
    excerpt is named first, by its first and last words (``start``, ``end``), and code cuts
    it from the passage (``text``): a model never copies a long excerpt, which costs
    tokens and, copied by a small model, rarely stays verbatim."""

    shape_first: ClassVar[tuple[str, ...]] = ("start", "end")

    start: str = Field(
        min_length=10,
        description="the first 6 to 12 words of the excerpt, copied exactly from the passage",
    )
    end: str = Field(
        min_length=10,
        description="the last 6 to 12 words of the excerpt, copied exactly from the passage",
    )
    # Set by code (never asked of a model): the excerpt, cut from the passage.
    text: SkipJsonSchema[str] = ""

    def material(self, base: Material) -> Material:
        return Passage(title="", text=self.text)


def draft_models(
    draft: type[TaskDraft], kinds: Sequence[type[AnswerKey]]
) -> tuple[type[TaskDraft], type[BaseModel]]:
    """A draft model whose ``key`` is one of ``kinds`` (discriminated by ``kind``), and
    the batch model ``{"tasks": [draft, ...]}`` of an instruction agent's answer."""
    if not kinds:
        raise ValueError("an instruction agent needs at least one key kind")
    names = "_".join(kind_of(k) for k in kinds)
    key_type: Any = (
        kinds[0] if len(kinds) == 1 else Annotated[Union[tuple(kinds)], Field(discriminator="kind")]  # noqa: UP007
    )
    typed = create_model(f"{draft.__name__}_{names}", __base__=draft, key=(key_type, ...))
    batch = create_model(
        f"TaskBatch_{names}",
        __config__=ConfigDict(extra="forbid"),
        tasks=(list[typed], Field(min_length=1, max_length=10)),  # type: ignore[valid-type]
    )
    return typed, batch


class SeedInstructionAgent(Agent[InstructInput, BaseModel]):
    """Writes ``count`` tasks of its type about a material, each with an answer key of
    one of the type's kinds (``key_kinds``).

    Args (besides :class:`~genteach.agents.Agent`'s):
        key_kinds: the key classes this task type allows (the taxonomy's ``key:``).
    """

    input_model = InstructInput
    output_model: type[BaseModel] = BaseModel
    default_system_template = "common/instruct_system.j2"
    default_user_template = "common/instruct_user.j2"
    draft_model: ClassVar[type[TaskDraft]] = TaskDraft
    #: Built with the task type's key kinds (``key_kinds``).
    keyed: ClassVar[bool] = True

    def __init__(self, name: str, *, key_kinds: Sequence[type[AnswerKey]] = (), **kwargs: Any):
        super().__init__(name, **kwargs)
        self.key_kinds = list(key_kinds) or [KeyKinds().get("free_text")]
        self.typed_draft, self.output_model = draft_models(self.draft_model, self.key_kinds)

    def variables(self, inputs: InstructInput) -> dict[str, Any]:
        return {**super().variables(inputs), "key_kinds": key_shapes(self.key_kinds)}

    def templates(self) -> list[str]:
        """The templates this agent renders, the key rules it includes by kind too."""
        return [self.system_template, self.user_template, *key_templates(self.key_kinds)]

    def shape_overrides(self) -> dict[str, str]:
        return {"key": KEY_PLACEHOLDER}

    def response_model(self, inputs: InstructInput) -> type[BaseModel]:
        return list_bounded(self.output_model, "tasks", 1, inputs.count)

    def parse(self, text: str, inputs: InstructInput | None = None) -> BaseModel:
        batch = super().parse(text, inputs)
        tasks: list[TaskDraft] = batch.tasks  # type: ignore[attr-defined]
        if inputs is not None:
            del tasks[inputs.count :]
        for i, task in enumerate(tasks, 1):
            self.check_task(i, task, inputs)
            problem = task.key.fit_task(task.instruction, self.task_source(task, inputs))
            if not problem and inputs is not None:
                problem = task.key.fit_material(task.material(inputs.material))
            if problem:
                raise ParseError(f"task {i}: {problem}")
        return batch

    def task_source(self, task: TaskDraft, inputs: InstructInput | None) -> str | None:
        """The text a task works on, for its key's :meth:`~genteach.keys.AnswerKey.fit_task`
        (default: the material as the agent saw it)."""
        return inputs.material_text if inputs is not None else None

    def check_task(self, i: int, task: TaskDraft, inputs: InstructInput | None) -> None:
        """Checks of one task beyond its schema; raise ParseError with the reason."""
        if inputs is not None:
            for label in inputs.slot_labels.values():
                if f"{label.lower()}:" in task.instruction.lower():
                    raise ParseError(
                        f"task {i}: the instruction copies the line of values given for it "
                        f'("{label}: ..."): write the task itself, using those values'
                    )
            self.check_slot_keys(i, task, inputs)
        if isinstance(task.key, ChoiceKey) or task.key.form in ("items", "matching", "labels"):
            labelled = re.findall(r"(?:^|\s)\(?[A-Ha-h][).]\s+\S", task.instruction)
            if len(labelled) >= 2:
                raise ParseError(
                    f"task {i}: the instruction lists labelled options or items; write them "
                    "only in the key (they are shuffled and labelled when shown)"
                )

    def check_slot_keys(self, i: int, task: TaskDraft, inputs: InstructInput) -> None:
        """Task ``i``'s key has the fields its drawn values require (``slot_keys``); a key
        kind without such a field is not held to it. Raises ParseError."""
        drawn = inputs.slots[i - 1] if i <= len(inputs.slots) else {}
        for name, value in drawn.items():
            for field, want in inputs.slot_keys.get(name, {}).get(value, {}).items():
                have = getattr(task.key, field, want)
                if have != want:
                    label = inputs.slot_labels.get(name, name)
                    raise ParseError(
                        f'task {i}: its {label} is "{value}", so its key\'s "{field}" must be '
                        f"{json.dumps(want)}, not {json.dumps(have)}: write the task in that form"
                    )


class ExcerptTaskAgent(SeedInstructionAgent):
    """An instruction agent whose tasks each quote their own excerpt of the passage: a
    verbatim run of ``min_excerpt_words`` to ``max_excerpt_words`` words (text
    modification). The excerpt is re-cut from the passage itself, so whitespace the model
    changed cannot alter it."""

    draft_model = ExcerptDraft
    min_excerpt_words: ClassVar[int] = 40
    max_excerpt_words: ClassVar[int] = 250

    async def run(
        self, client: ModelClient, inputs: InstructInput, *, seed: int | None = None
    ) -> AgentResult[BaseModel]:
        """As :meth:`Agent.run`, but a passage too short for one excerpt is declined at once
        (:class:`AgentSkipped`), without a model call."""
        words = len(inputs.material_text.split())
        if words < self.min_excerpt_words:
            raise AgentSkipped(
                self.name,
                f"skipped: the passage has {words} words, fewer than one excerpt needs "
                f"({self.min_excerpt_words})",
            )
        return await super().run(client, inputs, seed=seed)

    def response_model(self, inputs: InstructInput) -> type[BaseModel]:
        """The tasks' ``start`` and ``end`` held to the openings and closings of the
        passage's sentences and lines (:func:`excerpt_bounds`), so that constrained decoding
        can only name words the passage has. Without such decoding the parser checks the
        same (any verbatim words pass it)."""
        starts, ends = excerpt_bounds(inputs.material_text)
        if not starts or not ends:
            return super().response_model(inputs)
        return _excerpt_batch(self.output_model, starts, ends, inputs.count)

    def check_task(self, i: int, task: TaskDraft, inputs: InstructInput | None) -> None:
        super().check_task(i, task, inputs)
        assert isinstance(task, ExcerptDraft)
        if inputs is None:
            return
        task.text = self.cut_excerpt(i, inputs.material_text, task.start, task.end)

    def cut_excerpt(self, i: int, source: str, start: str, end: str) -> str:
        """The excerpt of ``source`` from the words ``start`` to the words ``end`` (the first
        occurrence of each, ``end`` after ``start``), within the word bounds. Raises
        ParseError."""
        # quotes, ellipses and input markers around the words are not part of them (a
        # closing full stop is)
        start = start.strip(_AROUND_WORDS + ".").removesuffix("...").strip()
        end = end.strip(_AROUND_WORDS).removesuffix("...").removeprefix("...").strip()
        first = find_verbatim(source, start)
        if first is None:
            raise ParseError(
                f'task {i}: "start" is not a verbatim part of the passage; copy the first words '
                "of the excerpt exactly (same words and punctuation)"
            )
        # the first occurrence of ``end`` after ``start`` that closes a long enough excerpt
        ends = [first[1] + e for _, e in find_all_verbatim(source[first[1] :], end)]
        if not ends:
            raise ParseError(
                f'task {i}: "end" is not a verbatim part of the passage after "start"; copy the '
                "last words of the excerpt exactly"
            )
        cuts = [source[first[0] : e] for e in ends]
        text = next((c for c in cuts if len(c.split()) >= self.min_excerpt_words), cuts[-1])
        words = len(text.split())
        if not self.min_excerpt_words <= words <= self.max_excerpt_words:
            raise ParseError(
                f"task {i}: the excerpt from start to end has {words} words; choose one of "
                f"{self.min_excerpt_words} to {self.max_excerpt_words} words"
            )
        return text

    def task_source(self, task: TaskDraft, inputs: InstructInput | None) -> str | None:
        assert isinstance(task, ExcerptDraft)
        return task.text


#: Words of a sentence's opening or closing offered as an excerpt's ``start`` or ``end``.
EXCERPT_BOUND_WORDS = 8

#: Passages with more sentences than this are not narrowed: the schema would be huge, and
#: OpenAI's structured output limits an enum of over 250 values to 15,000 characters.
_MAX_EXCERPT_BOUNDS = 250


def excerpt_bounds(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The first and the last :data:`EXCERPT_BOUND_WORDS` words of each sentence and line of
    ``text`` with 3 words or more (a shorter one whole), without repeats: the ``start`` and
    ``end`` an excerpt may take, for constrained decoding. Empty when ``text`` has none or
    too many. Pure."""
    starts: dict[str, None] = {}
    ends: dict[str, None] = {}
    for piece in re.split(r"(?<=[.!?])\s+|\n+", text):
        words = piece.split()
        if len(words) < 3:
            continue
        start = " ".join(words[:EXCERPT_BOUND_WORDS])
        end = " ".join(words[-EXCERPT_BOUND_WORDS:])
        # the fields' own minimum length (10 characters)
        if len(start) >= 10 and len(end) >= 10:
            starts[start] = None
            ends[end] = None
    if len(starts) > _MAX_EXCERPT_BOUNDS:
        return (), ()
    return tuple(starts), tuple(ends)


@functools.lru_cache(maxsize=64)
def _excerpt_batch(
    batch: type[BaseModel], starts: tuple[str, ...], ends: tuple[str, ...], count: int
) -> type[BaseModel]:
    """The decoding schema of ``batch`` (a task batch of excerpt drafts): at most ``count``
    tasks whose ``start`` is one of ``starts`` and ``end`` one of ``ends``, their fields in
    the order the prompt shows them (``shape_first``), so that the excerpt is chosen before
    the instruction is written. For decoding only: the parser validates against ``batch``."""
    tasks = batch.model_fields["tasks"]
    draft = tasks.annotation.__args__[0]  # type: ignore[union-attr]
    fields = draft.model_fields
    first = draft.shape_first
    spec: dict[str, Any] = {
        n: (fields[n].annotation, fields[n])
        for n in [*first, *(n for n in fields if n not in first)]
    }
    spec["start"] = (Literal[starts], Field(description=fields["start"].description))
    spec["end"] = (Literal[ends], Field(description=fields["end"].description))
    narrowed = create_model(f"{draft.__name__}_bounded", __config__=draft.model_config, **spec)
    return create_model(
        f"{batch.__name__}_bounded",
        __config__=batch.model_config,
        tasks=(
            list[narrowed],  # type: ignore[valid-type]
            Field(min_length=1, max_length=count, description=tasks.description),
        ),
    )


#: What a model may put around the words it quotes: quotes, ellipses, input markers.
_AROUND_WORDS = " \t\n\"'“”‘’«»<>…"

#: Words by which a task leans on a text its reader never sees (closed-book skills).
_MATERIAL_REFERENCE = re.compile(
    r"\b(?:the|this|that|above|given|following|preceding|provided) (?:passage|text|article|"
    r"excerpt|document|material|reading|extract|source|author|writer)s?\b(?!\s+of\b)"
    r"|\baccording to the (?!question)\w+|\b(?:as )?(?:described|stated|mentioned|shown) above\b",
    re.IGNORECASE,
)


def refers_to_material(text: str) -> str | None:
    """The words by which ``text`` refers to a passage its reader does not see ("the
    passage", "according to the author", "described above"), or None. "The text of the
    treaty" and "the passage of the bill" name something else."""
    m = _MATERIAL_REFERENCE.search(text)
    return m.group(0) if m else None


class ClosedBookTaskAgent(SeedInstructionAgent):
    """An instruction agent for closed-book skills (multiple choice, open-domain QA): the
    student sees the task and never the passage it was written from, so an instruction
    that refers to the passage is sent back. The skill's student framings leave the
    material out; its task-type guidance says what to write into the task instead."""

    def check_task(self, i: int, task: TaskDraft, inputs: InstructInput | None) -> None:
        super().check_task(i, task, inputs)
        found = refers_to_material(task.instruction)
        if found:
            raise ParseError(
                f'task {i}: the instruction refers to "{found}", which the student never sees: '
                "write everything the question needs into the question itself"
            )


def key_templates(kinds: Sequence[type[AnswerKey]]) -> list[str]:
    """The rule templates of key kinds (``keys/<kind>.j2``; a kind of the user's own
    without one falls back to ``keys/_default.j2``)."""
    builtin = {kind_of(k) for k in BUILTIN_KEYS}
    return [f"keys/{kind_of(k)}.j2" for k in kinds if kind_of(k) in builtin] + ["keys/_default.j2"]


def key_shapes(kinds: Sequence[type[AnswerKey]]) -> dict[str, str]:
    """Each key kind's JSON shape (without what code sets), for prompts."""
    return {kind_of(k): json_shape(k) for k in kinds}


def find_verbatim(source: str, excerpt: str) -> tuple[int, int] | None:
    """The span of ``source`` that ``excerpt`` copies, ignoring differences in whitespace
    only; None when it is not a verbatim part."""
    return next(iter(find_all_verbatim(source, excerpt)), None)


def find_all_verbatim(source: str, excerpt: str) -> list[tuple[int, int]]:
    """Every span of ``source`` that ``excerpt`` copies (whitespace aside), in order."""
    words = excerpt.split()
    if not words:
        return []
    pattern = r"\s+".join(re.escape(w) for w in words)
    return [(m.start(), m.end()) for m in re.finditer(pattern, source)]


__all__ = [
    "KEY_PLACEHOLDER",
    "ClosedBookTaskAgent",
    "ExcerptDraft",
    "ExcerptTaskAgent",
    "InstructInput",
    "SeedInstructionAgent",
    "TaskDraft",
    "draft_models",
    "find_verbatim",
    "key_shapes",
    "key_templates",
    "refers_to_material",
]
