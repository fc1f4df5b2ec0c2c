"""The three skills end to end on the shipped taxonomy and templates, with a scripted
teacher. Asserts the exact student-facing messages, the agent chains, the links between
original and refined tasks, and the call counts the pipeline settings imply."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel, load_taxonomy, read_records
from genteach.models.base import Message
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from genteach.taxonomy import Choices
from scripted_teacher import ANSWER, PASSAGE, Teacher

SEED_TEXT = (
    "Uric acid is a product of purine metabolism. High levels, called hyperuricemia, may raise "
    "the risk of cardiovascular disease, though a causal link is not established. " * 3
)
CODE_SEED = Seed.from_text(
    "def get_traffic_counts(road: str, year: int) -> dict:\n    '''Vehicle counts.'''\n    ...\n",
    source="traffic.py",
    kind="code",
    language="Python",
)


@pytest.fixture
def student_template(tmp_path: Path) -> PromptLibrary:
    """A fixed student-message framing, so the tests can assert exact messages."""
    d = tmp_path / "p"
    (d / "t").mkdir(parents=True)
    (d / "t" / "task_user.j2").write_text(
        '{{ material }}\n\nQ: {{ instruction }}\n{% include "_partials/question.j2" %}'
    )
    return PromptLibrary([d])


def pipeline(skill: str, teacher: Teacher, prompts: PromptLibrary, **settings: object) -> Pipeline:
    tax = load_taxonomy()
    if skill != "tool_use":
        # One framing and no system prompt: exact messages (the draws are tested elsewhere).
        tax.skills[skill].student.framings = Choices(values=["t/task_user.j2"])
        tax.skills[skill].student.system_prompts = None
    return Pipeline(
        ScriptedModel(teacher, name="scripted-teacher"),
        taxonomy=tax,
        skills=[skill],
        prompts=prompts,
        settings=RunSettings(**settings),  # type: ignore[arg-type]
    )


def stage(skill: str, flow: str) -> dict[str, object]:
    tax = load_taxonomy()
    return next(s.settings for s in tax.skills[skill].pipeline if s.flow == flow)


def test_reading_comprehension_end_to_end(tmp_path: Path, student_template: PromptLibrary) -> None:
    teacher = Teacher()
    pipe = pipeline("rc", teacher, student_template, seed=7)
    seed = Seed.from_text(SEED_TEXT, source="uric.txt")
    summary = pipe.run([seed], tmp_path / "out")

    si, rf = stage("rc", "seed_instruction"), stage("rc", "refinement")
    types, per_type = int(si["task_types_per_seed"]), int(si["tasks_per_type"])  # type: ignore[call-overload]
    rounds, sugg = int(rf["rounds"]), int(rf["suggestions"])  # type: ignore[call-overload]
    originals = types * per_type
    refined = originals * sugg if rounds == 1 else None
    assert refined is not None, "test written for one refinement round"
    assert summary.records == originals + refined
    assert summary.rejects == 0
    identity = teacher.calls["transform"] == 0
    assert teacher.calls["instruct"] == types
    assert teacher.calls["suggest"] == originals and teacher.calls["edit"] == originals
    assert teacher.calls["respond"] == originals + refined

    records = read_records(tmp_path / "out" / "records.jsonl")
    by_task = {r.meta.task_id: r for r in records}
    orig = [r for r in records if r.meta.refinement_round == 0]
    ref = [r for r in records if r.meta.refinement_round == 1]
    assert len(orig) == originals and len(ref) == refined
    allowed = {t.id: t.key for t in pipe.skills[0].task_types}
    passage = SEED_TEXT.strip() if identity else None
    for r in orig:
        user, answer = r.messages[0]["content"], r.messages[1]["content"]
        if passage is not None:
            assert user.startswith(passage + "\n\nQ: [")
        else:
            assert user.startswith(PASSAGE) and "\n\nQ: [" in user
        assert "] What do the critics say about the traffic counts? <" in user
        assert [m["role"] for m in r.messages] == ["user", "assistant"]
        assert r.meta.key is not None and r.meta.key["kind"] == allowed[r.meta.sub_category][0]
        assert r.meta.verification is not None
        if r.meta.key["kind"] == "free_text":
            assert answer == ANSWER and r.meta.verification.status == "unchecked"
        else:
            assert answer.startswith("Let me work through it.\n\nFinal answer: ")
            assert r.meta.verification.status == "passed"
        assert r.meta.agents[-1] == "responder"
        assert r.meta.agents[0].startswith("transform/") or r.meta.transformer == "identity"
        assert r.meta.teacher == "scripted-teacher"
        assert r.meta.instruction in user
    for r in ref:
        parent = by_task[r.meta.parent_task_id]  # type: ignore[index]
        assert parent.meta.refinement_round == 0
        assert r.meta.agents[-3:] == ["suggester", "editor", "responder"]
        goals = pipe.skills[0].goals_for(r.meta.sub_category)
        assert r.meta.refinement_goal in {g.id for g in goals}
        user = r.messages[0]["content"]
        if r.meta.refinement_goal == "complexify":
            assert user.split("\n\nQ: ")[1].startswith("Refined version ")
        else:  # the passage was edited, the question kept
            assert "(revised " in user and r.meta.instruction == parent.meta.instruction
        if r.meta.refinement_goal == "unanswerable":
            assert r.meta.key is not None and r.meta.key["kind"] == "unanswerable"
            assert r.messages[1]["content"].endswith("cannot be determined from the passage")
    assert len({r.id for r in records}) == len(records)
    assert summary.verified["rc"].get("failed", 0) == 0

    # The instruct agent's user message is the passage, then the per-call part.
    instruct_user = next(
        c[1]["content"]
        for c in pipe.client.calls
        if "task-writing agent" in c[0]["content"]  # type: ignore[attr-defined]
    )
    assert instruct_user.startswith(
        ("Passage title: The Harbour Tunnel\n\n<<<PASSAGE\n" + PASSAGE)
        if not identity
        else "<<<PASSAGE\n"
    )
    assert instruct_user.endswith("Reply with the JSON object only.")


def test_text_modification_end_to_end(tmp_path: Path, student_template: PromptLibrary) -> None:
    teacher = Teacher()
    pipe = pipeline("text_modification", teacher, student_template, seed=3)
    summary = pipe.run([Seed.from_text(SEED_TEXT, source="uric.txt")], tmp_path / "out")
    si, rf = (
        stage("text_modification", "seed_instruction"),
        stage("text_modification", "refinement"),
    )
    originals = int(si["task_types_per_seed"]) * int(si["tasks_per_type"])  # type: ignore[call-overload]
    refined = originals * int(rf["suggestions"])  # type: ignore[call-overload]
    assert summary.records == originals + refined
    assert teacher.calls["transform"] == 0, "text modification uses the identity transformer"
    records = read_records(tmp_path / "out" / "records.jsonl")
    sub = {r.meta.sub_category for r in records}
    assert len(sub) == 1, "one task-type agent is drawn per seed"
    tax = load_taxonomy()
    assert sub <= {t.id for t in tax.skills["text_modification"].task_types}
    excerpt = " ".join(SEED_TEXT.split()[:60])
    for r in records:
        assert r.messages[0]["content"].startswith(excerpt + "\n\nQ: ")
        assert r.meta.key is not None and r.meta.verification is not None
        if r.meta.sub_category == "textual_entailment":
            assert r.meta.key["kind"] == "free_text" and r.meta.verification.status == "unchecked"
        else:
            # the instruction states the key's constraints, and the answer meets them
            assert (
                r.meta.key["kind"] == "constraints" and "traffic counts" in r.messages[0]["content"]
            )
            assert r.meta.verification.status == "passed", r.meta.verification


def test_tool_use_end_to_end(tmp_path: Path) -> None:
    teacher = Teacher()
    pipe = pipeline("tool_use", teacher, PromptLibrary(), seed=1)
    summary = pipe.run([CODE_SEED], tmp_path / "out")
    assert summary.rejects == 0, (tmp_path / "out" / "rejects.jsonl").read_text()
    records = read_records(tmp_path / "out" / "records.jsonl")
    assert records and summary.records == len(records)
    for r in records:
        roles = [m["role"] for m in r.messages]
        assert roles == ["system", "user", "assistant", "user", "assistant"]
        system = r.messages[0]["content"]
        assert "ACTION_TYPE : API_CALL" in system and "get_traffic_counts" in system
        assert r.messages[2]["content"].endswith(
            'ACTION: get_traffic_counts(road="coast road", year=2023)'
        )
        observation = r.messages[3]["content"]
        assert "get_traffic_counts" in observation and '"lorries": 412' in observation
        assert r.messages[4]["content"].endswith('ACTION: FINAL_ANSWER("412 lorries")')
        assert r.meta.outcome == "final_answer"
        assert r.meta.agents[-3:] == ["tool_assistant", "api_simulator", "tool_assistant"]
    assert teacher.calls["simulate"] == len(records)


def test_tool_use_unexpected_outcome_is_rejected(tmp_path: Path) -> None:
    teacher = Teacher(tool_outcome="failed")
    pipe = pipeline("tool_use", teacher, PromptLibrary(), seed=1)
    summary = pipe.run([CODE_SEED], tmp_path / "out")
    assert summary.records == 0 and summary.rejects > 0
    rejects = [json.loads(x) for x in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert {r["reason"] for r in rejects} == {
        "the conversation ended with FAILED, the task expects FINAL_ANSWER"
    }


class NeverStops(Teacher):
    """An assistant that keeps calling (new arguments each time) until told it must stop."""

    def assistant(self, messages: Sequence[Message]) -> str:
        if "last step of the conversation" in messages[-1]["content"]:
            return 'Enough data.\nACTION_TYPE : STOP\nACTION: FINAL_ANSWER("412 lorries")'
        year = 2020 + sum(m["role"] == "assistant" for m in messages)
        return f'More years.\nACTION_TYPE : API_CALL\nACTION: get_traffic_counts(road="coast road", year={year})'


def test_the_last_allowed_turn_is_made_to_stop(tmp_path: Path) -> None:
    teacher = NeverStops()
    pipe = pipeline("tool_use", teacher, PromptLibrary(), seed=1, overrides={"max_steps": 3})
    summary = pipe.run([CODE_SEED], tmp_path / "out")
    assert summary.rejects == 0 and summary.records > 0
    for r in read_records(tmp_path / "out" / "records.jsonl"):
        turns = [m["content"] for m in r.messages if m["role"] == "assistant"]
        assert len(turns) == 3  # two calls, then the stop the last step required
        assert turns[-1].endswith('FINAL_ANSWER("412 lorries")')
        assert all("last step" not in m["content"] for m in r.messages)  # repair not kept


def test_code_seeds_skip_text_only_skills(tmp_path: Path) -> None:
    teacher = Teacher()
    pipe = Pipeline(ScriptedModel(teacher), skills=["rc", "tool_use"])
    units = pipe.units([CODE_SEED, Seed.from_text(SEED_TEXT)])
    assert [(s.id, seed.kind) for s, seed in units] == [
        ("tool_use", "code"),
        ("rc", "text"),
        ("tool_use", "text"),
    ]
