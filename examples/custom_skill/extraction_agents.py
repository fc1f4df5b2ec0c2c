"""A custom material and a custom answer-key kind for the text-extraction example.

``Table`` is a material: a table built from the seed's facts by the ``TableBuilder``
transformer (``agent: extraction_agents:TableBuilder`` in the taxonomy). Generic flows know
it only by its ``kind``, ``title`` and ``render()``.

``TableKey`` is a key kind: the taxonomy names it (``keys: [extraction_agents:TableKey]``)
and a task type allows it (``key: [json_table]``). Its fields are what the instruction
agent writes (they also make the prompt's shape and the JSON schema), its validators
refuse a malformed key (sent back to the model for repair like any malformed answer), and
``compare`` checks the teacher's final answer against it. Its rules for the agents live in
``prompts/keys/json_table.j2``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from genteach.agents import Agent, TransformInput
from genteach.keys import AnswerKey, Layout, Verification, normalize
from genteach.material import Audience
from genteach.prompts import PromptLibrary

Cell = str | int | float | bool | None


class Table(BaseModel):
    """A material: a titled table of facts, rendered as Markdown for agents and students."""

    title: str = Field(description="a short, specific title")
    columns: list[str] = Field(min_length=2, max_length=8, description="the column names")
    rows: list[list[Cell]] = Field(
        min_length=3, max_length=30, description="the rows, one value per column, null if unknown"
    )
    kind: ClassVar[str] = "table"

    @model_validator(mode="after")
    def _width(self) -> Table:
        if any(len(r) != len(self.columns) for r in self.rows):
            raise ValueError(f"every row needs {len(self.columns)} values, one per column")
        return self

    def material(self) -> Table:
        return self

    def render(self, prompts: PromptLibrary, audience: Audience) -> str:
        lines = [" | ".join(self.columns), " | ".join("---" for _ in self.columns)]
        lines += [" | ".join("" if v is None else str(v) for v in row) for row in self.rows]
        return "\n".join(lines)


class TableBuilder(Agent[TransformInput, Table]):
    """A transformer that turns the seed's facts into a table (its prompts in prompts/)."""

    input_model = TransformInput
    output_model = Table
    default_system_template = "text_extraction/table_system.j2"
    default_user_template = "common/transform_user.j2"


class TableKey(AnswerKey):
    """The exact JSON array of objects an extraction task must produce."""

    kind: Literal["json_table"] = "json_table"
    rows: list[dict[str, Cell]] = Field(
        min_length=1, description="the expected rows, one object per entity, in passage order"
    )
    form: ClassVar[str] = "short"

    @field_validator("rows")
    @classmethod
    def _same_fields(cls, rows: list[dict[str, Cell]]) -> list[dict[str, Cell]]:
        fields = {tuple(sorted(r)) for r in rows}
        if len(fields) != 1 or not next(iter(fields)):
            raise ValueError("every row must have the same, non-empty set of fields")
        return rows

    def summary(self, layout: Layout) -> str:
        return f"{len(self.rows)} rows with fields {', '.join(sorted(self.rows[0]))}"

    def compare(self, answer: str, layout: Layout) -> Verification:
        try:
            rows = json.loads(answer.strip().strip("`").removeprefix("json"))
        except json.JSONDecodeError:
            rows = None
        if rows is not None and _canonical(rows) == _canonical(self.rows):
            return self.result("passed", answer, self.summary(layout))
        return self.result("failed", answer, f"the table differs: {self.summary(layout)}")


def _canonical(rows: Any) -> Any:
    if not isinstance(rows, list):
        return None
    return [
        {k: normalize(v) if isinstance(v, str) else v for k, v in sorted(r.items())}
        if isinstance(r, dict) else None
        for r in rows
    ]  # fmt: skip
