"""Crash-safe resume: a run killed with SIGKILL at any moment and run again ends with the
records of an uninterrupted run: none lost, none twice, no torn line, every unit done
once. The teacher is a fault server on 127.0.0.1 whose answers depend only on the
request, so the same seeds and --seed give the same record ids in every run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fault_server import (
    FaultPlan,
    Outcome,
    StableTeacher,
    check_accounting,
    fault_server,
    read_lines,
    write_seeds,
)
from genteach.cli import main

SKILLS = "rc,text_modification"


def gen_args(seeds: Path, out: Path, url: str, *extra: str) -> list[str]:
    return [
        "generate", "--seeds", str(seeds), "--out", str(out), "--skills", SKILLS,
        "--base-url", url, "--model", "fault-model", "--api-key", "k", "--no-progress",
        "--seed", "3", "--concurrency", "4", "--set", "suggestions=1",
        "--set", "tasks_per_type=1", *extra,
    ]  # fmt: skip


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GENTEACH_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def reference_run(seeds: Path, out: Path) -> Outcome:
    """An uninterrupted run of the same command, in-process, on its own server."""
    with fault_server() as srv:
        assert main(gen_args(seeds, out, srv.url)) == 0
    units = {p["unit"] for p in read_lines(out / "progress.jsonl")}
    o = check_accounting(out, units)
    assert o.records and not o.rejects
    return o


def start_run(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m genteach ARGS`` in the background, its output appended to ``log``."""
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "genteach", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )


def reached(proc: subprocess.Popen[bytes], when: Callable[[], bool], deadline: float) -> bool:
    """Wait until ``when()`` holds (True) or the run ends first (False); fail after
    ``deadline`` seconds of neither."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        if when():
            return True
        time.sleep(0.002)
    raise AssertionError("the run neither ended nor reached its point")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def run_until_killed(
    args: list[str], when: Callable[[], bool], log: Path, *, deadline: float = 90.0
) -> bool:
    """Run ``python -m genteach ARGS`` and SIGKILL it as soon as ``when()`` holds.
    Returns False if it ended first."""
    proc = start_run(args, log)
    try:
        if not reached(proc, when, deadline):
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return True
    finally:
        stop(proc)


def run_to_end(args: list[str], log: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "genteach", *args],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=180,
    )
    log.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def kill_points(out: Path, total: int) -> dict[str, Callable[[], Callable[[], bool]]]:
    """Kill-point factories, each called just before its run starts."""
    progress, records = out / "progress.jsonl", out / "records.jsonl"

    def early() -> Callable[[], bool]:
        start = count_lines(progress)
        return lambda: count_lines(progress) > start

    def mid() -> Callable[[], bool]:
        return lambda: count_lines(progress) >= total // 2

    def after_a_record() -> Callable[[], bool]:
        start = count_lines(records)
        return lambda: count_lines(records) > start

    return {"early": early, "mid": mid, "after_a_record": after_a_record}


def check_resumed(out: Path, reference: Outcome, stdout: str) -> Outcome:
    units = {p["unit"] for p in reference.progress}
    o = check_accounting(out, units)
    assert o.ids == reference.ids, (
        f"lost {len(reference.ids - o.ids)}, extra {len(o.ids - reference.ids)} records"
    )
    assert not o.rejects
    assert "already done" in stdout
    return o


def test_killed_mid_run_resumes_to_the_same_records(tmp_path: Path) -> None:
    seeds = write_seeds(tmp_path / "seeds", 4)
    reference = reference_run(seeds, tmp_path / "reference")
    out = tmp_path / "out"
    with fault_server(plan=FaultPlan(latency=0.05)) as srv:
        args = gen_args(seeds, out, srv.url)
        when = kill_points(out, len(reference.progress))["mid"]()
        assert run_until_killed(args, when, tmp_path / "killed.log"), "killed before the end"
        left = len(reference.progress) - count_lines(out / "progress.jsonl")
        assert left > 0
        stdout = run_to_end(args, tmp_path / "resume.log")
    check_resumed(out, reference, stdout)


@pytest.mark.slow
def test_killed_again_and_again_resumes_to_the_same_records(tmp_path: Path) -> None:
    seeds = write_seeds(tmp_path / "seeds", 12)
    reference = reference_run(seeds, tmp_path / "reference")
    total = len(reference.progress)
    assert total == 24
    out = tmp_path / "out"
    with fault_server(plan=FaultPlan(latency=0.05)) as srv:
        args = gen_args(seeds, out, srv.url)
        for name, point in kill_points(out, total).items():
            assert run_until_killed(args, point(), tmp_path / f"{name}.log"), name
            assert count_lines(out / "progress.jsonl") < total, name
        stdout = run_to_end(args, tmp_path / "resume.log")
    check_resumed(out, reference, stdout)


def test_torn_record_line_is_cut_and_the_unit_redone(tmp_path: Path) -> None:
    """SIGKILL while a record line was half written: the state the crash leaves is made by
    hand (the last unit's progress line gone, its second record cut in half)."""
    seeds = write_seeds(tmp_path / "seeds", 3)
    reference = reference_run(seeds, tmp_path / "reference")
    out = tmp_path / "out"
    reference_run(seeds, out)
    progress = (out / "progress.jsonl").read_text().splitlines(keepends=True)
    last = read_lines(out / "progress.jsonl")[-1]["unit"]
    (out / "progress.jsonl").write_text("".join(progress[:-1]))
    lines = (out / "records.jsonl").read_text().splitlines(keepends=True)
    mine = [i for i, r in enumerate(read_lines(out / "records.jsonl")) if r["meta"]["unit"] == last]
    assert len(mine) >= 2 and mine[-1] == len(lines) - 1, "the last unit's records end the file"
    cut = mine[1]
    (out / "records.jsonl").write_text("".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])
    with fault_server() as srv:
        assert main(gen_args(seeds, out, srv.url)) == 0
    o = check_accounting(out, {p["unit"] for p in reference.progress})
    assert o.ids == reference.ids
    assert [p["unit"] for p in o.progress][-1] == last, "only the cut unit was redone"


def test_redone_unit_keeps_one_attempt_even_if_the_teacher_samples(tmp_path: Path) -> None:
    """A unit killed after writing its records but before its progress line is redone;
    a teacher that samples (here: another salt) answers the redo differently. The folder
    must still hold one attempt of the unit, not both."""
    seeds = write_seeds(tmp_path / "seeds", 3)
    out = tmp_path / "out"
    reference_run(seeds, out)
    progress = (out / "progress.jsonl").read_text().splitlines(keepends=True)
    (out / "progress.jsonl").write_text("".join(progress[:-1]))
    with fault_server(StableTeacher(salt="another sample")) as srv:
        assert main(gen_args(seeds, out, srv.url)) == 0
    units = {p["unit"] for p in read_lines(out / "progress.jsonl")}
    check_accounting(out, units)


def test_redone_unit_without_cache_keeps_one_attempt(tmp_path: Path) -> None:
    """The same, with --no-cache: the redo's answers are new."""
    seeds = write_seeds(tmp_path / "seeds", 3)
    out = tmp_path / "out"
    with fault_server() as srv:
        assert main(gen_args(seeds, out, srv.url, "--no-cache")) == 0
    progress = (out / "progress.jsonl").read_text().splitlines(keepends=True)
    (out / "progress.jsonl").write_text("".join(progress[:-1]))
    with fault_server(StableTeacher(salt="another sample")) as srv:
        assert main(gen_args(seeds, out, srv.url, "--no-cache")) == 0
    o = Outcome.read(out)
    last = read_lines(out / "progress.jsonl")[-1]
    n_records = sum(1 for r in o.records if r["meta"]["unit"] == last["unit"])
    # The interrupted attempt's lines were dropped: only the redo's records remain.
    assert n_records == last["records"]
    check_accounting(out, {p["unit"] for p in o.progress})


def test_redone_unit_does_not_write_its_rejects_twice(tmp_path: Path) -> None:
    """Like the torn-line case, for a unit with rejects: the crash came after its records
    and rejects lines, before its progress line."""
    seeds = write_seeds(tmp_path / "seeds", 3)
    out = tmp_path / "out"
    plan = FaultPlan(rates={"400": 0.1}, attempts=None, seed=5)  # the same rejects each run
    with fault_server(plan=plan) as srv:
        assert main(gen_args(seeds, out, srv.url)) == 0
    before = check_accounting(out, {p["unit"] for p in read_lines(out / "progress.jsonl")})
    hit = next(p for p in before.progress if p["rejects"] and p["records"])
    (out / "progress.jsonl").write_text(
        "".join(
            line + "\n"
            for line in (out / "progress.jsonl").read_text().splitlines()
            if f'"{hit["unit"]}"' not in line
        )
    )
    with fault_server(plan=plan) as srv:
        assert main(gen_args(seeds, out, srv.url)) == 0
    after = Outcome.read(out)
    assert after.ids == before.ids
    assert len(after.rejects) == len(before.rejects), "the redone unit's rejects once"
    check_accounting(out, {p["unit"] for p in before.progress})


def test_progress_counts_the_records_written(tmp_path: Path) -> None:
    """Two units that make the same record: the second one's copy is not written (ids are
    content-derived), and its progress line counts it as a duplicate, not a record."""
    seeds = write_seeds(tmp_path / "seeds", 12)
    out = tmp_path / "out"
    with fault_server(StableTeacher(distinct_seeds=False)) as srv:
        assert main(gen_args(seeds, out, srv.url)) == 0
    o = Outcome.read(out)
    assert len(o.ids) == len(o.records), "no record id twice"
    claimed = sum(p["records"] for p in o.progress)
    assert claimed == len(o.records)
    assert sum(p["duplicates"] for p in o.progress) > 0  # the same passage: some collide
    check_accounting(out, {p["unit"] for p in o.progress})


def test_fresh_starts_over_and_a_finished_run_costs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds = write_seeds(tmp_path / "seeds", 3)
    out = tmp_path / "out"
    reference = reference_run(seeds, out)
    capsys.readouterr()
    with fault_server() as srv:
        assert main(gen_args(seeds, out, srv.url)) == 0
        assert not srv.requests, "a finished run makes no model call"
        assert (
            f"0 records, 0 rejects from {len(reference.progress)} units" in capsys.readouterr().out
        )
        assert main(gen_args(seeds, out, srv.url, "--fresh")) == 0
        assert srv.requests, "--fresh makes the model calls again (no cache kept either)"
    assert f"{len(reference.records)} records, 0 rejects" in capsys.readouterr().out
    o = check_accounting(out, {p["unit"] for p in reference.progress})
    assert o.ids == reference.ids


def test_two_runs_on_one_folder_do_not_duplicate(tmp_path: Path) -> None:
    """The same command started twice at once (a second terminal, a retried job): the
    second run refuses the busy folder (exit 2), or, if the first had finished, resumes."""
    seeds = write_seeds(tmp_path / "seeds", 4)
    out = tmp_path / "out"
    with fault_server(plan=FaultPlan(latency=0.03)) as srv:
        cmd = [sys.executable, "-m", "genteach", *gen_args(seeds, out, srv.url)]
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
            for _ in range(2)
        ]
        for p in procs:
            p.communicate(timeout=120)
        codes = [p.returncode for p in procs]
    assert sorted(codes) in ([0, 0], [0, 2]), codes
    o = Outcome.read(out)
    assert len(o.records) == len(o.ids), "one run writes; the other refused the busy folder"
    check_accounting(out, {p["unit"] for p in o.progress})


def run_until_interrupted(
    args: list[str], when: Callable[[], bool], log: Path, *, deadline: float = 90.0
) -> tuple[int, float, str]:
    """Run ``python -m genteach ARGS``, send one SIGINT (Ctrl-C) as soon as ``when()``
    holds, and wait for it to end. Returns (exit status, seconds from the SIGINT to the
    end, its output)."""
    proc = start_run(args, log)
    try:
        assert reached(proc, when, deadline), "the run ended before its interrupt point"
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        proc.wait(timeout=60)
        return proc.returncode, time.monotonic() - sent, log.read_text()
    finally:
        stop(proc)


def test_ctrl_c_stops_within_seconds_and_the_run_resumes(tmp_path: Path) -> None:
    """The first Ctrl-C stops new work, ends the run within seconds (exit 130) with every
    line whole, and the same command then finishes it with the records of an
    uninterrupted run."""
    seeds = write_seeds(tmp_path / "seeds", 6)
    reference = reference_run(seeds, tmp_path / "reference")
    out = tmp_path / "out"
    with fault_server(plan=FaultPlan(latency=0.3)) as srv:
        args = gen_args(seeds, out, srv.url)
        when = kill_points(out, len(reference.progress))["early"]()
        status, took, err = run_until_interrupted(args, when, tmp_path / "interrupted.log")
        assert status == 130, err[-2000:]
        assert took < 10, f"{took:.1f} s from Ctrl-C to the end"
        assert "stopping: no new work" in err and "run the same command to resume" in err
        done = count_lines(out / "progress.jsonl")
        assert 0 < done < len(reference.progress)
        check_accounting(out, {p["unit"] for p in read_lines(out / "progress.jsonl")})
        stdout = run_to_end(args, tmp_path / "resume.log")
    check_resumed(out, reference, stdout)


SLOW_CLEAN_UP = """
import asyncio, sys, time
from genteach.cli import _interruptible

async def work():
    loop = asyncio.get_running_loop()
    try:
        print("ready", flush=True)
        await asyncio.sleep(60)
    finally:  # a clean-up that blocks, like a local batch in its prefill
        print("cleaning", flush=True)
        await loop.run_in_executor(None, time.sleep, 60)

try:
    asyncio.run(_interruptible(work()))
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_second_ctrl_c_quits_at_once() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLEAN_UP],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == "cleaning"
        assert proc.poll() is None, "the clean-up is still running"
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - sent < 5
        assert proc.returncode == 130
        assert "stopping: no new work" in err and "quitting now" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
