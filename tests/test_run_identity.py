"""What a run folder knows about what made it: template hashes, run.json and its history,
the templates checked before a run, and a resume that reads record ids only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel
from genteach.flows import FlowBuild, build_flows
from genteach.pipeline import identity_changes, record_ids
from genteach.preflight import check_templates, skill_templates
from genteach.prompts import PromptError, PromptLibrary
from genteach.records import Seed
from genteach.taxonomy import load_taxonomy
from scripted_teacher import Teacher

SMALL = RunSettings(seed=1, overrides={"suggestions": 1, "tasks_per_type": 1})


def library(tmp_path: Path, files: dict[str, str]) -> PromptLibrary:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return PromptLibrary([tmp_path], include_builtin=False)


def seeds(n: int) -> list[Seed]:
    return [
        Seed.from_text(f"Document {i}. " + "The harbour tunnel opened in May. " * 12)
        for i in range(n)
    ]


# -- template hashes -----------------------------------------------------------------------
def test_hashes_cover_what_a_template_includes_and_imports(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        {
            "a.j2": '{% include "p/part.j2" %}{% from "m.j2" import f %}{{ f() }}',
            "p/part.j2": "part",
            "m.j2": '{% macro f() %}{% include "deep.j2" %}{% endmacro %}',
            "deep.j2": "deep",
            "dyn.j2": "{% include category.guidance %}",
            "other.j2": "other",
        },
    )
    assert lib.references("a.j2") == (frozenset({"p/part.j2", "m.j2"}), False)
    assert lib.references("dyn.j2") == (frozenset(), True)
    assert lib.closure(["a.j2"]) == ["a.j2", "deep.j2", "m.j2", "p/part.j2"]
    own = lib.hashes(["a.j2", "deep.j2"])
    assert own == {
        "a.j2": hashlib.sha256(lib.source("a.j2").encode()).hexdigest()[:16],
        "deep.j2": hashlib.sha256(b"deep").hexdigest()[:16],
    }
    assert set(lib.hashes()) == {"a.j2", "deep.j2", "dyn.j2", "m.j2", "other.j2", "p/part.j2"}
    # a chain's hash: order and repeats do not matter; an included file's text does
    before = lib.chain_hash(["a.j2", "other.j2"])
    assert before == lib.chain_hash(["other.j2", "a.j2", "a.j2"]) != lib.template_hash("a.j2")
    lib2 = library(tmp_path / "v2", {**{n: lib.source(n) for n in lib.names()}, "deep.j2": "x"})
    assert lib2.chain_hash(["a.j2", "other.j2"]) != before
    assert lib2.template_hash("other.j2") == lib.template_hash("other.j2")
    assert lib2.library_hash() != lib.library_hash()


def test_a_missing_include_names_the_template_that_includes_it(tmp_path: Path) -> None:
    lib = library(tmp_path, {"a.j2": '{% include "b.j2" %}', "b.j2": '{% include "gone.j2" %}'})
    with pytest.raises(PromptError, match=r"^template b\.j2 includes 'gone\.j2': template 'gone"):
        lib.closure(["a.j2"])
    bad = library(tmp_path / "bad", {"s.j2": "line\n{% if x %}\n"})
    with pytest.raises(PromptError, match=r"^template s\.j2:2: Unexpected end of template"):
        bad.chain_hash(["s.j2"])


# -- templates checked before a run --------------------------------------------------------
def test_every_template_of_the_builtin_skills_is_found() -> None:
    tax, prompts = load_taxonomy(), PromptLibrary()
    built = [(s, build_flows(s, FlowBuild(prompts=prompts))) for s in tax.select(None)]
    assert check_templates(built, prompts, tax.source) == []
    rc = skill_templates(*built[0])
    assert rc["common/instruct_system.j2"].startswith("skills.rc.pipeline[1] (seed_instruction)")
    assert rc["rc/task_types/weaken.j2"] == "skills.rc.task_types.weaken"
    assert rc["common/repair.j2"].startswith("skills.rc.pipeline[0] (content_transformation)")


def test_a_flow_names_its_templates_through_a_method() -> None:
    tax, prompts = load_taxonomy(), PromptLibrary()
    skill = tax.skill("rc")

    class Custom:
        name = "custom"

        def templates(self) -> list[str]:
            return ["common/framings/instruction_first.j2", "custom/missing.j2"]

    problems = check_templates([(skill, [Custom()])], prompts, "tax.yaml")
    assert len(problems) == 1
    assert problems[0].startswith(
        "tax.yaml: skills.rc.pipeline[0] (custom): template 'custom/missing.j2' not found in "
    )


# -- run.json -------------------------------------------------------------------------------
def test_run_json_records_what_made_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipe = Pipeline(
        ScriptedModel(Teacher(), name="t1"),
        skills=["rc"],
        settings=SMALL,
        endpoint="http://10.0.0.5:8000",
    )
    pipe.run(seeds(1), out)
    run = json.loads((out / "run.json").read_text())
    assert run["teacher"] == "t1" and run["endpoint"] == "http://10.0.0.5:8000"
    assert run["skills"] == ["rc"] and run["settings"]["seed"] == 1
    assert run["templates"] == pipe.prompts.hashes(pipe.templates)
    assert "common/instruct_system.j2" in run["templates"]
    assert "_partials/json_rules.j2" in run["templates"]  # what templates include, too
    assert run["templates_sha256"] == pipe.prompts.chain_hash(pipe.templates)
    assert "history" not in run
    # the same run resumes; another teacher is refused, then accepted with its history
    Pipeline(ScriptedModel(Teacher(), name="t1"), skills=["rc"], settings=SMALL).run(seeds(1), out)
    other = Pipeline(ScriptedModel(Teacher(), name="t2"), skills=["rc"], settings=SMALL)
    with pytest.raises(ValueError, match=r"teacher model t1 -> t2; pass --accept-changes"):
        other.run(seeds(1), out)
    assert json.loads((out / "run.json").read_text()) == run
    other.run(seeds(1), out, accept_changes=True)
    now = json.loads((out / "run.json").read_text())
    assert now["teacher"] == "t2" and now["history"] == [run]


def test_identity_changes_name_each_difference() -> None:
    old: dict[str, Any] = {
        "teacher": "m",
        "endpoint": "http://h:1",
        "taxonomy": "t.yaml",
        "taxonomy_sha256": "a",
        "skills": ["rc"],
        "templates": {"x.j2": "1", "y.j2": "2", "gone.j2": "3"},
        "settings": {"seed": 0},
    }
    same_host = {**old, "endpoint": "http://h:2", "settings": {"seed": 0, "limit": 4}}
    assert identity_changes(old, same_host) == []
    new = {
        **old,
        "endpoint": "https://other",
        "taxonomy_sha256": "b",
        "skills": ["rc", "tool_use"],
        "templates": {"x.j2": "1", "y.j2": "9", "new.j2": "4"},
        "settings": {"seed": 5},
    }
    assert identity_changes(old, new) == [
        "endpoint http://h:1 -> https://other",
        "taxonomy t.yaml changed",
        "skills rc -> rc,tool_use",
        "seed 0 -> 5",
        "templates changed: y.j2, new.j2 (new), gone.j2 (gone)",
    ]
    # a run.json from an older genteach: only what it has is compared
    assert identity_changes({"skills": ["rc"]}, new) == ["skills rc -> rc,tool_use"]


# -- resume reads ids only ---------------------------------------------------------------------
def test_resume_reads_record_ids_without_parsing_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    first = Pipeline(ScriptedModel(Teacher()), skills=["rc"], settings=SMALL).run(seeds(2), out)
    ids = [json.loads(x)["id"] for x in (out / "records.jsonl").read_text().splitlines()]
    assert record_ids(out / "records.jsonl") == set(ids) and len(ids) == first.records
    read: list[str] = []
    real = __import__("genteach.pipeline", fromlist=["read_jsonl"]).read_jsonl
    monkeypatch.setattr(
        "genteach.pipeline.read_jsonl", lambda p: (read.append(Path(p).name), real(p))[1]
    )
    again = Pipeline(ScriptedModel([]), skills=["rc"], settings=SMALL).run(seeds(2), out)
    assert again.units_resumed == 2 and again.records == 0
    assert read == ["progress.jsonl"]  # records.jsonl and rejects.jsonl are not parsed


def test_record_ids_reads_the_line_start_and_parses_other_lines(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(
        '{"id": "abc", "messages": NOT PARSED\n{"meta": {}, "id": "def"}\n\n{"id": "torn'
    )
    assert record_ids(path) == {"abc", "def"}
    path.write_text('{"id": "abc"}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"records\.jsonl:2: not a record line"):
        record_ids(path)
