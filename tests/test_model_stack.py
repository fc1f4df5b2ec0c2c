"""One model stack for generate, judge and eval (:mod:`genteach.models.stack`).

The three commands take the same call settings (flags, defaults, help) and build the same
resilient + cached client from them; ``genteach judge`` and ``genteach eval run`` against
a loopback endpoint that goes down stop at the outage deadline with exit 4, keep what they
wrote, and the same command then finishes the work.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from fault_server import FaultPlan, Outage, fault_server
from genteach import RunSettings
from genteach.cli import main
from genteach.judge import CRITERIA, VERDICTS_FILE
from genteach.models import CallSettings, ModelStack, ResilientModel, ScriptedModel
from genteach.models.base import Message, ModelRequest, message
from genteach.records import Record, RecordMeta

CALL_FIELDS = list(CallSettings.__pydantic_fields__)


def flags_of(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", help_text))


def call_flags() -> set[str]:
    out = set()
    for name, info in CallSettings.__pydantic_fields__.items():
        flag = "--" + name.replace("_", "-")
        out.add("--no-" + flag[2:] if info.default is True else flag)
    return out


# -- the settings and the stack ---------------------------------------------------------
def test_generate_judge_and_eval_share_the_call_settings() -> None:
    assert issubclass(RunSettings, CallSettings)
    run, calls = RunSettings(), CallSettings()
    for name in CALL_FIELDS:
        assert getattr(run, name) == getattr(calls, name), name
    assert {"outage_deadline", "breaker_threshold", "backoff", "adaptive"} <= set(CALL_FIELDS)


def test_every_setting_reaches_the_resilient_model(tmp_path: Path) -> None:
    settings = CallSettings(
        concurrency=3,
        adaptive=False,
        rpm=60,
        tpm=6000,
        max_retries=7,
        timeout=12.0,
        backoff=0.5,
        outage_deadline=42.0,
        breaker_threshold=9,
        max_probe_interval=4.0,
    )
    stack = ModelStack.open(ScriptedModel(["a"]), settings, cache_path=tmp_path / "c.sqlite")
    r = stack.resilient
    assert isinstance(r, ResilientModel) and stack.client is not r and stack.cache is not None
    assert (r.limiter.limit, r.limiter.adaptive) == (3, False)
    assert (r.rate.rpm, r.rate.tpm) == (60, 6000)
    assert (r.max_retries, r.timeout, r.base_delay) == (7, 12.0, 0.5)
    b = r.breaker
    assert (b.threshold, b.deadline, b.max_probe_interval, b.probe_interval) == (9, 42.0, 4.0, 0.5)
    asyncio.run(stack.close())


def test_the_cache_answers_a_second_stack_and_no_cache_means_none(tmp_path: Path) -> None:
    request = ModelRequest(messages=[message("user", "Hi?")], temperature=0.0)

    async def ask(model: ScriptedModel, cache: Path | None) -> tuple[str, int]:
        stack = ModelStack.open(model, cache_path=cache)
        text = (await stack.client.complete(request)).text
        hits = stack.cached_calls
        await stack.close()
        return text, hits

    path = tmp_path / "cache.sqlite"
    assert asyncio.run(ask(ScriptedModel(["Hello."]), path)) == ("Hello.", 0)
    again = ScriptedModel([])
    assert asyncio.run(ask(again, path)) == ("Hello.", 1) and again.calls == []
    bare = ModelStack.open(ScriptedModel(["x"]))
    assert bare.cache is None and bare.client is bare.resilient and bare.cached_calls == 0


def test_a_pipeline_leaves_its_teacher_open(tmp_path: Path) -> None:
    """The pipeline closes its cache, not the caller's model (the judge closes its own)."""
    closed: list[bool] = []

    class Model(ScriptedModel):
        async def close(self) -> None:
            closed.append(True)

    stack = ModelStack.open(Model(["x"]), cache_path=tmp_path / "c.sqlite")
    asyncio.run(stack.close(close_client=False))
    assert closed == []
    asyncio.run(stack.close())
    assert closed == [True]


# -- the command lines ------------------------------------------------------------------
def help_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def test_judge_and_eval_take_generate_s_call_flags(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one help line per flag
    generate = help_of(["generate", "--help"], capsys)
    judge = help_of(["judge", "--help"], capsys)
    evaluate = help_of(["eval", "run", "--help"], capsys)
    wanted = call_flags()
    assert "--outage-deadline" in wanted and "--no-adaptive" in wanted
    for text in (generate, judge, evaluate):
        assert wanted <= flags_of(text)
        for info in CallSettings.__pydantic_fields__.values():
            assert info.description is not None and info.description in text  # the same help


def test_a_call_flag_out_of_range_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "run", 1)
    assert main(["judge", str(run), "--concurrency", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("genteach: error: --concurrency 0: ")
    assert main(["judge", str(run), "--outage-deadline", "-1"]) == 2
    assert "--outage-deadline -1" in capsys.readouterr().err


# -- an endpoint that goes down -----------------------------------------------------------
def make_record(i: int) -> Record:
    meta = RecordMeta(
        skill="rc",
        sub_category="inference",
        seed_id=f"s{i}",
        unit=f"rc/s{i}",
        agents=["a"],
        teacher="scripted",
        usage={},
        task_id=f"t{i}",
    )
    msgs: list[Message] = [
        message("user", f"Question {i}: what does the report say?"),
        message("assistant", f"Answer {i}: the counts rose."),
    ]
    return Record(id=f"r{i}", messages=msgs, meta=meta)


def write_run(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(make_record(i).model_dump_json() + "\n" for i in range(n))
    (folder / "records.jsonl").write_text(rows, encoding="utf-8")
    return folder


def router(messages: Sequence[Message]) -> str:
    """A judge that gives every answer 8; a student that answers in one line."""
    if "<<<ANSWER" not in messages[-1]["content"]:
        return "The counts rose."
    grade: dict[str, object] = {c: {"score": 8, "reason": f"{c} holds"} for c in CRITERIA}
    grade.update(score=8, verdict="Sound.")
    return json.dumps(grade)


def call_args(url: str, *extra: str) -> list[str]:
    """Flags of a fast-failing client: the breaker opens after 3 failures, probes every
    0.05 s at most, and gives up 0.3 s after it opened; a call is retried 20 times, so
    the deadline comes first."""
    return [
        "--base-url", url, "--model", "fault-model", "--api-key", "k", "--concurrency", "1",
        "--timeout", "2", "--max-retries", "20", "--backoff", "0.01",
        "--breaker-threshold", "3", "--max-probe-interval", "0.05", *extra,
    ]  # fmt: skip


def verdict_ids(path: Path) -> list[str]:
    return [json.loads(x)["id"] for x in path.read_text(encoding="utf-8").splitlines()]


def test_judge_stops_at_the_outage_deadline_keeps_its_verdicts_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "run", 4)
    verdicts = run / "judge" / VERDICTS_FILE
    plan = FaultPlan(outage=Outage(after=2, seconds=60.0, kind="502"))
    with fault_server(router, plan) as srv:
        code = main(["judge", str(run), *call_args(srv.url, "--outage-deadline", "0.3")])
    assert code == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert "past the outage deadline of 0.3s" in err[-1] and "HTTP 502" in err[-1]
    assert srv.answered == 2 and srv.faults["502"] >= 3
    assert verdict_ids(verdicts) == ["r0", "r1"], "the verdicts before the outage are kept"
    kept = (run / "judge" / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(kept) == 2  # the kept records are written from them, too
    with fault_server(router) as srv:
        assert main(["judge", str(run), *call_args(srv.url)]) == 0
    assert srv.answered == 2, "only the records not judged yet are asked about"
    assert sorted(verdict_ids(verdicts)) == ["r0", "r1", "r2", "r3"]
    assert "4 judged (2 this run)" in capsys.readouterr().out


def test_eval_stops_at_the_outage_deadline_keeps_its_answers_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "run", 4)
    assert main(["eval", "split", str(run), "--per-skill", "3"]) == 0
    answers = run / "eval" / "s" / "answers.jsonl"
    plan = FaultPlan(outage=Outage(after=1, seconds=60.0, kind="503"))
    with fault_server(router, plan) as srv:
        student = f"s={srv.url}#fault-model"
        code = main(
            ["eval", "run", str(run), "--student", student,
             *call_args(srv.url, "--outage-deadline", "0.3")]
        )  # fmt: skip
    assert code == 4
    assert "past the outage deadline of 0.3s" in capsys.readouterr().err
    assert len(answers.read_text(encoding="utf-8").splitlines()) == 1
    with fault_server(router) as srv:
        student = f"s={srv.url}#fault-model"
        assert main(["eval", "run", str(run), "--student", student, *call_args(srv.url)]) == 0
    assert len(answers.read_text(encoding="utf-8").splitlines()) == 3
    assert srv.answered == 2 + 3 * 2  # the 2 missing answers, then 3 teacher + 3 student scores
