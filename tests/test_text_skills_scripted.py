"""Every ready skill built on the common flows runs end to end with the scripted teacher:
60 units per skill (the three example text seeds under twenty run seeds), every record's answer
verified against its key, no reject, and every transformer, task type and key kind of the
skill used at least once. The scripted teacher writes keys of each kind a task type
allows in turn (``rotate_kinds``) and answers from them, so this proves the plumbing, the
templates and the checks of each skill, not the quality of a real teacher's keys."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel, load_taxonomy, read_records
from genteach.records import Seed
from scripted_teacher import Teacher

SEEDS_DIR = Path(__file__).resolve().parent.parent / "examples" / "seeds"
#: Skills with flows of their own kind, tested in their own files.
OWN_TESTS = {"rc", "text_modification", "tool_use", "webagent_flow"}
TAXONOMY = load_taxonomy()
SKILLS = sorted(set(TAXONOMY.ready_skills()) - OWN_TESTS)


def text_seeds() -> list[Seed]:
    return [
        Seed.from_text(p.read_text(), source=p.name)
        for p in sorted(SEEDS_DIR.iterdir())
        if p.suffix in (".txt", ".md")
    ]


@pytest.mark.slow
@pytest.mark.parametrize("skill_id", SKILLS)
def test_skill_runs_and_verifies_with_the_scripted_teacher(skill_id: str, tmp_path: Path) -> None:
    seeds = text_seeds()
    units = records = 0
    used: dict[str, Counter[str]] = {"transformer": Counter(), "task": Counter(), "key": Counter()}
    for run_seed in range(20):
        out = tmp_path / str(run_seed)
        teacher = ScriptedModel(Teacher(rotate_kinds=True), name="scripted-teacher")
        pipe = Pipeline(teacher, skills=[skill_id], settings=RunSettings(seed=run_seed))
        summary = pipe.run(seeds, out)
        assert summary.rejects == 0, (out / "rejects.jsonl").read_text()
        units += summary.units_total
        for r in read_records(out / "records.jsonl"):
            records += 1
            assert r.meta.verification is not None and r.meta.key is not None
            assert r.meta.verification.status == "passed", (r.meta.sub_category, r.meta.key)
            used["transformer"][r.meta.transformer or ""] += 1
            used["task"][r.meta.sub_category] += 1
            used["key"][r.meta.key["kind"]] += 1
    assert units == 60 and records >= 60
    skill = TAXONOMY.skills[skill_id]
    # every transformer drawn for text seeds (one limited to code seeds never is)
    assert set(used["transformer"]) == {
        t.id for t in skill.transformers if t.seed_kinds is None or "text" in t.seed_kinds
    }
    assert set(used["task"]) == {t.id for t in skill.task_types}
    allowed = {k for t in skill.task_types for k in t.key}
    assert allowed <= set(used["key"]), allowed - set(used["key"])


def test_every_ready_skill_is_tested_end_to_end() -> None:
    assert len(SKILLS) >= 5 and not OWN_TESTS & set(SKILLS)
