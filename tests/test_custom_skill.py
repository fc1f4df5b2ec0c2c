"""The custom-skill example (examples/custom_skill): a taxonomy entry + templates, and a
subclassed agent, run end to end with a scripted teacher."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel, load_taxonomy, read_records
from genteach.cli import main
from genteach.models.base import Message
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from scripted_teacher import Teacher

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "custom_skill"
ROWS = [{"name": "Severn barrage", "year": 2010}]
FACTS = ["2010: feasibility study", "2014: second study"]
TABLE_MATERIAL = {
    "title": "Barrage studies",
    "columns": ["name", "year"],
    "rows": [["Severn barrage", 2010], ["Mersey barrage", 2014], ["Solway barrage", None]],
}


class ExtractionTeacher(Teacher):
    """Writes list keys and json_table keys; with ``bad_table_first`` its first table has
    rows with different fields, which TableKey refuses (the agent repairs it)."""

    def __init__(self, bad_table_first: bool = False) -> None:
        super().__init__()
        self.bad_table_first = bad_table_first

    def transform(self, messages: Sequence[Message]) -> str:
        if "a table of its facts" in messages[0]["content"]:
            return json.dumps(TABLE_MATERIAL)
        return super().transform(messages)

    def instruct(self, messages: Sequence[Message]) -> str:
        n = int(re.search(r"Write (\d+) task", messages[1]["content"]).group(1))  # type: ignore[union-attr]
        table = "json_table" in messages[0]["content"].split("Answer keys allowed")[1]
        tasks = []
        for i in range(n):
            if table:
                rows = ROWS
                if self.bad_table_first and self.calls["instruct"] == 1:
                    rows = [*ROWS, {"name": "Mersey barrage"}]
                key: dict[str, object] = {"kind": "json_table", "rows": rows}
            else:
                key = {"kind": "list", "items": FACTS, "ordered": False}
            tasks.append(
                {"instruction": f"Extract item set {i} as asked. <{key['kind']}>", "key": key}
            )
        return json.dumps({"tasks": tasks})

    def respond(self, messages: Sequence[Message]) -> str:
        user = next(m["content"] for m in messages if m["role"] == "user")
        if "<json_table>" in user:
            return "The table:\n\nFinal answer: " + json.dumps(ROWS)
        if "<list>" in user:
            return "Final answer: " + "; ".join(FACTS)
        return super().respond(messages)


def run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, teacher: ExtractionTeacher, seed: int
) -> Pipeline:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return Pipeline(
        ScriptedModel(teacher),
        taxonomy=EXAMPLE / "taxonomy.yaml",
        prompts=PromptLibrary([EXAMPLE / "prompts"]),
        settings=RunSettings(seed=seed),
    )


def test_example_taxonomy_validates(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    code = main(
        [
            "taxonomy",
            "validate",
            str(EXAMPLE / "taxonomy.yaml"),
            "--prompts",
            str(EXAMPLE / "prompts"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert load_taxonomy(EXAMPLE / "taxonomy.yaml").ready_skills() == ["text_extraction"]


def test_custom_skill_runs_and_its_key_kind_checks_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, materials = set(), set()
    for seed in range(8):
        teacher = ExtractionTeacher(bad_table_first=True)
        pipe = run(tmp_path, monkeypatch, teacher, seed)
        out = tmp_path / f"out{seed}"
        summary = pipe.run([Seed.from_text("The Severn barrage was studied in 2010. " * 12)], out)
        assert summary.rejects == 0 and summary.records == 2 + 2 * 2
        records = read_records(out / "records.jsonl")
        (sub,) = {r.meta.sub_category for r in records}
        seen.add(sub)
        (transformer,) = {r.meta.transformer for r in records}
        materials.add(transformer)
        if transformer == "fact_table":  # the custom material, rendered for the student
            assert all(
                "name | year\n--- | ---\nSevern barrage | 2010" in r.messages[-2]["content"]
                for r in records
            )
        originals = [r for r in records if r.meta.refinement_round == 0]
        assert all(
            r.meta.verification and r.meta.verification.status == "passed" for r in originals
        )
        if sub == "entity_table":
            # the custom key refused the first (ragged) table and the agent asked for a repair
            assert teacher.calls["instruct"] == 2
            assert all(r.meta.key == {"kind": "json_table", "rows": ROWS} for r in originals)
        else:
            assert teacher.calls["instruct"] == 1
            assert all(r.meta.key and r.meta.key["kind"] == "list" for r in originals)
    assert seen == {"entity_table", "key_facts_list"}
    assert materials == {"identity", "fact_table"}
