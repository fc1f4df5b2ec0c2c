"""The LLM judge (``genteach judge``): render, parse, failures, threshold, resume, CLI errors.

Every model here is a ScriptedModel: no network. Golden snapshots of the judge's rendered
prompt for rc, code_ and tool_use live in tests/golden/judge/ (``--update-golden``).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from genteach.agents.parsing import ParseError
from genteach.cli import main
from genteach.judge import (
    BELOW_FILE,
    CRITERIA,
    KEPT_FILE,
    SUMMARY_FILE,
    VERDICTS_FILE,
    JudgeAgent,
    JudgeAnswer,
    judge_input,
    judge_one,
    judge_records,
    judge_run,
    key_text,
    last_assistant_turn,
    read_verdicts,
    rubric_for,
)
from genteach.keys import Verification
from genteach.models.base import Message
from genteach.models.scripted import ScriptedModel
from genteach.prompts import PromptLibrary
from genteach.records import Record, RecordMeta
from genteach.taxonomy import load_taxonomy

GOLDEN = Path(__file__).parent / "golden" / "judge"
PASSAGE = (
    "The city of Lowmarsh claims that its new harbour tunnel cut commuting times by a third. "
    "Critics reply that a bus strike in the earlier year inflated the before figures."
)


def make_record(
    rid: str,
    answer: str = "The strike inflated the counts.\nFinal answer: (B)",
    *,
    skill: str = "rc",
    sub: str = "weaken",
    key: dict[str, Any] | None = None,
    view: dict[str, Any] | None = None,
    verification: Verification | None = None,
    messages: Sequence[Message] | None = None,
) -> Record:
    msgs: list[Message] = (
        list(messages)
        if messages is not None
        else [
            {"role": "system", "content": ""},
            {
                "role": "user",
                "content": f"<passage>\n{PASSAGE}\n</passage>\nWhat weakens the claim?",
            },
            {"role": "assistant", "content": answer},
        ]
    )
    meta = RecordMeta(
        skill=skill,
        sub_category=sub,
        seed_id="s1",
        unit=f"{skill}:s1",
        agents=["a"],
        teacher="scripted",
        usage={},
        task_id=rid,
        key=key,
        view=view,
        verification=verification,
    )
    return Record(id=rid, messages=msgs, meta=meta)


def grade(each: int, **over: Any) -> str:
    obj: dict[str, Any] = {c: {"score": each, "reason": f"{c} is fine"} for c in CRITERIA}
    obj.update(score=each, verdict=f"Graded {each}.")
    obj.update(over)
    return json.dumps(obj)


def by_answer(messages: Sequence[Message]) -> str:
    """A judge that gives the number written as SCORE=n in the answer it grades."""
    text = messages[-1]["content"]
    answer = text.split("<<<ANSWER", 1)[1]
    found = re.search(r"SCORE=(\d+)", answer)
    return grade(int(found.group(1)) if found else 5)


CHOICE = {
    "kind": "choice",
    "correct": ["A bus strike inflated the earlier counts."],
    "distractors": ["The tunnel is long.", "Tolls are high.", "Ferries run hourly."],
    "explanation": "The strike undermines the comparison.",
}


# -- parse ---------------------------------------------------------------------------------
def test_parse_good_answer() -> None:
    judge = JudgeAgent(prompts=PromptLibrary())
    out = judge.parse("Here it is:\n" + grade(8, score=7))
    assert isinstance(out, JudgeAnswer)
    assert out.score == 7
    assert {k: c.score for k, c in out.criteria().items()} == dict.fromkeys(CRITERIA, 8)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json at all", "no JSON object"),
        (grade(11), "score"),
        (grade(7, score=7.5), "score"),
        (
            json.dumps({"correctness": {"score": 5, "reason": "x"}, "score": 5, "verdict": "v"}),
            "faithfulness",
        ),
        (grade(7, extra="field"), "extra"),
        (
            grade(9, **{c: {"score": 9, "reason": "The answer is correct."} for c in CRITERIA}),
            "every criterion has the same reason",
        ),
        (grade(7)[:-20], ""),
    ],
)
def test_parse_malformed_answers(text: str, reason: str) -> None:
    judge = JudgeAgent(prompts=PromptLibrary())
    with pytest.raises(ParseError) as err:
        judge.parse(text)
    assert reason in err.value.reason


def test_malformed_answer_is_repaired() -> None:
    model = ScriptedModel(["oops, no json", grade(9)])
    judge = JudgeAgent(prompts=PromptLibrary())
    v = asyncio.run(judge_one(judge, model, make_record("r1")))
    assert v.score == 9 and v.passed and v.error is None
    assert len(model.calls) == 2
    assert "oops, no json" in model.calls[1][-2]["content"]  # the repair shows the answer


def test_answer_that_stays_malformed_is_a_failed_row() -> None:
    model = ScriptedModel(["no", "still no", "nope"])
    judge = JudgeAgent(prompts=PromptLibrary(), max_parse_retries=2)
    v = asyncio.run(judge_one(judge, model, make_record("r1")))
    assert v.failed and v.score is None and not v.passed
    assert v.error is not None and v.error.startswith("judge failed: malformed answer")
    assert v.usage["calls"] == 3


def test_declined_answer_is_a_failed_row() -> None:
    model = ScriptedModel(['{"skip": true, "reason": "cannot read it"}'])
    v = asyncio.run(judge_one(JudgeAgent(prompts=PromptLibrary()), model, make_record("r1")))
    assert v.failed and "cannot read it" in (v.error or "")


def test_record_without_assistant_turn_fails_without_a_call() -> None:
    rec = make_record("r1", messages=[{"role": "user", "content": "hi"}])
    model = ScriptedModel([])
    v = asyncio.run(judge_one(JudgeAgent(prompts=PromptLibrary()), model, rec))
    assert v.failed and "no assistant turn" in (v.error or "") and not model.calls


# -- render --------------------------------------------------------------------------------
def test_every_skill_has_a_rubric() -> None:
    prompts = PromptLibrary()
    for skill in load_taxonomy().skills:
        assert rubric_for(prompts, skill) == f"judge/rubrics/{skill}.j2"
    assert rubric_for(prompts, "my_new_skill") == "judge/rubrics/default.j2"


def test_key_and_verification_are_shown() -> None:
    rec = make_record(
        "r1",
        key=CHOICE,
        view={"layout": {"order": [1, 0, 2, 3], "labels": "upper_paren"}},
        verification=Verification(kind="choice", status="passed", detail="(B)", answer="(B)"),
    )
    text, shown = key_text(rec.meta.key, rec.meta.view)
    assert "A bus strike inflated" in text and shown.startswith("(B)")
    prompts = PromptLibrary()
    user = JudgeAgent(prompts=prompts).render(judge_input(rec, prompts=prompts))[1]["content"]
    assert "<<<KEY" in user and "found that it matches ((B))" in user
    # A student's answer in the record's place is not said to be checked.
    other = judge_input(rec, prompts=prompts, answer="Final answer: (C)")
    assert other.verification is None and other.answer == "Final answer: (C)"
    assert (
        "no answer key"
        in JudgeAgent(prompts=prompts).render(judge_input(make_record("r2"), prompts=prompts))[1][
            "content"
        ]
    )


def test_last_assistant_turn_skips_empty_turns() -> None:
    msgs: list[Message] = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "  "},
    ]
    assert last_assistant_turn(msgs) == 1


def _golden_records() -> dict[str, Record]:
    code_msgs: list[Message] = [
        {"role": "system", "content": "You are a careful Python programmer."},
        {"role": "user", "content": "Write `add(a, b)` returning the sum of two integers."},
        {"role": "assistant", "content": "```python\ndef add(a, b):\n    return a + b\n```"},
    ]
    tool_msgs: list[Message] = [
        {"role": "system", "content": "Tools: get_weather(city: str) -> forecast."},
        {"role": "user", "content": "Will it rain in Lowmarsh tomorrow?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "name": "get_weather", "arguments": '{"city": "Lowmarsh"}'}
            ],
        },
        {"role": "tool", "content": '{"rain": 0.8}', "tool_call_id": "c1", "name": "get_weather"},
        {"role": "assistant", "content": "Likely: the forecast gives an 80% chance of rain."},
    ]
    return {
        "rc": make_record(
            "g-rc",
            key=CHOICE,
            view={"layout": {"order": [0, 1, 2, 3], "labels": "upper_paren"}},
            verification=Verification(kind="choice", status="passed", detail="(A)"),
        ),
        "code_": make_record(
            "g-code",
            skill="code_",
            sub="implement_function",
            messages=code_msgs,
            key={"kind": "program_tests", "tests": "assert add(2, 3) == 5", "language": "python"},
            verification=Verification(kind="program_tests", status="unchecked", detail="no run"),
        ),
        "tool_use": make_record("g-tool", skill="tool_use", sub="single_call", messages=tool_msgs),
    }


@pytest.mark.parametrize("skill", ["rc", "code_", "tool_use"])
def test_golden_judge_prompt(skill: str, update_golden: bool) -> None:
    prompts = PromptLibrary()
    rec = _golden_records()[skill]
    messages = JudgeAgent(prompts=prompts).render(
        judge_input(rec, prompts=prompts, skill_name=skill)
    )
    text = "".join(f"===== {m['role']}\n{m['content']}\n" for m in messages)
    # Not .txt: tests/test_golden_prompts.py owns every tests/golden/**/*.txt (and removes
    # the ones it does not render when it updates).
    path = GOLDEN / f"{skill}.prompt"
    if update_golden:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with --update-golden"
    assert text == path.read_text(encoding="utf-8")


# -- runs ------------------------------------------------------------------------------------
def _records() -> list[Record]:
    return [
        make_record("good1", "Right.\nSCORE=9"),
        make_record("good2", "Right.\nSCORE=6", skill="mcq", sub="single"),
        make_record("bad1", "Wrong.\nSCORE=3"),
    ]


def test_judge_records_library_api() -> None:
    verdicts = asyncio.run(judge_records(_records(), ScriptedModel(by_answer), threshold=7))
    assert [(v.id, v.score, v.passed) for v in verdicts] == [
        ("good1", 9, True),
        ("good2", 6, False),
        ("bad1", 3, False),
    ]


def test_threshold_filter_and_files(tmp_path: Path) -> None:
    model = ScriptedModel(by_answer, name="judge-model")
    report = asyncio.run(judge_run(_records(), tmp_path, model, threshold=6))
    kept = [json.loads(x)["id"] for x in (tmp_path / KEPT_FILE).read_text().splitlines()]
    below = [json.loads(x)["id"] for x in (tmp_path / BELOW_FILE).read_text().splitlines()]
    assert sorted(kept) == ["good1", "good2"] and below == ["bad1"]
    row = json.loads((tmp_path / VERDICTS_FILE).read_text().splitlines()[0])
    for name in ("id", "skill", "sub_category", "scores", "score", "reasons", "verdict",
                 "passed", "judge", "usage"):  # fmt: skip
        assert name in row
    assert row["judge"] == "judge-model" and set(row["scores"]) == set(CRITERIA)
    summary = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert summary["by_skill"]["rc"] == {
        "judged": 2, "passed": 1, "failures": 0, "mean_score": 6.0
    }  # fmt: skip
    assert report.passed == 2 and report.usage.calls == 3
    assert (tmp_path / "cache.sqlite").exists()
    assert "rc" in report.format()


def test_rerun_makes_no_calls_and_applies_a_new_threshold(tmp_path: Path) -> None:
    asyncio.run(judge_run(_records(), tmp_path, ScriptedModel(by_answer), threshold=6))
    again = ScriptedModel([])
    report = asyncio.run(judge_run(_records(), tmp_path, again, threshold=8))
    assert again.calls == [] and report.new == 0 and report.judged == 3
    kept = [json.loads(x)["id"] for x in (tmp_path / KEPT_FILE).read_text().splitlines()]
    assert kept == ["good1"]
    assert [v.passed for v in read_verdicts(tmp_path / VERDICTS_FILE)] == [True, False, False]


def test_resume_after_an_interruption(tmp_path: Path) -> None:
    records = _records()
    asyncio.run(judge_run(records[:1], tmp_path, ScriptedModel(by_answer)))
    with (tmp_path / VERDICTS_FILE).open("a") as fh:
        fh.write('{"id": "torn')  # a line cut by a kill
    model = ScriptedModel(by_answer)
    report = asyncio.run(judge_run(records, tmp_path, model))
    assert len(model.calls) == 2 and report.new == 2
    assert sorted(v.id for v in read_verdicts(tmp_path / VERDICTS_FILE)) == [
        "bad1", "good1", "good2"
    ]  # fmt: skip


def test_failed_rows_are_kept_and_retried_on_request(tmp_path: Path) -> None:
    rec = [make_record("r1", "SCORE=8")]
    asyncio.run(judge_run(rec, tmp_path, ScriptedModel(["x", "y", "z"])))
    v = read_verdicts(tmp_path / VERDICTS_FILE)[0]
    assert v.failed and not (tmp_path / KEPT_FILE).read_text()
    assert not (tmp_path / BELOW_FILE).read_text()  # a failure is not "below"
    model = ScriptedModel(by_answer)
    asyncio.run(judge_run(rec, tmp_path, model, retry_failed=True))
    assert read_verdicts(tmp_path / VERDICTS_FILE)[0].score == 8


# -- command line ----------------------------------------------------------------------------
def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["judge", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text("")
    assert main(["judge", str(run)]) == 2
    assert "no records to judge" in capsys.readouterr().err
    assert main(["judge", str(run), "--threshold", "11"]) == 2
    assert "--threshold" in capsys.readouterr().err
    (run / "records.jsonl").write_text(_records()[0].model_dump_json() + "\n")
    assert main(["judge", str(run), "--skills", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown skill nope" in err and len(err.strip().splitlines()) == 1


def test_cli_help_lists_the_model_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["judge", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--threshold", "--model", "--base-url", "--local-model", "--concurrency",
                 "--rpm", "--tpm", "--prices"):  # fmt: skip
        assert flag in out


@pytest.mark.slow
def test_a_10k_row_run_is_judged_then_resumed_without_calls(tmp_path: Path) -> None:
    """10,000 records of four skills through the whole judge (agent, parser, cache, files);
    the rerun reads every verdict back and asks nothing."""
    skills = ("rc", "mcq", "tool_use", "code_")
    records = [
        make_record(f"r{i}", f"Answer {i}.\nSCORE={i % 11}", skill=skills[i % 4], sub=f"s{i % 7}")
        for i in range(10_000)
    ]
    model = ScriptedModel(by_answer, name="judge-model")
    report = asyncio.run(judge_run(records, tmp_path, model, threshold=6))
    assert report.judged == report.new == 10_000 and len(model.calls) == 10_000
    kept = (tmp_path / KEPT_FILE).read_text().splitlines()
    assert len(kept) == sum(1 for i in range(10_000) if i % 11 >= 6)
    summary = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert sum(s["judged"] for s in summary["by_skill"].values()) == 10_000
    again = ScriptedModel([])
    assert asyncio.run(judge_run(records, tmp_path, again, threshold=6)).new == 0
    assert again.calls == []
