"""Runs against a fault-injecting OpenAI-compatible server on 127.0.0.1: rate limits with
Retry-After, 5xx, hangs past the timeout, truncated and malformed bodies, empty content.
Whatever the faults, the run completes, every unit ends as records or rejects with a
reason, the counts in progress.jsonl match the files, and transient faults are retried."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from fault_server import (
    TRANSIENT_KINDS,
    FaultPlan,
    FaultServer,
    Outcome,
    check_accounting,
    fault_server,
    write_seeds,
)
from genteach import Pipeline, RunSettings
from genteach.cli import main
from genteach.models import ModelConfig, build_client
from genteach.pipeline import RunSummary
from genteach.seeds import load_seeds

SKILLS = ["rc", "text_modification"]
OVERRIDES = {"suggestions": 1, "tasks_per_type": 1}


def settings(**kw: Any) -> RunSettings:
    base: dict[str, Any] = {
        "seed": 1,
        "concurrency": 8,
        "timeout": 1.0,
        "max_retries": 2,
        "overrides": dict(OVERRIDES),
    }
    base["backoff"] = 0.02  # first retry delay; the default (1 s) makes tests slow
    base.update(kw)
    return RunSettings(**base)


async def run_pipeline(srv: FaultServer, seeds: Path, out: Path, **kw: Any) -> RunSummary:
    client = build_client(ModelConfig(base_url=srv.url, api_key="k", model="fault-model"))
    try:
        pipe = Pipeline(client, skills=SKILLS, settings=settings(**kw))
        return await pipe.arun(seeds, out)
    finally:
        await client.close()


def expected_units(seeds: Path) -> set[str]:
    pipe = Pipeline(build_client(ModelConfig(base_url="http://127.0.0.1:9/v1", api_key="k")),
                    skills=SKILLS, settings=settings())  # fmt: skip
    return {f"{skill.id}/{seed.id}" for skill, seed in pipe.units(load_seeds(seeds))}


def check_retried(srv: FaultServer, kinds: tuple[str, ...] = TRANSIENT_KINDS) -> int:
    """Every request that got a transient fault was sent again; returns how many."""
    arrivals: dict[str, list[str | None]] = defaultdict(list)
    for _, key, kind in srv.log:
        arrivals[key].append(kind)
    faulted = [k for k, seen in arrivals.items() if any(x in kinds for x in seen)]
    for key in faulted:
        seen = arrivals[key]
        assert seen[-1] is None, f"a transient fault was not retried to success: {seen}"
    return len(faulted)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_seeds(tmp_path_factory.mktemp("seeds"), 3)


@pytest.fixture(scope="module")
def reference(seeds: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """A fault-free run: the records every retried run must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    with fault_server() as srv:
        summary = asyncio.run(run_pipeline(srv, seeds, out))
    outcome = check_accounting(out, expected_units(seeds))
    assert summary.rejects == 0 and outcome.records and not outcome.rejects
    assert srv.faults_total == 0 and len(srv.requests) == srv.answered == summary.usage.calls
    return outcome


@pytest.mark.parametrize("kind", TRANSIENT_KINDS)
async def test_transient_fault_is_retried_and_changes_nothing(
    kind: str, seeds: Path, reference: Outcome, tmp_path: Path
) -> None:
    plan = FaultPlan(rates={kind: 0.15}, attempts=1, hang_seconds=10)
    timeout = 0.5 if kind == "hang" else 1.0  # answers take milliseconds; hangs cost this
    with fault_server(plan=plan) as srv:
        summary = await run_pipeline(srv, seeds, tmp_path / "out", timeout=timeout)
    o = check_accounting(tmp_path / "out", expected_units(seeds))
    assert srv.faults[kind] > 0 and srv.faults_total == srv.faults[kind]
    assert len(srv.requests) == srv.answered + srv.faults_total
    assert summary.usage.calls <= srv.answered < len(srv.requests)
    assert check_retried(srv) == srv.faults[kind]
    assert not o.rejects, [r["reason"] for r in o.rejects]
    assert o.ids == reference.ids


async def test_faults_by_request_number(seeds: Path, reference: Outcome, tmp_path: Path) -> None:
    plan = FaultPlan(by_number={1: "429", 2: "503", 3: "truncated", 5: "hang", 8: "502"})
    with fault_server(plan=plan) as srv:
        await run_pipeline(srv, seeds, tmp_path / "out", concurrency=1, timeout=0.5, max_retries=3)
    o = check_accounting(tmp_path / "out", expected_units(seeds))
    assert [kind for _, _, kind in srv.log[:9]] == [
        "429", "503", "truncated", None, "hang", None, None, "502", None
    ]  # fmt: skip
    assert len({key for _, key, _ in srv.log[:4]}) == 1, "the first request, sent 4 times"
    assert o.ids == reference.ids and not o.rejects
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FaultPlan(rates={"418": 0.1})


async def test_retry_after_is_honoured(seeds: Path, tmp_path: Path) -> None:
    wait = 0.3
    plan = FaultPlan(rates={"429": 0.2}, attempts=1, retry_after=wait)
    with fault_server(plan=plan) as srv:
        await run_pipeline(srv, seeds, tmp_path / "out")
    check_accounting(tmp_path / "out", expected_units(seeds))
    first: dict[str, float] = {}
    gaps = []
    for at, key, kind in srv.log:
        if kind == "429":
            first[key] = at
        elif key in first:
            gaps.append(at - first.pop(key))
    assert gaps and not first, "every rate-limited request came back"
    assert min(gaps) >= wait - 0.02, f"retried sooner than Retry-After: {min(gaps):.3f}s"


@pytest.mark.parametrize("kind", ["empty", "null"])
async def test_empty_answers_are_repaired_or_rejected(
    kind: str, seeds: Path, reference: Outcome, tmp_path: Path
) -> None:
    with fault_server(plan=FaultPlan(rates={kind: 0.3}, attempts=1)) as srv:
        await run_pipeline(srv, seeds, tmp_path / "out")
    o = check_accounting(tmp_path / "out", expected_units(seeds))
    assert srv.faults[kind] > len(o.rejects), "most empty answers were repaired"
    o.check_clean_units_match(reference)  # a repaired answer gives the same record
    for rej in o.rejects:
        assert "empty" in rej["reason"], rej["reason"]


@pytest.mark.parametrize("kind", ["malformed", "no_choices"])
async def test_malformed_bodies_are_retried_or_rejected(
    kind: str, seeds: Path, reference: Outcome, tmp_path: Path
) -> None:
    with fault_server(plan=FaultPlan(rates={kind: 0.2}, attempts=1)) as srv:
        await run_pipeline(srv, seeds, tmp_path / "out")
    o = check_accounting(tmp_path / "out", expected_units(seeds))
    assert srv.faults[kind] > 0
    o.check_clean_units_match(reference)
    if o.rejects:  # the transport took the body for a permanent error
        assert all(r["reason"].startswith("model error: ") for r in o.rejects)
    else:  # ... or for a transient one, and sent the request again
        assert check_retried(srv, (kind,)) == srv.faults[kind]
        assert o.ids == reference.ids


async def test_permanent_errors_are_not_retried(
    seeds: Path, reference: Outcome, tmp_path: Path
) -> None:
    with fault_server(plan=FaultPlan(rates={"400": 0.2}, attempts=None)) as srv:
        await run_pipeline(srv, seeds, tmp_path / "out")
    o = check_accounting(tmp_path / "out", expected_units(seeds))
    assert srv.faults["400"] > 0 and o.rejects
    assert all(r["reason"].startswith("model error: ") for r in o.rejects)
    faulted = {key for _, key, kind in srv.log if kind == "400"}
    assert all(n == 1 for key, n in Counter(k for _, k, _ in srv.log).items() if key in faulted)
    o.check_clean_units_match(reference)


async def test_mixed_faults(tmp_path: Path) -> None:
    seeds = write_seeds(tmp_path / "seeds", 4)
    rates = {
        "429": 0.06,
        "500": 0.04,
        "502": 0.04,
        "503": 0.04,
        "hang": 0.03,
        "truncated": 0.04,
        "malformed": 0.03,
        "empty": 0.04,
        "null": 0.03,
        "no_choices": 0.03,
    }
    plan = FaultPlan(rates=rates, attempts=1, seed=7, latency=0.005, hang_seconds=10)
    with fault_server(plan=plan) as srv:
        summary = await run_pipeline(srv, seeds, tmp_path / "out")
    o = check_accounting(tmp_path / "out", expected_units(seeds))
    assert len(srv.faults) >= 6, srv.faults
    assert len(srv.requests) == srv.answered + srv.faults_total
    assert check_retried(srv) == sum(srv.faults[k] for k in TRANSIENT_KINDS)
    assert (summary.records, summary.rejects) == (len(o.records), len(o.rejects))
    assert o.records, "most units still make records"
    with fault_server() as clean:
        await run_pipeline(clean, seeds, tmp_path / "reference")
    o.check_clean_units_match(check_accounting(tmp_path / "reference", expected_units(seeds)))


async def test_every_call_failing_ends_as_rejects_not_a_crash(seeds: Path, tmp_path: Path) -> None:
    with fault_server(plan=FaultPlan(rates={"500": 1.0}, attempts=None)) as srv:
        summary = await run_pipeline(srv, seeds, tmp_path / "out", max_retries=1)
    units = expected_units(seeds)
    o = check_accounting(tmp_path / "out", units)
    assert summary.records == 0 and not o.records
    assert {r["unit"] for r in o.rejects} == units
    for rej in o.rejects:
        assert "gave up after 1 retries" in rej["reason"] and "500" in rej["reason"], rej
    per_body = Counter(key for _, key, _ in srv.log)
    assert set(per_body.values()) == {2}, "each request tried once and retried once"
    assert srv.answered == 0 and summary.usage.calls == 0


def cli_args(seeds: Path, out: Path, url: str, *extra: str) -> list[str]:
    args = ["generate", "--seeds", str(seeds), "--out", str(out), "--skills", ",".join(SKILLS)]
    args += ["--base-url", url, "--model", "fault-model", "--api-key", "k", "--no-progress"]
    args += ["--seed", "1", "--set", "suggestions=1", "--set", "tasks_per_type=1"]
    args += ["--timeout", "1", "--max-retries", "2", "--backoff", "0.02", *extra]
    return args


def test_cli_survives_mixed_faults(
    seeds: Path, reference: Outcome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = {"429": 0.1, "500": 0.05, "502": 0.05, "503": 0.05, "hang": 0.04, "truncated": 0.05}
    plan = FaultPlan(rates=rates, attempts=1, seed=3, hang_seconds=10)
    with fault_server(plan=plan) as srv:
        code = main(cli_args(seeds, tmp_path / "out", srv.url))
    assert code == 0
    o = check_accounting(tmp_path / "out", expected_units(seeds))
    # Faults are drawn per request body at these rates: most kinds occur in one run (each
    # kind alone has its own test above).
    assert len(srv.faults) >= len(rates) - 2 and srv.faults_total >= 10, srv.faults
    assert check_retried(srv) == srv.faults_total
    assert o.ids == reference.ids and not o.rejects
    assert f"{len(o.records)} records, 0 rejects from {len(o.progress)} units" in (
        capsys.readouterr().out
    )


def test_cli_permanent_errors_end_as_rejects_with_exit_0(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fault_server(plan=FaultPlan(rates={"400": 1.0}, attempts=None)) as srv:
        code = main(cli_args(seeds, tmp_path / "out", srv.url))
    assert code == 0, "a run whose every unit was rejected still completes"
    units = expected_units(seeds)
    o = check_accounting(tmp_path / "out", units)
    assert not o.records and {r["unit"] for r in o.rejects} == units
    assert all(r["reason"].startswith("model error: ") for r in o.rejects)
    assert set(Counter(key for _, key, _ in srv.log).values()) == {1}, "400 is not retried"
    assert f"0 records, {len(o.rejects)} rejects from {len(units)} units" in capsys.readouterr().out


def test_cli_every_call_failing_gives_up_after_max_retries(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    units = expected_units(seeds)
    with fault_server(plan=FaultPlan(rates={"500": 1.0}, attempts=None)) as srv:
        code = main(cli_args(seeds, tmp_path / "out", srv.url))
    assert code == 0, "a run whose every unit was rejected still completes"
    o = check_accounting(tmp_path / "out", units)
    assert not o.records and {r["unit"] for r in o.rejects} == units
    assert all("gave up after 2 retries" in r["reason"] for r in o.rejects)
    assert set(Counter(key for _, key, _ in srv.log).values()) == {3}
    assert f"0 records, {len(o.rejects)} rejects from {len(units)} units" in capsys.readouterr().out


def test_fault_server_stops_with_requests_hanging() -> None:
    with fault_server(plan=FaultPlan(rates={"hang": 1.0}, attempts=None, hang_seconds=30)) as srv:
        req = urllib.request.Request(
            srv.url + "/chat/completions",
            data=json.dumps(
                {"model": "m", "messages": [{"role": "user", "content": "x"}]}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            urllib.request.urlopen(req, timeout=0.3)
        started = time.monotonic()
    assert time.monotonic() - started < 3, "a hanging request held up the server's stop"
    assert srv.faults == {"hang": 1}
