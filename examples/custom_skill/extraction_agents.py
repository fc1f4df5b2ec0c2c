"""A custom answer-key kind for the text-extraction example: a JSON table, checked by code.

The taxonomy names it (``keys: [extraction_agents:TableKey]``) and a task type allows it
(``key: [json_table]``). Its fields are what the instruction agent writes (they also
make the prompt's shape and the JSON schema), its validators refuse a malformed key (sent
back to the model for repair like any malformed answer), and ``check`` compares the
teacher's final answer with it. Its rules for the agents live in
``prompts/keys/json_table.j2``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from genteach.keys import AnswerKey, Layout, Verification, final_answer, normalize

Cell = str | int | float | bool | None


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

    def check(self, response: str, layout: Layout) -> Verification:
        answer = final_answer(response)
        try:
            rows = json.loads((answer or "").strip().strip("`").removeprefix("json"))
        except json.JSONDecodeError:
            rows = None
        if rows is not None and _canonical(rows) == _canonical(self.rows):
            status, detail = "passed", self.summary(layout)
        else:
            status, detail = "failed", f"the table differs from the key: {self.summary(layout)}"
        return Verification(kind=self.kind, status=status, answer=answer, detail=detail)


def _canonical(rows: Any) -> Any:
    if not isinstance(rows, list):
        return None
    return [
        {k: normalize(v) if isinstance(v, str) else v for k, v in sorted(r.items())}
        if isinstance(r, dict) else None
        for r in rows
    ]  # fmt: skip
