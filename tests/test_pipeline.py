"""Pipeline runtime: resume, rejects, retries, reproducibility, event loops."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from genteach import Pipeline, RunSettings, ScriptedModel, TransientModelError, read_records
from genteach.models.base import Completion, Message, ModelRequest, Usage
from genteach.pipeline import UNIT_RETRIES
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from genteach.taxonomy import Taxonomy, load_taxonomy
from scripted_teacher import Teacher

MINI = """
name: mini
skills:
  mini:
    name: Mini Skill
    status: ready
    seed_kinds: [text]
    transformers:
      - {id: identity, name: Identity, agent: identity}
    task_types:
      - {id: alpha, name: Alpha Questions, guidance: t/guide.j2, weight: 1}
      - {id: beta, name: Beta Questions, guidance: t/guide.j2, weight: 1}
    refinement_goals:
      - {id: unanswerable, name: Unanswerable, description: remove the needed fact}
    pipeline:
      - {flow: content_transformation}
      - {flow: seed_instruction, task_types_per_seed: 1, tasks_per_type: 2}
      - {flow: response}
"""


@pytest.fixture
def mini(tmp_path: Path, guidance_dir: Path) -> tuple[Path, PromptLibrary]:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI)
    return path, PromptLibrary([guidance_dir])


def seeds(n: int) -> list[Seed]:
    return [
        Seed.from_text(f"Document number {i}. " + "Some facts about tunnels. " * 10)
        for i in range(n)
    ]


def make(mini: tuple[Path, PromptLibrary], client: object, **kw: object) -> Pipeline:
    return Pipeline(client, taxonomy=mini[0], prompts=mini[1], settings=RunSettings(**kw))  # type: ignore[arg-type]


def lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_resume_skips_done_units_and_never_duplicates(
    tmp_path: Path, mini: tuple[Path, PromptLibrary]
) -> None:
    out = tmp_path / "out"
    first = make(mini, ScriptedModel(Teacher()), limit=3).run(seeds(5), out)
    assert (first.units_done, first.records) == (3, 6)
    teacher = Teacher()
    second = make(mini, ScriptedModel(teacher)).run(seeds(5), out)
    assert second.units_resumed == 3 and second.records == 4
    assert teacher.calls["instruct"] == 2, "finished units are not redone"
    third = make(mini, ScriptedModel(Teacher())).run(seeds(5), out)
    assert third.records == 0 and third.units_resumed == 5
    ids = [r["id"] for r in lines(out / "records.jsonl")]
    assert len(ids) == 10 == len(set(ids))
    assert len(lines(out / "progress.jsonl")) == 5


def test_torn_last_line_is_dropped_and_unit_redone(
    tmp_path: Path, mini: tuple[Path, PromptLibrary]
) -> None:
    out = tmp_path / "out"
    make(mini, ScriptedModel(Teacher())).run(seeds(2), out)
    # Simulate a crash while writing: a half line, and the unit's progress line missing.
    progress = lines(out / "progress.jsonl")
    (out / "progress.jsonl").write_text(json.dumps(progress[0]) + "\n")
    with (out / "records.jsonl").open("a") as fh:
        fh.write('{"id": "torn", "messa')
    again = make(mini, ScriptedModel(Teacher())).run(seeds(2), out)
    assert again.units_done == 2 and again.units_resumed == 1
    # The redone unit's lines were dropped with the torn one, then written again.
    assert again.records == 2 and again.duplicates == 0
    rows = lines(out / "records.jsonl")
    assert len(rows) == 4 and all(r["id"] != "torn" for r in rows)


def test_same_seed_same_choices(tmp_path: Path, mini: tuple[Path, PromptLibrary]) -> None:
    a = make(mini, ScriptedModel(Teacher()), seed=5).run(seeds(6), tmp_path / "a")
    b = make(mini, ScriptedModel(Teacher()), seed=5).run(seeds(6), tmp_path / "b")
    c = make(mini, ScriptedModel(Teacher()), seed=6).run(seeds(6), tmp_path / "c")
    assert a.records == b.records == c.records
    ra = [r.id for r in read_records(tmp_path / "a" / "records.jsonl")]
    rb = [r.id for r in read_records(tmp_path / "b" / "records.jsonl")]
    rc = [r.id for r in read_records(tmp_path / "c" / "records.jsonl")]
    assert sorted(ra) == sorted(rb)
    assert sorted(ra) != sorted(rc), "another seed draws other task types"


def test_malformed_answers_become_rejects_and_the_run_goes_on(
    tmp_path: Path, mini: tuple[Path, PromptLibrary]
) -> None:
    def teacher(messages: Sequence[Message]) -> str:
        if (
            "Document number 1." in messages[1]["content"]
            and "task-writing" in messages[0]["content"]
        ):
            return "not json, ever"
        return Teacher()(messages)

    summary = make(mini, ScriptedModel(teacher), max_parse_retries=1).run(
        seeds(3), tmp_path / "out"
    )
    assert summary.units_done == 3 and summary.records == 4 and summary.rejects == 1
    (reject,) = lines(tmp_path / "out" / "rejects.jsonl")
    assert reject["stage"] == "seed_instruction"
    assert reject["agent"].startswith("instruct/")
    assert reject["reason"] == "malformed answer after 2 attempts: no JSON object in the answer"
    assert reject["raw"] == "not json, ever"


def test_internal_error_in_one_unit_is_a_reject(
    tmp_path: Path, mini: tuple[Path, PromptLibrary]
) -> None:
    def teacher(messages: Sequence[Message]) -> str:
        if (
            "Document number 0." in messages[-1]["content"]
            and "expert teacher" in messages[0]["content"]
        ):
            raise ZeroDivisionError("boom")
        return Teacher()(messages)

    summary = make(mini, ScriptedModel(teacher)).run(seeds(2), tmp_path / "out")
    assert summary.units_done == 2 and summary.records == 2
    reasons = {r["reason"] for r in lines(tmp_path / "out" / "rejects.jsonl")}
    assert reasons == {"internal error: ZeroDivisionError: boom"}


class Flaky:
    """Fails each call's first attempt with a transient error."""

    model_name = "flaky"

    def __init__(self) -> None:
        self.inner = ScriptedModel(Teacher())
        self.seen: set[str] = set()
        self.failures = 0

    async def complete(self, request: ModelRequest) -> Completion:
        key = json.dumps(list(request.messages))
        if key not in self.seen:
            self.seen.add(key)
            self.failures += 1
            raise TransientModelError("503 Service Unavailable", retry_after=0.0)
        return await self.inner.complete(request)

    async def close(self) -> None: ...


def test_transient_errors_are_retried(
    tmp_path: Path, mini: tuple[Path, PromptLibrary], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("genteach.models.resilient.random.uniform", lambda a, b: 0.0)
    flaky = Flaky()
    summary = make(mini, flaky).run(seeds(2), tmp_path / "out")
    assert summary.records == 4 and summary.rejects == 0
    assert flaky.failures == 2 + 4  # one per distinct call: 2 instruct + 4 respond


def test_transient_errors_exhausted_leave_units_unfinished(
    tmp_path: Path, mini: tuple[Path, PromptLibrary], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("genteach.models.resilient.random.uniform", lambda a, b: 0.0)

    class Down:
        model_name = "down"
        calls = 0

        async def complete(self, request: ModelRequest) -> Completion:
            self.calls += 1
            raise TransientModelError("429 Too Many Requests", retry_after=0.0)

        async def close(self) -> None: ...

    down = Down()
    out = tmp_path / "out"
    summary = make(mini, down, max_retries=2, breaker_threshold=0).run(seeds(2), out)
    assert (summary.units_done, summary.units_unfinished, summary.rejects) == (0, 2, 0)
    assert "2 units left unfinished" in str(summary)
    assert not lines(out / "progress.jsonl") and not lines(out / "rejects.jsonl")
    # each unit's first call: tried 3 times, in the first pass and in UNIT_RETRIES more
    assert down.calls == 2 * 3 * (1 + UNIT_RETRIES)
    again = make(mini, ScriptedModel(Teacher()), max_retries=2).run(
        seeds(2), out, accept_changes=True
    )
    assert (again.units_done, again.records, again.units_unfinished) == (2, 4, 0)


def test_call_timeout_is_transient(
    tmp_path: Path, mini: tuple[Path, PromptLibrary], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("genteach.models.resilient.random.uniform", lambda a, b: 0.0)

    class Slow:
        model_name = "slow"

        async def complete(self, request: ModelRequest) -> Completion:
            await asyncio.sleep(5)
            return Completion("x", Usage())

        async def close(self) -> None: ...

    settings = {"timeout": 0.05, "max_retries": 1, "breaker_threshold": 0}
    summary = make(mini, Slow(), **settings).run(seeds(1), tmp_path / "out")
    assert summary.units_unfinished == 1 and summary.records == 0
    assert not lines(tmp_path / "out" / "rejects.jsonl")


async def test_arun_inside_a_running_loop_and_sync_run_too(
    tmp_path: Path, mini: tuple[Path, PromptLibrary]
) -> None:
    summary = await make(mini, ScriptedModel(Teacher())).arun(seeds(2), tmp_path / "a")
    assert summary.records == 4
    # The sync API also works while a loop is running (as in a notebook cell).
    sync = make(mini, ScriptedModel(Teacher())).run(seeds(2), tmp_path / "b")
    assert sync.records == 4


def test_resume_with_other_settings_is_refused(
    tmp_path: Path, mini: tuple[Path, PromptLibrary]
) -> None:
    make(mini, ScriptedModel(Teacher()), seed=1).run(seeds(1), tmp_path / "out")
    with pytest.raises(
        ValueError, match=r"run\.json: resuming would mix two runs in one folder: seed 1 -> 2;"
    ):
        make(mini, ScriptedModel(Teacher()), seed=2).run(seeds(1), tmp_path / "out")
    fresh = make(mini, ScriptedModel(Teacher()), seed=2).run(seeds(1), tmp_path / "out", fresh=True)
    assert fresh.records == 2 and len(lines(tmp_path / "out" / "records.jsonl")) == 2


def test_progress_callback_counts(tmp_path: Path, mini: tuple[Path, PromptLibrary]) -> None:
    seen = []
    make(mini, ScriptedModel(Teacher())).run(
        seeds(3),
        tmp_path / "out",
        progress=lambda p: seen.append((p.units_done, p.records, p.usage.calls)),
    )
    units = [s[0] for s in seen]
    assert units[0] == 0 and units[-1] == 3 and units == sorted(units)
    assert len(seen) == 1 + (3 + 6) + 3, "once at start, after each of 9 calls, after each unit"
    calls = [s[2] for s in seen]
    assert calls == sorted(calls) and calls[-1] == 3 + 6, "calls count live"
    assert seen[-1][1] == 6


def test_records_load_with_datasets(tmp_path: Path, mini: tuple[Path, PromptLibrary]) -> None:
    import datasets

    make(mini, ScriptedModel(Teacher())).run(seeds(2), tmp_path / "out")
    ds = datasets.load_dataset(
        "json", data_files=str(tmp_path / "out" / "records.jsonl"), split="train"
    )
    assert ds.num_rows == 4
    assert ds[0]["messages"][0]["role"] == "user"
    assert ds[0]["meta"]["skill"] == "mini"


def test_planned_and_unknown_skills_are_refused(planned_taxonomy: Path) -> None:
    tax = load_taxonomy()
    with pytest.raises(
        ValueError,
        match=r"skill 'rag' \(Retrieval Augmented Generation\) is listed but not built yet",
    ):
        Pipeline(ScriptedModel([]), taxonomy=planned_taxonomy, skills=["rag"])
    with pytest.raises(ValueError, match=r"agentinstruct\.yaml: no skill 'nope'"):
        Pipeline(ScriptedModel([]), taxonomy=tax, skills=["nope"])


def test_stage_overrides(tmp_path: Path, mini: tuple[Path, PromptLibrary]) -> None:
    light = make(mini, ScriptedModel(Teacher()), overrides={"tasks_per_type": 1})
    assert light.run(seeds(2), tmp_path / "out").records == 2
    with pytest.raises(ValueError, match=r"--set suggestionz: no stage of skills mini has it"):
        make(mini, ScriptedModel(Teacher()), overrides={"suggestionz": 1})


def test_a_transformer_is_drawn_only_for_its_seed_kinds() -> None:
    from genteach.flows import ContentTransformationFlow
    from genteach.flows.base import WorkItem

    code = load_taxonomy().skills["code_"]
    flow = ContentTransformationFlow(code, {}, ContentTransformationFlow.Settings())
    drawn: dict[str, set[str]] = {"text": set(), "code": set()}
    for i in range(200):
        for kind, seed in (
            ("text", Seed.from_text("prose " * 20)),
            ("code", Seed.from_text("def f(x):\n    return x + 1\n", kind="code")),
        ):
            item = WorkItem(seed=seed, skill=code, rng=random.Random(i))
            chosen = flow.choose(item)
            assert chosen is not None
            drawn[kind].add(chosen.id)
    assert "identity" in drawn["code"] and "identity" not in drawn["text"]


def test_a_transformers_seed_kinds_must_be_the_skills() -> None:
    bad = {
        "name": "x",
        "skills": {
            "s": {
                "name": "S",
                "seed_kinds": ["text"],
                "task_types": [{"id": "t", "name": "T"}],
                "transformers": [{"id": "c", "name": "C", "seed_kinds": ["code"]}],
            }
        },
    }
    with pytest.raises(ValueError, match=r"transformer c: seed_kinds \['code'\] are not all"):
        Taxonomy.model_validate(bad)
