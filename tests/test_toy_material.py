"""A material type of the test's own (a table of rows) runs through every flow.

Issue 9, point 1: generic flows know a material only through its small interface (kind,
title, render), so a new material needs a class and a transformer agent whose output's
``material()`` returns it; no flow code changes. The taxonomy below names the agent as
``test_toy_material:TableBuilder`` (this module is importable: tests/ is on the path).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genteach import Pipeline, RunSettings, ScriptedModel, read_records
from genteach.agents import Agent, TransformInput
from genteach.material import Editable, Material
from genteach.models.base import Message
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from genteach.taxonomy import Taxonomy
from scripted_teacher import Teacher

COLUMNS = ["crossing", "opened", "toll"]
ROWS = [["harbour tunnel", "2023", "4 pounds"], ["old ferry", "1961", "2 pounds"]]


class Table(BaseModel):
    """The toy material: a titled table, rendered as pipe-separated lines."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["table"] = "table"
    title: str = ""
    columns: list[str]
    rows: list[list[str]]

    def render(self, prompts: PromptLibrary, audience: str) -> str:
        lines = [" | ".join(self.columns), *(" | ".join(r) for r in self.rows)]
        return "\n".join(lines)


class TableAnswer(BaseModel):
    """The table builder's answer."""

    title: str = Field(description="a short title")
    columns: list[str] = Field(min_length=2, description="the column names")
    rows: list[list[str]] = Field(min_length=1, description="the rows, one value per column")

    def material(self) -> Material:
        return Table(title=self.title, columns=self.columns, rows=self.rows)


class TableBuilder(Agent[TransformInput, TableAnswer]):
    """A transformer that turns a seed into a table."""

    input_model = TransformInput
    output_model = TableAnswer
    default_system_template = "toy/table_system.j2"
    default_user_template = "toy/table_user.j2"


class TableTeacher(Teacher):
    """The scripted teacher, answering the table builder with a table."""

    def transform(self, messages: Sequence[Message]) -> str:
        assert "<<<SEED\nFerries and tunnels" in messages[1]["content"]
        return json.dumps({"title": "Crossings", "columns": COLUMNS, "rows": ROWS})


TAXONOMY: dict[str, Any] = {
    "name": "toy",
    "skills": {
        "tables": {
            "name": "Reading Tables",
            "status": "ready",
            "seed_kinds": ["text"],
            "transformers": [
                {"id": "table", "name": "Table Builder", "agent": "test_toy_material:TableBuilder"}
            ],
            "task_types": [
                {"id": "lookup", "name": "Cell Lookup", "key": ["exact"]},
                {"id": "pick", "name": "Row Pick", "key": ["choice"]},
            ],
            "refinement_goals": [
                {
                    "id": "unanswerable",
                    "name": "Remove the cell",
                    "edits": "material",
                    "key": "unanswerable",
                },
                {"id": "complexify", "name": "Harder", "edits": "task"},
            ],
            "pipeline": [
                {"flow": "content_transformation"},
                {"flow": "seed_instruction", "task_types_per_seed": 2, "tasks_per_type": 2},
                {"flow": "refinement", "rounds": 1, "suggestions": 2},
                {"flow": "response"},
            ],
        }
    },
}


def toy_prompts(tmp_path: Path) -> PromptLibrary:
    files = {
        "toy/table_system.j2": (
            'You are a content transformation agent for the skill "{{ skill.name }}": you turn '
            "a seed into a table.\n{% include category.guidance %}\n"
            "Reply with one JSON object of this shape:\n{{ output_shape }}"
        ),
        "toy/table_user.j2": "<<<SEED\n{{ seed.text }}\nSEED>>>",
        "tables/transformers/table.j2": "One row per crossing the seed names.",
        "tables/task_types/lookup.j2": "Ask for one cell of the table.",
        "tables/task_types/pick.j2": "Ask which row fits a description.",
    }
    for name, text in files.items():
        path = tmp_path / "prompts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return PromptLibrary([tmp_path / "prompts"])


def test_a_toy_material_runs_through_every_flow(tmp_path: Path) -> None:
    teacher = TableTeacher()
    pipe = Pipeline(
        ScriptedModel(teacher, name="scripted-teacher"),
        taxonomy=Taxonomy.model_validate(TAXONOMY),
        prompts=toy_prompts(tmp_path),
        settings=RunSettings(seed=5),
    )
    seed = Seed.from_text("Ferries and tunnels cross the Lowmarsh estuary. " * 5)
    summary = pipe.run([seed], tmp_path / "out")
    assert summary.rejects == 0, (tmp_path / "out" / "rejects.jsonl").read_text()
    assert teacher.calls["transform"] == 1
    table = Table(title="Crossings", columns=COLUMNS, rows=ROWS)
    assert isinstance(table, Material) and not isinstance(table, Editable)
    rendered = table.render(pipe.prompts, "student")
    assert rendered == (
        "crossing | opened | toll\nharbour tunnel | 2023 | 4 pounds\nold ferry | 1961 | 2 pounds"
    )

    # the agents that write and refine tasks read the table's rendering
    client = pipe.client
    assert isinstance(client, ScriptedModel)
    instruct = [c for c in client.calls if "task-writing agent" in c[0]["content"]]
    assert len(instruct) == 2
    assert all(f"<<<PASSAGE\n{rendered}\nPASSAGE>>>" in c[1]["content"] for c in instruct)
    assert all(c[1]["content"].startswith("Passage title: Crossings\n") for c in instruct)
    edits = [c for c in client.calls if "You are the editor" in c[0]["content"]]
    assert edits and all(f"<<<PASSAGE\n{rendered}\nPASSAGE>>>" in c[1]["content"] for c in edits)

    records = read_records(tmp_path / "out" / "records.jsonl")
    originals = [r for r in records if r.meta.refinement_round == 0]
    refined = [r for r in records if r.meta.refinement_round == 1]
    assert len(originals) == 4 and len(refined) == 4 * 2
    for r in records:
        assert r.meta.transformer == "table"
        assert r.meta.agents[0] == "transform/table"
        user = r.messages[0]["content"]
        assert user.endswith("\n\n" + rendered), "the student sees the table, as rendered"
        assert r.meta.key is not None and r.meta.key["kind"] in {"exact", "choice"}
        assert r.meta.verification is not None
        assert r.meta.verification.status == "passed", r.meta.verification
    # the table is not editable: refinement drew only the goal that changes the task
    assert {r.meta.refinement_goal for r in refined} == {"complexify"}
    assert {r.meta.sub_category for r in records} == {"lookup", "pick"}
    assert summary.verified == {"tables": {"passed": 12}}
