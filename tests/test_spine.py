"""Properties of a whole run that the spine promises (issue 9):

- stable siblings (point 8): a rejected task never changes the ids or contents of the other
  tasks of its unit, since each task draws from its own random stream;
- balanced answers (point 2, "Done when"): over 1,000 scripted multiple-choice tasks the
  correct option's position is within 5 points of uniform;
- diversity drawn in code (point 5): the values of a task type's ``vary`` lists and its
  question stems, and every system prompt variant, framing, delimiter and label style of
  the student's side, over many tasks.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import genteach.records
from genteach import Pipeline, RunSettings, ScriptedModel, load_taxonomy, read_records
from genteach.flows.base import draw_slots, draw_view, slot_keys, task_id, task_stream
from genteach.flows.respond import POSITIONS
from genteach.keys import ChoiceKey, KeyKinds
from genteach.material import Passage
from genteach.models.base import Completion, Message, ModelRequest
from genteach.prompts import PromptLibrary
from genteach.records import Record, Reject, Seed, read_jsonl
from genteach.taxonomy import Taxonomy
from scripted_teacher import CHOICE, Teacher

SEEDS = [
    Seed.from_text(
        f"Report {i}. The city of Lowmarsh claims that its new harbour tunnel cut commuting "
        "times by a third; critics reply that a bus strike inflated the earlier counts. " * 3
    )
    for i in range(2)
]


class FrozenClock:
    """``datetime`` as genteach.records sees it, stopped at one instant."""

    @staticmethod
    def now(tz: timezone | None = None) -> datetime:
        return datetime(2025, 1, 2, 3, 4, 5, tzinfo=tz)


class SampledModel(ScriptedModel):
    """The scripted teacher, its answers marked with the call's seed as a sampling model's
    answers depend on it: a draw that moved a sibling's seed would change its record."""

    async def complete(self, request: ModelRequest) -> Completion:
        done = await super().complete(request)
        system = request.messages[0]["content"]
        if "expert teacher" in system:
            text = f"(sampled with seed {request.seed})\n{done.text}"
        elif "You are the suggester" in system:
            out = json.loads(done.text)
            out["suggestions"] = [f"{s} (seed {request.seed})" for s in out["suggestions"]]
            text = json.dumps(out)
        else:
            return done
        return Completion(text=text, usage=done.usage, model=done.model)


def run_rc(out: Path, teacher: Teacher) -> tuple[list[str], list[dict[str, Any]]]:
    # One unit at a time: the scripted teacher numbers tasks by its call count, which units
    # running side by side would interleave differently from run to run.
    settings = RunSettings(seed=3, concurrency=1)
    pipe = Pipeline(SampledModel(teacher, name="scripted"), skills=["rc"], settings=settings)
    pipe.run(SEEDS, out)
    records = (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
    rejects = [r.model_dump() for r in read_rejects(out)]
    return records, rejects


def read_rejects(out: Path) -> list[Reject]:
    return [Reject.model_validate(r) for r in read_jsonl(out / "rejects.jsonl")]


def test_a_rejected_task_leaves_its_siblings_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One task's answers disagree with its key twice (one re-answer, then a reject); every
    other record of the run is byte-identical to a run without the reject. Records carry
    ``created_at``: the clock of genteach.records is frozen, so the comparison includes the
    timestamps. The teacher's answers carry their call seeds, so a sibling whose seed moved
    (a shared stream that the re-answer drew from) would differ."""
    monkeypatch.setattr(genteach.records, "datetime", FrozenClock)
    clean, no_rejects = run_rc(tmp_path / "a", Teacher())
    assert not no_rejects and len(clean) > 10
    # a task with a closed key whose instruction no other task shares
    parsed = [Record.model_validate_json(line) for line in clean]
    users = [next(m["content"] for m in r.messages if m["role"] == "user") for r in parsed]
    victim = next(
        r
        for r in parsed
        if r.meta.verification is not None
        and r.meta.verification.status == "passed"
        and r.meta.refinement_round == 1
        and sum(r.meta.instruction in u for u in users) == 1
    )
    teacher = Teacher(wrong=[victim.meta.instruction])
    records, rejects = run_rc(tmp_path / "b", teacher)
    assert records == [line for line, r in zip(clean, parsed, strict=True) if r is not victim]
    (reject,) = rejects
    assert reject["unit"] == victim.meta.unit and reject["stage"] == "response"
    assert reject["reason"].startswith("the answer disagrees with its key: ")
    assert reject["created_at"] == "2025-01-02T03:04:05+00:00"
    assert '"created_at": "2025-01-02T03:04:05+00:00"' in records[0]


class EditorFailsFor(Teacher):
    """The scripted teacher whose editor answers malformed text for one task (a reject in
    refinement). Refined instructions name the task they come from, not a call count, so
    the reject does not change the teacher's other answers."""

    def __init__(self, victim: str = "") -> None:
        super().__init__()
        self.victim = victim

    @staticmethod
    def origin(messages: Sequence[Message]) -> str:
        m = re.search(r"\[[^\]\n]* #[\d.]+\]", messages[1]["content"])
        assert m is not None
        return m.group(0)

    def edit_instruction(self, i: int, messages: Sequence[Message]) -> str:
        return f"Refined version {i} of {self.origin(messages)}: which option weakens the claim?"

    def edit_marker(self, i: int, messages: Sequence[Message]) -> str:
        return f"(revised {self.origin(messages)} {i})"

    def edit(self, messages: Sequence[Message]) -> str:
        if self.victim and self.victim in messages[1]["content"]:
            return "I would rather not."
        return super().edit(messages)


def test_a_task_rejected_in_refinement_leaves_the_other_tasks_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The editor fails for one task: it gets no refined versions (a reject), and every
    other record, refined ones included, is byte-identical to a run without the reject
    (frozen clock and seed-marked answers, as above). Views of refined tasks and every
    answer's seed come from the task's own stream, so fewer tasks drawing changes nothing."""
    monkeypatch.setattr(genteach.records, "datetime", FrozenClock)
    clean, no_rejects = run_rc(tmp_path / "a", EditorFailsFor())
    assert not no_rejects
    parsed = [Record.model_validate_json(line) for line in clean]
    victim = next(r for r in parsed if r.meta.refinement_round == 0)
    children = {r.meta.task_id for r in parsed if r.meta.parent_task_id == victim.meta.task_id}
    assert children
    records, rejects = run_rc(tmp_path / "b", EditorFailsFor(victim.meta.instruction))
    expected = [
        line for line, r in zip(clean, parsed, strict=True) if r.meta.task_id not in children
    ]
    assert records == expected
    (reject,) = rejects
    assert (reject["stage"], reject["agent"]) == ("refinement", "editor")


def test_task_streams_depend_on_the_task_and_the_run_seed_only() -> None:
    key = ChoiceKey.model_validate({k: v for k, v in CHOICE.items()})
    passage = Passage(text="The tunnel opened.")
    tid = task_id("strengthen", passage, "Which strengthens it?", key)
    assert tid == task_id("strengthen", passage, "Which strengthens it?", key)
    assert tid != task_id("weaken", passage, "Which strengthens it?", key)
    draws = [task_stream(7, tid, "view").random() for _ in range(2)]
    assert draws[0] == draws[1]
    assert task_stream(8, tid, "view").random() != draws[0]
    assert task_stream(7, tid, "respond").random() != draws[0]


# -- balanced answers ---------------------------------------------------------------------
MC_TAXONOMY: dict[str, Any] = {
    "name": "mc",
    "student": {"label_styles": ["upper_paren", "lower_paren", "number_dot"]},
    "skills": {
        "mc": {
            "name": "Multiple choice",
            "status": "ready",
            "seed_kinds": ["text"],
            "transformers": [{"id": "identity", "name": "Identity", "agent": "identity"}],
            "task_types": [
                {"id": "strengthen", "name": "Strengthen", "key": ["choice"]},
                {"id": "weaken", "name": "Weaken", "key": ["choice"]},
            ],
            "pipeline": [
                {"flow": "content_transformation"},
                {"flow": "seed_instruction", "task_types_per_seed": 2, "tasks_per_type": 10},
                {"flow": "response"},
            ],
        }
    },
}


def test_the_correct_option_is_balanced_over_a_thousand_tasks(tmp_path: Path) -> None:
    for t in ("strengthen", "weaken"):
        guide = tmp_path / "p" / "mc" / "task_types" / f"{t}.j2"
        guide.parent.mkdir(parents=True, exist_ok=True)
        guide.write_text("Ask which option most {{ category.id }}s the argument.")
    teacher = Teacher()
    pipe = Pipeline(
        ScriptedModel(teacher),
        taxonomy=Taxonomy.model_validate(MC_TAXONOMY),
        prompts=PromptLibrary([tmp_path / "p"]),
        settings=RunSettings(seed=11, cache=False),
    )
    seeds = [Seed.from_text(f"Seed {i}: the harbour tunnel and the bus strike.") for i in range(50)]
    summary = pipe.run(seeds, tmp_path / "out")
    assert summary.records == 1000 and summary.rejects == 0
    positions: Counter[int] = Counter()
    styles: Counter[str] = Counter()
    for r in read_records(tmp_path / "out" / "records.jsonl"):
        assert r.meta.verification is not None and r.meta.verification.status == "passed"
        layout = r.meta.view["layout"]  # type: ignore[index]
        positions[layout["order"].index(0)] += 1  # where the (one) correct option is shown
        styles[layout["labels"]] += 1
    n = len(CHOICE["correct"]) + len(CHOICE["distractors"])
    assert sorted(positions) == list(range(n))
    for count in positions.values():
        assert abs(count / 1000 - 1 / n) <= 0.05, positions
    # the run's summary reports the same distribution
    assert summary.positions == {POSITIONS[p]: n for p, n in positions.items()}
    assert "correct option's position in 1000 multiple-choice records: " in (
        summary.verification_line()
    )
    assert set(styles) == {"upper_paren", "lower_paren", "number_dot"}


# -- diversity drawn in code --------------------------------------------------------------
@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def test_slots_hold_the_vary_values_and_distinct_stems(taxonomy: Taxonomy) -> None:
    rng = random.Random(4)
    checked = 0
    for skill in (taxonomy.skills[s] for s in taxonomy.ready_skills()):
        for item in skill.task_types:
            if not item.vary and not item.stems:
                continue
            checked += 1
            seen: dict[str, set[str]] = {name: set() for name in item.vary}
            for _ in range(400):
                slots = draw_slots(skill, item, rng, 2)
                assert len(slots) == 2
                for slot in slots:
                    assert set(slot) == set(item.vary) | ({"stem"} if item.stems else set())
                    for name in item.vary:
                        assert slot[name] in skill.vary[name].values
                        seen[name].add(slot[name])
                if item.stems:
                    assert slots[0]["stem"] != slots[1]["stem"], item.id
                    assert {s["stem"] for s in slots} <= set(item.stems)
            for name in item.vary:
                assert seen[name] == set(skill.vary[name].values), (skill.id, item.id, name)
            if item.stems:
                every = draw_slots(skill, item, rng, len(item.stems))
                assert sorted(s["stem"] for s in every) == sorted(item.stems), item.id
    assert checked >= 20


def test_a_drawn_target_format_fixes_the_keys_format(taxonomy: Taxonomy) -> None:
    """``format_target``'s ``key`` reaches the text-formatting writer: a task drawn as a
    table must be keyed as one, one drawn as sections must not be."""
    skill = taxonomy.skills["text_modification"]
    item = next(t for t in skill.task_types if t.id == "text_formatting")
    keys = slot_keys(skill, item)
    assert keys["format_target"]["a Markdown table with named columns"] == {
        "format": "markdown_table"
    }
    assert keys["format_target"]["sections under headings given in the instruction"] == {
        "format": "any"
    }
    assert "a two-column glossary" not in keys["format_target"]  # either form is right
    assert "request_framing" not in keys


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ({"Octopus": {"format": "json"}}, "key: 'Octopus' is not one of the values"),
        ({"Table": {"colour": "red"}}, 'no key kind of the task type (constraints) has "colour"'),
        ({"Table": {"format": "yaml"}}, "'yaml' is not a value of \"format\""),
    ],
)
def test_a_vary_lists_key_is_checked_when_the_taxonomy_loads(
    tmp_path: Path, key: dict[str, Any], error: str
) -> None:
    text = {
        "version": 1,
        "name": "t",
        "vary": {"form": {"values": ["Table", "Prose"], "key": key}},
        "skills": {
            "tm": {
                "name": "TM",
                "task_types": [
                    {"id": "fmt", "name": "Fmt", "key": ["constraints"], "vary": ["form"]}
                ],
            }
        },
    }
    path = tmp_path / "t.yaml"
    path.write_text(json.dumps(text), encoding="utf-8")
    with pytest.raises(Exception, match=re.escape(error)):
        load_taxonomy(path)


def test_the_student_side_draws_every_variant(taxonomy: Taxonomy) -> None:
    kinds = KeyKinds()
    key = ChoiceKey.model_validate(CHOICE)
    for skill_id in ("rc", "text_modification"):
        student = taxonomy.skills[skill_id].student
        assert student.system_prompts is not None and student.framings is not None
        rng = random.Random(skill_id)
        views = [draw_view(student, key, kinds, rng) for _ in range(3000)]
        systems = Counter(v.system for v in views)
        assert set(systems) == set(student.system_prompts.values)
        assert "" in systems, "the empty system prompt of orca-agentinstruct-1M"
        weights = student.system_prompts.weights
        assert weights is not None
        share = weights[0] / sum(weights)
        assert abs(systems[""] / 3000 - share) < 0.03
        assert {v.framing for v in views} == set(student.framings.values)
        delimiters = {(v.delimiter.open, v.delimiter.close) for v in views if v.delimiter}
        assert delimiters == {(d.open, d.close) for d in student.delimiters}
        assert {v.layout.labels for v in views} == set(student.label_styles)
    tm = taxonomy.skills["text_modification"].student.framings
    assert tm is not None and all(f.startswith("text_modification/") for f in tm.values)
