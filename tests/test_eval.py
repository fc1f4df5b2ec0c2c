"""Orca-Bench evaluation (``genteach eval``): split, exclusion from training, scores, runs.

Students and judge are ScriptedModels (no network); one slow test runs the embedded model.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from genteach.cli import main
from genteach.evaluate import (
    HELDOUT_FILE,
    SCORES_FILE,
    SUMMARY_JSON,
    SUMMARY_MD,
    TEACHER,
    Score,
    eval_run,
    held_out_ids,
    make_split,
    orca_score,
    parse_student,
    read_split,
    split_path,
    student_messages,
    summarize_scores,
    write_split,
)
from genteach.judge import CRITERIA
from genteach.models.base import Completion, FatalModelError, Message, ModelRequest
from genteach.models.scripted import ScriptedModel
from genteach.records import Record, RecordMeta


def make_record(rid: str, skill: str, sub: str, answer: str = "SCORE=8") -> Record:
    meta = RecordMeta(
        skill=skill,
        sub_category=sub,
        seed_id="s",
        unit=f"{skill}:s",
        agents=["a"],
        teacher="t",
        usage={},
        task_id=rid,
    )
    msgs: list[Message] = [
        {"role": "system", "content": ""},
        {"role": "user", "content": f"Question {rid} about {skill}?"},
        {"role": "assistant", "content": answer, "trained": True},
    ]
    return Record(id=rid, messages=msgs, meta=meta)


def make_run(folder: Path, per: int = 6) -> list[Record]:
    """A run folder: rc with sub-categories a and b, mcq with c."""
    recs = [make_record(f"rc-a{i}", "rc", "a") for i in range(per)]
    recs += [make_record(f"rc-b{i}", "rc", "b") for i in range(2)]
    recs += [make_record(f"mcq-{i}", "mcq", "c") for i in range(per)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "records.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in recs))
    return recs


def grade(messages: Sequence[Message]) -> str:
    """A judge giving the n of SCORE=n in the graded answer (5 without one)."""
    answer = messages[-1]["content"].split("<<<ANSWER", 1)[1]
    found = re.search(r"SCORE=(\d+)", answer)
    n = int(found.group(1)) if found else 5
    obj = {c: {"score": n, "reason": f"{c} ok"} for c in CRITERIA}
    return json.dumps({**obj, "score": n, "verdict": "fine"})


# -- split -------------------------------------------------------------------------------------
def test_split_is_deterministic_and_stratified() -> None:
    recs = [make_record(f"rc-a{i}", "rc", "a") for i in range(10)]
    recs += [make_record(f"rc-b{i}", "rc", "b") for i in range(2)]
    one, held = make_split(recs, 2, seed=3)
    two, _ = make_split(list(reversed(recs)), 2, seed=3)
    assert one.ids == two.ids
    assert sorted(r.meta.sub_category for r in held) == ["a", "b"]
    other = {tuple(make_split(recs, 2, seed=s)[0].ids) for s in range(6)}
    assert len(other) > 1  # the seed matters
    assert one.counts == {"rc": {"held_out": 2, "total": 12}}


def test_split_errors() -> None:
    with pytest.raises(ValueError, match="no records"):
        make_split([], 2)
    with pytest.raises(ValueError, match="at least 1"):
        make_split([make_record("x", "rc", "a")], 0)
    with pytest.raises(ValueError, match="unknown skill nope"):
        make_split([make_record("x", "rc", "a")], 1, skills=["nope"])


def test_write_split_files_and_exclusion_by_id(tmp_path: Path) -> None:
    run = tmp_path / "run"
    recs = make_run(run)
    split = write_split(run, 3, seed=1)
    assert split_path(run).is_file() and (run / "eval" / HELDOUT_FILE).is_file()
    _, held = read_split(run)
    assert [r.id for r in held] == split.ids and len(held) == 6
    assert held_out_ids(run) == set(split.ids)
    assert held_out_ids(run / "records.jsonl") == set(split.ids)
    assert held_out_ids(tmp_path) == set()
    with pytest.raises(ValueError, match="--overwrite"):
        write_split(run, 3)
    assert write_split(run, 1, overwrite=True).ids != split.ids
    assert len(recs) == 14


@pytest.mark.parametrize("as_file", [False, True])
def test_training_loader_drops_held_out_records(
    tmp_path: Path, as_file: bool, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("datasets")
    from genteach.train.data import SourceConfig, load_source

    run = tmp_path / "run"
    recs = make_run(run)
    (run / "rejects.jsonl").write_text('{"unit": "x"}\n')  # never read as training rows
    before = load_source(SourceConfig(path=str(run / "records.jsonl")))
    assert len(before) == len(recs)
    split = write_split(run, 2, seed=0)
    path = str(run / "records.jsonl") if as_file else str(run)
    with caplog.at_level("INFO", logger="genteach.train.data"):
        loaded = load_source(SourceConfig(path=path))
    ids = {json.loads(row)["id"] for row in loaded["_json_line"]}
    assert len(loaded) == len(recs) - 4 and not ids & set(split.ids)
    assert "4 held-out eval records left out" in caplog.text


def test_export_leaves_held_out_records_out(tmp_path: Path) -> None:
    from genteach.export import collect_records

    run = tmp_path / "run"
    recs = make_run(run)
    assert collect_records(run).total == len(recs)
    split = write_split(run, 2, seed=0)
    rs = collect_records(run)
    exported = {r.id for rs_ in rs.by_skill.values() for r in rs_}
    assert rs.held_out == len(split.ids) == 4 and rs.total == len(recs) - 4
    assert not exported & set(split.ids)


# -- scores ------------------------------------------------------------------------------------
def test_orca_score_formula() -> None:
    assert orca_score([5, 6], [10, 10]) == pytest.approx(5.5)
    assert orca_score([9, 9], [6, 6]) == pytest.approx(15.0)  # above the teacher
    assert orca_score([3], [0]) is None


def test_summary_on_known_numbers() -> None:
    rows = [
        Score(id="1", skill="rc", sub_category="a", answerer=TEACHER, score=8),
        Score(id="1", skill="rc", sub_category="a", answerer="base", score=4),
        Score(id="2", skill="rc", sub_category="a", answerer=TEACHER, score=10),
        Score(id="2", skill="rc", sub_category="a", answerer="base", score=5),
        Score(id="3", skill="rc", sub_category="a", answerer=TEACHER, score=6),
        Score(id="3", skill="rc", sub_category="a", answerer="base", error="no answer: down"),
    ]
    s = summarize_scores(rows, ["base"], ["rc"])
    rc = s["skills"]["rc"]
    assert rc["items"] == 3 and rc["teacher_mean"] == 8.0
    # Item 3 has no student score: only paired items count (9 / 18).
    assert rc["students"]["base"] == {"paired": 2, "mean": 4.5, "orca_score": 5.0}
    assert s["overall"]["students"]["base"]["orca_score"] == 5.0


# -- students ----------------------------------------------------------------------------------
def test_parse_student_specs() -> None:
    name, cfg = parse_student("base=local")
    assert name == "base" and cfg.uses_local
    _, cfg = parse_student("tuned=local:/models/tuned")
    assert cfg.uses_local and cfg.local_model == "/models/tuned"
    _, cfg = parse_student("api=http://127.0.0.1:8000/v1#my-model")
    assert not cfg.uses_local and cfg.model == "my-model"
    assert cfg.base_url == "http://127.0.0.1:8000/v1"
    for bad in ("base", "=local", "teacher=local", "x=ftp://h#m", "x=http://h", "x=local:"):
        with pytest.raises(ValueError, match="--student"):
            parse_student(bad)


def test_student_messages_stop_before_the_judged_turn() -> None:
    rec = make_record("r", "rc", "a")
    assert student_messages(rec, 2) == [{"role": "user", "content": "Question r about rc?"}]


def _student(score: int, name: str) -> ScriptedModel:
    return ScriptedModel(lambda messages: f"My answer.\nSCORE={score}", name=name)


def test_two_students_side_by_side_and_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run)
    write_split(run, 2, seed=0)
    out = tmp_path / "eval"
    base, tuned, judge = _student(4, "base-m"), _student(6, "tuned-m"), ScriptedModel(grade)
    report = asyncio.run(eval_run(run, out, {"base": base, "tuned": tuned}, judge))
    assert len(base.calls) == 4 and len(tuned.calls) == 4 and len(judge.calls) == 12
    # The student sees the conversation before the teacher's turn, not the turn itself.
    assert all(m["content"] != "SCORE=8" for m in base.calls[0])
    summary = json.loads((out / SUMMARY_JSON).read_text())
    rc = summary["skills"]["rc"]
    assert rc["teacher_mean"] == 8.0
    assert rc["students"]["base"]["orca_score"] == 5.0  # 10 * 8 / 16
    assert rc["students"]["tuned"]["orca_score"] == 7.5
    assert summary["overall"]["students"]["tuned"]["mean"] == 6.0
    md = (out / SUMMARY_MD).read_text()
    assert (
        "| skill | items | teacher mean | base mean | base score | tuned mean | tuned score |" in md
    )
    assert "| rc | 2 | 8.00 | 4.00 | 5.00 | 6.00 | 7.50 |" in md
    assert (out / "base" / "answers.jsonl").is_file() and (out / SCORES_FILE).is_file()
    assert report.judged == 12
    # Resume: nothing is asked again.
    again = [ScriptedModel([], name="base-m"), ScriptedModel([], name="tuned-m")]
    judge2 = ScriptedModel([])
    asyncio.run(eval_run(run, out, {"base": again[0], "tuned": again[1]}, judge2))
    assert not again[0].calls and not again[1].calls and not judge2.calls
    assert json.loads((out / SUMMARY_JSON).read_text())["skills"] == summary["skills"]


def test_eval_errors(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run)
    judge = ScriptedModel(grade)
    with pytest.raises(ValueError, match="no split yet"):
        asyncio.run(eval_run(run, tmp_path / "o", {"s": _student(1, "s")}, judge))
    write_split(run, 1)
    with pytest.raises(ValueError, match="unknown skill code_"):
        asyncio.run(eval_run(run, tmp_path / "o", {"s": _student(1, "s")}, judge, skills=["code_"]))

    class Down(ScriptedModel):
        async def complete(self, request: ModelRequest) -> Completion:
            raise FatalModelError("connection refused at http://127.0.0.1:9")

    with pytest.raises(ValueError, match=r"student s .* cannot be reached: connection refused"):
        asyncio.run(eval_run(run, tmp_path / "o", {"s": Down([], name="down")}, judge))


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    make_run(run)
    assert main(["eval", "run", str(run), "--student", "a=local"]) == 2
    assert "no split yet" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "records.jsonl").write_text("")
    assert main(["eval", "split", str(empty), "--per-skill", "2"]) == 2
    assert "no records" in capsys.readouterr().err
    assert main(["eval", "split", str(run), "--per-skill", "2", "--skills", "nope"]) == 2
    assert "unknown skill nope" in capsys.readouterr().err
    assert main(["eval", "split", str(run), "--per-skill", "2", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "rc" in out and "4 records held out" in out
    assert main(["eval", "run", str(run), "--student", "bad"]) == 2
    assert "NAME=SPEC" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_run_with_the_embedded_model(tmp_path: Path) -> None:
    """``genteach eval run`` end to end: the embedded model (the tests' small one) is the
    student and the judge, on 1 held-out item of 2 (about 100 s on 2 busy cores)."""
    pytest.importorskip("llama_cpp")
    run = tmp_path / "run"
    recs = [make_record(f"rc-{i}", "rc", "a", "Paris is the capital of France.") for i in range(2)]
    for r in recs:
        r.messages[1]["content"] = "What is the capital of France? Answer in one sentence."
    run.mkdir()
    (run / "records.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in recs))
    assert main(["eval", "split", str(run), "--per-skill", "1"]) == 0
    code = main(
        [
            "eval",
            "run",
            str(run),
            "--student",
            "base=local",
            "--local",
            "--concurrency",
            "1",
            "--student-max-tokens",
            "64",
            "--max-tokens",
            "400",
        ]
    )
    assert code == 0
    rows = [json.loads(x) for x in (run / "eval" / SCORES_FILE).read_text().splitlines()]
    assert sorted(r["answerer"] for r in rows) == ["base", "teacher"]
    assert all(r["score"] is not None or r["error"] for r in rows)
    assert (run / "eval" / SUMMARY_MD).is_file()


@pytest.mark.slow
def test_a_10k_row_run_split_and_scored(tmp_path: Path) -> None:
    """A 10,000-record run: the split holds out 50 per skill, the loader leaves exactly them
    out, and two students are scored on the 150 held-out items."""
    run = tmp_path / "run"
    skills = ("rc", "mcq", "tool_use")
    recs = [make_record(f"r{i}", skills[i % 3], f"s{i % 9}") for i in range(10_000)]
    run.mkdir()
    (run / "records.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in recs))
    split = write_split(run, 50, seed=3)
    assert len(split.ids) == 150 and held_out_ids(run) == set(split.ids)
    from genteach.export import collect_records

    assert collect_records(run).total == 10_000 - 150
    out = tmp_path / "eval"
    base, tuned, judge = _student(4, "base-m"), _student(6, "tuned-m"), ScriptedModel(grade)
    asyncio.run(eval_run(run, out, {"base": base, "tuned": tuned}, judge))
    assert len(base.calls) == len(tuned.calls) == 150 and len(judge.calls) == 450
    summary = json.loads((out / SUMMARY_JSON).read_text())
    assert summary["overall"]["students"]["tuned"]["orca_score"] == 7.5  # 10 * 6 / 8
