"""Refinement agents: a suggester proposes one change per goal drawn in code (make the
task harder, unanswerable, or flip its answer); an editor carries each change out.

The editor's answer is checked by code before it becomes a task: a goal that edits the
material must come with find/replace spans that each occur exactly once and change the
text (the material is edited here, never silently kept); a goal that edits the task must
change the instruction or the key; the new key must be of an allowed kind, differ from
the old one when the answer is to flip, and be "unanswerable" when the task is to become
so.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from genteach.agents.base import Agent, list_bounded
from genteach.agents.instruct import key_shapes, key_templates, refers_to_material
from genteach.agents.parsing import ParseError, shares_words
from genteach.agents.views import CategoryView, GoalView, SkillView
from genteach.keys import AnswerKey, KeyKinds, UnanswerableKey, kind_of
from genteach.material import Editable, EditSpan, Material


class TaskView(BaseModel):
    """A task as the refinement agents see it: its material (as text), the instruction,
    the question as the student sees it (``question``: the key's view, options labelled),
    and the key (its JSON)."""

    material_text: str
    instruction: str
    question: dict[str, Any] = Field(default_factory=dict)
    key: dict[str, Any] = Field(default_factory=dict)


class SuggestInput(BaseModel):
    """What the suggester sees: the task, its task type, and one goal per suggestion to
    write (drawn in code)."""

    skill: SkillView
    category: CategoryView
    task: TaskView
    goals: list[GoalView] = Field(min_length=1, max_length=6)


#: A suggestion as decoding holds a model to it: a sentence, not a stray brace or marker,
#: of 30 characters at least (the parser asks for six words, with a clearer message).
Suggestion = Annotated[str, Field(json_schema_extra={"pattern": r"^[^\s{\[<][\s\S]{29,}$"})]


class Suggestions(BaseModel):
    """The suggester's answer: one suggestion per goal, in the goals' order."""

    model_config = ConfigDict(extra="forbid")
    suggestions: list[Suggestion] = Field(
        min_length=1,
        max_length=6,
        description="one suggestion per goal, in order: what to change in this task and how, "
        "naming the exact sentence, figure, claim or option",
    )


class Suggester(Agent[SuggestInput, Suggestions]):
    """Proposes one concrete change per assigned goal."""

    input_model = SuggestInput
    output_model = Suggestions
    default_system_template = "common/suggest_system.j2"
    default_user_template = "common/suggest_user.j2"

    def response_model(self, inputs: SuggestInput) -> type[BaseModel]:
        n = len(inputs.goals)
        return list_bounded(self.output_model, "suggestions", n, n)

    def parse(self, text: str, inputs: SuggestInput | None = None) -> Suggestions:
        out = super().parse(text, inputs)
        if inputs is not None:
            n = len(inputs.goals)
            if len(out.suggestions) != n:
                raise ParseError(
                    f"{len(out.suggestions)} suggestions for {n} goals: write exactly one "
                    "per goal, in order"
                )
            for i, (s, goal) in enumerate(zip(out.suggestions, inputs.goals, strict=True), 1):
                if len(s.split()) < 6:
                    raise ParseError(f"suggestion {i} is too short to act on: say what to change")
                if shares_words(s, goal.description, 8):
                    raise ParseError(
                        f"suggestion {i} repeats the goal's description: say what to change in "
                        "this task"
                    )
        return out


class EditInput(BaseModel):
    """What the editor sees: the task, and the suggestions to apply with their goals."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    skill: SkillView
    category: CategoryView
    task: TaskView
    goals: list[GoalView]
    suggestions: list[str]
    kinds: list[str] = Field(description="the key kinds allowed for this task type")
    material: Any = None
    key: Any = None


class Edit(BaseModel):
    """One revised task. Which fields are required depends on the suggestion's goal."""

    model_config = ConfigDict(extra="forbid")
    suggestion: int = Field(ge=1, description="the number of the suggestion this edit applies")
    edits: list[EditSpan] | None = Field(
        default=None,
        description="for goals that edit the passage: the find/replace edits, each find an "
        "exact excerpt that occurs once; else null",
    )
    instruction: str | None = Field(
        default=None,
        description="for goals that change the task: the complete new instruction; else null",
    )
    key: AnswerKey | None = None
    missing: str | None = Field(
        default=None,
        description="for the unanswerable goal: the information the passage no longer gives; "
        "else null",
    )


class Revision(BaseModel):
    """A task after one edit, checked: its material, instruction and key."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    suggestion: int
    material: Any
    instruction: str
    key: AnswerKey


class Revisions(BaseModel):
    """The editor's parsed answer: one revision per suggestion, in order."""

    revisions: list[Revision]


class Editor(Agent[EditInput, Revisions]):
    """Rewrites a task once per suggestion and checks each revision (see the module).

    Args (besides :class:`~genteach.agents.Agent`'s):
        key_kinds: the key kinds of the skill (the union the editor may answer with);
            each task allows only its own type's kinds (``EditInput.kinds``).
    """

    input_model = EditInput
    output_model: type[BaseModel] = BaseModel
    default_system_template = "common/edit_system.j2"
    default_user_template = "common/edit_user.j2"
    edit_model: ClassVar[type[Edit]] = Edit

    def __init__(self, name: str, *, key_kinds: Sequence[type[AnswerKey]] = (), **kwargs: Any):
        super().__init__(name, **kwargs)
        self.kinds = KeyKinds(key_kinds)
        classes = list(key_kinds) or [self.kinds.get("free_text")]
        self.key_classes = classes
        key_type: Any = (
            classes[0]
            if len(classes) == 1
            else Annotated[Union[tuple(classes)], Field(discriminator="kind")]  # noqa: UP007
        )
        edit = create_model(
            f"{self.edit_model.__name__}_{self.name.replace('/', '_')}",
            __base__=self.edit_model,
            key=(key_type | None, Field(default=None, description="the new answer key, or null")),
        )
        self.output_model = create_model(
            "Edits",
            __config__=ConfigDict(extra="forbid"),
            edits=(list[edit], Field(min_length=1, max_length=6)),  # type: ignore[valid-type]
        )
        self._edit = edit

    def response_model(self, inputs: EditInput) -> type[BaseModel]:
        """Exactly one edit per suggestion, each with the fields its goal asks for
        (:func:`goal_edits`)."""
        goals = tuple((g.edits, g.key) for g in inputs.goals)
        return goal_edits(self.decoding_edit(inputs), goals)

    def decoding_edit(self, inputs: EditInput) -> type[Edit]:
        """The edit model that :meth:`response_model` narrows per goal (a subclass can
        narrow it first, to the APIs of a list for example)."""
        return self._edit

    def variables(self, inputs: EditInput) -> dict[str, Any]:
        kinds = [self.kinds.get(k) for k in inputs.kinds]
        return {**super().variables(inputs), "key_kinds": key_shapes(kinds)}

    def shape_overrides(self) -> dict[str, str]:
        return {"key": "<the new answer key, of one of the kinds listed above, or null>"}

    def templates(self) -> list[str]:
        """The templates this agent renders, the key rules it includes by kind too."""
        return [self.system_template, self.user_template, *key_templates(self.key_classes)]

    def parse(self, text: str, inputs: EditInput | None = None) -> Revisions:
        edits: list[Edit] = super().parse(text, inputs).edits  # type: ignore[attr-defined]
        numbers = [e.suggestion for e in edits]
        if len(set(numbers)) != len(numbers):
            raise ParseError(f"two edits answer the same suggestion ({sorted(numbers)})")
        if inputs is None:
            return Revisions(revisions=[])
        n = len(inputs.suggestions)
        if max(numbers) > n:
            raise ParseError(f"an edit answers suggestion {max(numbers)}, but there are {n}")
        if len(numbers) != n:
            raise ParseError(f"{len(numbers)} edits for {n} suggestions: write one each")
        by_number = {e.suggestion: e for e in edits}
        return Revisions(
            revisions=[
                self.revise(i, by_number[i], inputs.goals[i - 1], inputs) for i in range(1, n + 1)
            ]
        )

    def revise(self, i: int, edit: Edit, goal: GoalView, inputs: EditInput) -> Revision:
        """Check one edit against its goal and build the revised task. Raises ParseError."""
        old_key: AnswerKey = inputs.key
        material: Material = inputs.material
        where = f"edit {i} ({goal.id})"
        if goal.edits == "material":
            if not edit.edits:
                raise ParseError(
                    f"{where}: this goal edits the passage: give the find/replace edits that make "
                    "the change (the instruction stays as it is)"
                )
            if not isinstance(material, Editable):
                raise ParseError(f"{where}: this material cannot be edited")
            try:
                material = material.apply_edits(edit.edits)
            except ParseError as exc:
                raise ParseError(f"{where}: {exc.reason}") from exc
            instruction = inputs.task.instruction
        else:
            if edit.edits:
                raise ParseError(
                    f"{where}: this goal changes the task, not the passage: set edits to null"
                )
            instruction = (edit.instruction or "").strip() or inputs.task.instruction
            if len(instruction) < 10:
                raise ParseError(f"{where}: the instruction is too short")
        key = self._new_key(where, edit, goal, inputs, old_key)
        if goal.edits == "task" and instruction == inputs.task.instruction and key == old_key:
            raise ParseError(
                f"{where}: nothing changed: change the instruction, its options or constraints "
                "as the suggestion says"
            )
        material = self.revise_material(where, edit, material, inputs)
        problem = key.fit_task(instruction, getattr(material, "text", None)) or key.fit_material(
            material
        )
        if problem:
            raise ParseError(f"{where}: {problem}")
        return Revision(suggestion=i, material=material, instruction=instruction, key=key)

    def _new_key(
        self, where: str, edit: Edit, goal: GoalView, inputs: EditInput, old: AnswerKey
    ) -> AnswerKey:
        if goal.key == "unanswerable":
            if not edit.missing or len(edit.missing.strip()) < 5:
                raise ParseError(
                    f'{where}: name the information the passage no longer gives in "missing"'
                )
            shown = old.shown if isinstance(old, UnanswerableKey) else old.model_dump()
            return UnanswerableKey(missing=edit.missing.strip(), shown=shown)
        key = edit.key if edit.key is not None else old
        if kind_of(type(key)) not in inputs.kinds and not isinstance(key, UnanswerableKey):
            raise ParseError(
                f"{where}: key kind {key.kind!r} is not allowed for this task type "
                f"(kinds: {', '.join(inputs.kinds)})"
            )
        if goal.key == "changed":
            if edit.key is None:
                raise ParseError(f"{where}: the answer must change: give the new key")
            if type(key) is not type(old) and not isinstance(old, UnanswerableKey):
                raise ParseError(f"{where}: keep the key's kind ({old.kind}) and change its answer")
            if key.same_answer(old):
                raise ParseError(
                    f"{where}: the new key gives the same answer as before: the edit must change "
                    "the correct answer"
                )
        return key

    def revise_material(
        self, where: str, edit: Edit, material: Material, inputs: EditInput
    ) -> Material:
        """Material changes an edit carries besides find/replace spans (none by default)."""
        return material


@functools.lru_cache(maxsize=256)
def goal_edits(edit: type[Edit], goals: tuple[tuple[str, str], ...]) -> type[BaseModel]:
    """The decoding schema of one ``edit`` per goal (``(edits, key)`` of each, in order).

    Edit ``i`` numbers suggestion ``i`` and has the fields its goal asks for, the others
    null: find/replace ``edits`` for a goal that edits the passage (then no
    ``instruction``), none for one that changes the task; ``missing`` (and no key) for the
    unanswerable goal; a key for a goal whose answer must change. A constrained model then
    cannot answer a task goal with passage edits, the commonest miss of a 1.5B model.
    """
    info = edit.model_fields
    key_type = _not_none(info["key"].annotation)
    variants = []
    for i, (edits, key) in enumerate(goals, 1):
        fields: dict[str, Any] = {
            "suggestion": (Literal[i], Field(description=info["suggestion"].description)),
        }
        if edits == "material":
            spans = Field(min_length=1, description=info["edits"].description)
            fields["edits"] = (list[EditSpan], spans)
            fields["instruction"] = (None, None)
        else:
            fields["edits"] = (None, None)
        if key == "unanswerable":
            fields["missing"] = (str, Field(min_length=5, description=info["missing"].description))
            fields["key"] = (None, None)
        else:
            fields["missing"] = (None, None)
            if key == "changed":
                fields["key"] = (key_type, Field(description=info["key"].description))
        variants.append(
            create_model(f"{edit.__name__}_goal{i}_{edits}_{key}", __base__=edit, **fields)
        )
    item: Any = variants[0] if len(variants) == 1 else Union[tuple(variants)]  # noqa: UP007
    n = len(goals)
    return create_model(
        f"Edits_{n}",
        __config__=ConfigDict(extra="forbid"),
        edits=(list[item], Field(min_length=n, max_length=n)),
    )


def _not_none(annotation: Any) -> Any:
    """``annotation`` without its ``None`` alternative (``X | None`` gives ``X``)."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
    return annotation


class ClosedBookEditor(Editor):
    """The editor of closed-book skills: a revised instruction must not refer to the
    passage the student never sees (see :class:`~genteach.agents.ClosedBookTaskAgent`)."""

    def revise(self, i: int, edit: Edit, goal: GoalView, inputs: EditInput) -> Revision:
        revision = super().revise(i, edit, goal, inputs)
        found = refers_to_material(revision.instruction)
        if found:
            raise ParseError(
                f'edit {i} ({goal.id}): the instruction refers to "{found}", which the student '
                "never sees: write everything the question needs into the question itself"
            )
        return revision


__all__ = [
    "ClosedBookEditor",
    "Edit",
    "EditInput",
    "Editor",
    "Revision",
    "Revisions",
    "SuggestInput",
    "Suggester",
    "Suggestions",
    "TaskView",
]
