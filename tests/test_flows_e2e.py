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
    """A fixed student-message template, so the tests can assert exact messages."""
    d = tmp_path / "p"
    (d / "t").mkdir(parents=True)
    (d / "t" / "task_user.j2").write_text("{{ task.text }}\n\nQ: {{ task.instruction }}")
    return PromptLibrary([d])


def pipeline(skill: str, teacher: Teacher, prompts: PromptLibrary, **settings: object) -> Pipeline:
    tax = load_taxonomy()
    if skill != "tool_use":
        tax.skills[skill].prompts["task_user"] = "t/task_user.j2"
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
    passage = SEED_TEXT.strip() if identity else PASSAGE
    for r in orig:
        user = r.messages[0]["content"]
        assert user.startswith(passage + "\n\nQ: [")
        assert user.endswith("] What do the critics say about the traffic counts?")
        assert r.messages == [
            {"role": "user", "content": user},
            {"role": "assistant", "content": ANSWER},
        ]
        assert r.meta.agents[-1] == "responder"
        assert r.meta.agents[0].startswith("transform/") or r.meta.transformer == "identity"
        assert r.meta.reference_answer == "(B)"
        assert r.meta.teacher == "scripted-teacher"
    for r in ref:
        parent = by_task[r.meta.parent_task_id]  # type: ignore[index]
        assert parent.meta.refinement_round == 0
        assert r.meta.agents[-3:] == ["suggester", "editor", "responder"]
        assert r.meta.refinement_goal in {"unanswerable", "answer_flip", "complexify"}
        assert r.messages[0]["content"].split("\n\nQ: ")[1].startswith("Refined version ")
    flipped = [r for r in ref if "a half" in r.messages[0]["content"]]
    assert flipped, "edits that change the passage carry the edited passage"
    assert len({r.id for r in records}) == len(records)

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
    assert instruct_user.endswith("about this passage. Reply with the JSON object only.")


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
    excerpt = PASSAGE.split(". ")[0] + "."
    for r in records:
        if r.meta.refinement_round == 0:
            assert r.messages[0]["content"].startswith(excerpt + "\n\nQ: ")


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
        "conversation ended with failed, the task expects final_answer"
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
