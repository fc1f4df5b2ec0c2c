"""The web-agent skill end to end with a scripted teacher: a site built from each seed,
goals written against it, and the teacher's episodes in the page simulator kept only when
the state they leave meets the goal (:class:`~genteach.keys.WebGoalKey`)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel, load_taxonomy, read_records
from genteach.models.base import is_trained
from genteach.records import Seed
from genteach.trajectories import failure_class
from scripted_teacher import WebTeacher

SEEDS_DIR = Path(__file__).resolve().parent.parent / "examples" / "seeds"


def text_seeds() -> list[Seed]:
    return [
        Seed.from_text(p.read_text(), source=p.name)
        for p in sorted(SEEDS_DIR.iterdir())
        if p.suffix in (".txt", ".md")
    ]


@pytest.mark.slow
def test_the_web_skill_runs_and_every_episode_reaches_its_goal(tmp_path: Path) -> None:
    skill = load_taxonomy().skills["webagent_flow"]
    used: dict[str, Counter[str]] = {"transformer": Counter(), "task": Counter()}
    units = records = 0
    for run_seed in range(20):
        out = tmp_path / str(run_seed)
        pipe = Pipeline(
            ScriptedModel(WebTeacher(), name="scripted-web"),
            skills=["webagent_flow"],
            settings=RunSettings(seed=run_seed),
        )
        summary = pipe.run(text_seeds(), out)
        assert summary.rejects == 0, (out / "rejects.jsonl").read_text()
        units += summary.units_total
        for r in read_records(out / "records.jsonl"):
            records += 1
            assert r.meta.verification is not None and r.meta.verification.status == "passed"
            assert r.meta.key is not None and r.meta.key["kind"] == "web_goal"
            trained = [is_trained(m) for m in r.messages]
            assert trained[0] is False and trained[-1] is True  # system untrained, last action
            assert all(is_trained(m) == (m["role"] == "assistant") for m in r.messages[1:]), (
                "observations and the request are untrained, the actions trained"
            )
            used["transformer"][r.meta.transformer or ""] += 1
            used["task"][r.meta.sub_category] += 1
    assert units == 60 and records >= 60
    assert set(used["transformer"]) == {t.id for t in skill.transformers}
    assert set(used["task"]) == {t.id for t in skill.task_types}


def test_an_episode_that_misses_its_goal_is_a_reject_with_the_checks_reason(
    tmp_path: Path,
) -> None:
    pipe = Pipeline(
        ScriptedModel(WebTeacher(wrong=True), name="scripted-web"),
        skills=["webagent_flow"],
        settings=RunSettings(seed=1),
    )
    summary = pipe.run(text_seeds()[:1], tmp_path)
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert summary.records == 0 and rejects
    episodes = [r for r in rejects if r["stage"] == "web_episode"]
    assert episodes and all(r["agent"] == "web_assistant" for r in episodes)
    assert any('holds ""' in r["reason"] for r in episodes), [r["reason"] for r in episodes]
    # the run's trajectory report: every episode attempted, none kept, all wrong answers
    report = json.loads((tmp_path / "trajectories.json").read_text())
    assert report["webagent_flow"]["attempted"] == len(episodes)
    assert report["webagent_flow"]["kept"] == 0
    assert report["webagent_flow"]["failures"] == {"wrong answer": len(episodes)}
    assert f"webagent_flow: {len(episodes)} episodes, 0 kept (0%)" in str(summary)


def test_failure_classes_follow_the_end_reason() -> None:
    assert failure_class("turn_budget: 12 turns") == "budget"
    assert failure_class("repeated_output: the same output 3 times") == "repeat rule"
    assert failure_class("malformed_action: no Action line") == "format error"
    assert failure_class('e17 holds "", the goal needs "x"') == "wrong answer"
