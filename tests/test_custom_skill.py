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
TABLE = '[{"name": "Severn barrage", "year": null}]'


class ExtractionTeacher(Teacher):
    def __init__(self, bad_table_first: bool = False) -> None:
        super().__init__()
        self.bad_table_first = bad_table_first

    def instruct(self, messages: Sequence[Message]) -> str:
        n = int(re.search(r"Write (\d+) task", messages[1]["content"]).group(1))  # type: ignore[union-attr]
        table = "Entity Table" in messages[0]["content"].split("The task type, ")[1][:40]
        if table and self.bad_table_first and self.calls["instruct"] == 1:
            answer = "Severn barrage, no year"
        else:
            answer = TABLE if table else "2010: feasibility study"
        return json.dumps(
            {
                "tasks": [
                    {"instruction": f"Extract item set {i}.", "answer": answer} for i in range(n)
                ]
            }
        )


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


def test_custom_skill_runs_and_subclass_checks_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = set()
    for seed in range(8):
        teacher = ExtractionTeacher(bad_table_first=True)
        pipe = run(tmp_path, monkeypatch, teacher, seed)
        out = tmp_path / f"out{seed}"
        summary = pipe.run([Seed.from_text("The Severn barrage was studied in 2010. " * 12)], out)
        assert summary.rejects == 0 and summary.records == 2 + 2 * 2
        records = read_records(out / "records.jsonl")
        (sub,) = {r.meta.sub_category for r in records}
        seen.add(sub)
        if sub == "entity_table":
            # the subclass's parser refused the first (non-JSON) answer key and asked for a repair
            assert teacher.calls["instruct"] == 2
            assert {r.meta.reference_answer for r in records if r.meta.refinement_round == 0} == {
                TABLE
            }
        else:
            assert teacher.calls["instruct"] == 1
    assert seen == {"entity_table", "key_facts_list"}
