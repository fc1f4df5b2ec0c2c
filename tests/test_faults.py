"""Runs against a fault-injecting OpenAI-compatible server on 127.0.0.1: rate limits with
Retry-After, 5xx, hangs past the timeout, truncated and malformed bodies, empty and cut-off
answers, outages, a wrong key, no access, an unknown model, nothing listening.

Transient faults are retried and change nothing (the same record ids as a run without
faults); an outage pauses the run and loses no unit; fatal errors stop the run at once with
exit 3 before any unit is marked done, and an outage past its deadline with exit 4; in every
case the output folder keeps its invariants (every finished unit ends as records or rejects
with a reason, progress.jsonl matches the files) and the same command then finishes it."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
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
    Outage,
    Outcome,
    check_accounting,
    fault_server,
    read_lines,
    write_seeds,
)
from genteach import OutageError, Pipeline, RunSettings
from genteach.cache import CACHE_FILE
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
    kw.setdefault("max_probe_interval", 0.25)  # an outage's end is seen within 0.25 s
    try:
        pipe = Pipeline(client, skills=SKILLS, settings=settings(**kw))
        return await pipe.arun(seeds, out)
    finally:
        await client.close()


def expected_units(seeds: Path) -> set[str]:
    pipe = Pipeline(build_client(ModelConfig(base_url="http://127.0.0.1:9/v1", api_key="k")),
                    skills=SKILLS, settings=settings())  # fmt: skip
    return {f"{skill.id}/{seed.id}" for skill, seed in pipe.units(load_seeds(seeds))}


def incomplete_cached(out: Path) -> int:
    """Answers in the run's cache that are empty or cut off (there must be none)."""
    with sqlite3.connect(out / CACHE_FILE) as db:
        query = "SELECT COUNT(*) FROM responses WHERE trim(text) = '' OR finish_reason = 'length'"
        return int(db.execute(query).fetchone()[0])


def conversations(requests: list[dict[str, Any]]) -> set[str]:
    """The distinct message lists of some requests."""
    return {json.dumps(r["messages"], sort_keys=True) for r in requests}


def nothing_written(out: Path) -> None:
    """No unit was marked done and no record or reject written."""
    for name in ("records.jsonl", "rejects.jsonl", "progress.jsonl"):
        assert read_lines(out / name) == [], name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    outcome.calls = summary.usage.calls
    outcome.requests = list(srv.requests)
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
async def test_empty_answers_are_asked_again_and_never_cached(
    kind: str, seeds: Path, reference: Outcome, tmp_path: Path
) -> None:
    """15% empty answers: the same record ids as no faults, no reject, no repair spent."""
    with fault_server(plan=FaultPlan(rates={kind: 0.15}, attempts=1)) as srv:
        summary = await run_pipeline(srv, seeds, tmp_path / "out")
    o = check_accounting(tmp_path / "out", expected_units(seeds))
    assert srv.faults[kind] >= 5, srv.faults
    assert not o.rejects and o.ids == reference.ids
    assert incomplete_cached(tmp_path / "out") == 0
    # Each empty answer cost one more call with the same messages (another seed): no
    # repair was asked for.
    assert conversations(srv.requests) == conversations(reference.requests)
    assert srv.answered == reference.calls
    assert summary.usage.calls == reference.calls + srv.faults[kind]


async def test_cut_off_answers_are_asked_again_and_never_cached(
    seeds: Path, reference: Outcome, tmp_path: Path
) -> None:
    with fault_server(plan=FaultPlan(rates={"cutoff": 0.15}, attempts=1)) as srv:
        await run_pipeline(srv, seeds, tmp_path / "out")
    o = check_accounting(tmp_path / "out", expected_units(seeds))
    assert srv.faults["cutoff"] >= 5, srv.faults
    assert incomplete_cached(tmp_path / "out") == 0
    o.check_clean_units_match(reference)
    for rej in o.rejects:  # asked again once, then repaired: rarely still cut off
        assert "cut off at the token limit" in rej["reason"], rej["reason"]


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


async def test_an_outage_loses_no_unit(seeds: Path, reference: Outcome, tmp_path: Path) -> None:
    """Every request fails for 2 s in the middle of the run: the breaker pauses new calls,
    probes, resumes, and the run ends with exactly the records of a run without it."""
    plan = FaultPlan(outage=Outage(after=10, seconds=2.0, kind="503"))
    with fault_server(plan=plan) as srv:
        summary = await run_pipeline(srv, seeds, tmp_path / "out", max_retries=1)
    o = check_accounting(tmp_path / "out", expected_units(seeds))
    assert srv.outage_window is not None and srv.faults["503"] >= 5
    assert not o.rejects and o.ids == reference.ids
    assert summary.units_unfinished == 0
    during = [at for at, _, kind in srv.log if kind == "503"]
    assert max(during) - min(during) >= 1.5, "the outage lasted"
    assert len(during) < 60, "requests slowed to probes while the endpoint was down"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["503", "hang"])
async def test_a_60_second_outage_loses_no_unit(
    kind: str, seeds: Path, reference: Outcome, tmp_path: Path
) -> None:
    """The issue's case at full length, with the default breaker timings."""
    plan = FaultPlan(outage=Outage(after=10, seconds=60.0, kind=kind), hang_seconds=1.0)
    with fault_server(plan=plan) as srv:
        summary = await run_pipeline(
            srv, seeds, tmp_path / "out", max_probe_interval=30.0, backoff=1.0
        )
    o = check_accounting(tmp_path / "out", expected_units(seeds))
    assert srv.outage_window is not None and srv.faults[kind] >= 5
    assert not o.rejects and o.ids == reference.ids and summary.units_unfinished == 0


async def test_an_outage_past_the_deadline_stops_the_run_and_resume_finishes_it(
    seeds: Path, reference: Outcome, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    plan = FaultPlan(outage=Outage(after=10, seconds=30.0, kind="502"))
    with fault_server(plan=plan) as srv:
        with pytest.raises(OutageError, match=r"past the outage deadline of 0\.5s.*HTTP 502"):
            await run_pipeline(srv, seeds, out, outage_deadline=0.5)
        stopped_at = time.monotonic()
    assert stopped_at - srv.outage_window[0] < 10, "the run stopped at its deadline"  # type: ignore[index]
    before = check_accounting(out, {p["unit"] for p in read_lines(out / "progress.jsonl")})
    assert not before.rejects, "no unit in flight during the outage was marked done"
    assert len(before.progress) < len(expected_units(seeds))
    with fault_server() as srv:
        await run_pipeline(srv, seeds, out)
    o = check_accounting(out, expected_units(seeds))
    assert o.ids == reference.ids and not o.rejects


async def test_every_call_failing_stops_at_the_deadline_then_a_good_server_finishes(
    seeds: Path, reference: Outcome, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    plan = FaultPlan(rates={"500": 1.0}, attempts=None)
    with fault_server(plan=plan) as srv, pytest.raises(OutageError):
        await run_pipeline(srv, seeds, out, outage_deadline=0.3)
    nothing_written(out)
    assert srv.answered == 0 and srv.faults["500"] >= 5
    with fault_server() as srv:
        summary = await run_pipeline(srv, seeds, out)
    assert check_accounting(out, expected_units(seeds)).ids == reference.ids
    assert summary.cached_calls == 0 and summary.records == len(reference.records)


def cli_args(
    seeds: Path, out: Path, url: str, *extra: str, key: str = "k", model: str = "fault-model"
) -> list[str]:
    args = ["generate", "--seeds", str(seeds), "--out", str(out), "--skills", ",".join(SKILLS)]
    args += ["--base-url", url, "--model", model, "--api-key", key, "--no-progress"]
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


def test_cli_every_call_failing_stops_with_exit_4_and_resumes(
    seeds: Path, reference: Outcome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    with fault_server(plan=FaultPlan(rates={"500": 1.0}, attempts=None)) as srv:
        code = main(cli_args(seeds, out, srv.url, "--outage-deadline", "0.3"))
    assert code == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("genteach: the endpoint has been failing for ")
    assert "HTTP 500: injected 500" in err[-1] and "run the same command to resume" in err[-1]
    nothing_written(out)
    with fault_server() as srv:
        assert main(cli_args(seeds, out, srv.url)) == 0
    assert check_accounting(out, expected_units(seeds)).ids == reference.ids


def test_wrong_key_exits_3_before_anything_is_written_then_the_right_key_finishes(
    seeds: Path, reference: Outcome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    with fault_server(api_key="right") as srv:
        code = main(cli_args(seeds, out, srv.url, key="wrong"))
        assert code == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == (
            "genteach: the teacher cannot serve this run: HTTP 401: Incorrect API key "
            "provided. (nothing more was marked done; fix it and run the same command)"
        )
        nothing_written(out)
        assert 1 <= srv.refused["401"] <= 8, "no call after the first answers came back"
        assert srv.answered == 0
        assert main(cli_args(seeds, out, srv.url, key="right")) == 0
    o = check_accounting(out, expected_units(seeds))
    assert o.ids == reference.ids and not o.rejects
    assert f"{len(o.records)} records, 0 rejects from {len(o.progress)} units (0 already done)" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("server", "model", "message"),
    [
        ({"plan": FaultPlan(rates={"403": 1.0}, attempts=None)}, "fault-model", "HTTP 403: injected 403"),
        ({"model": "fault-model"}, "no-such-model", "HTTP 404: The model `no-such-model` does not exist."),
    ],
)  # fmt: skip
def test_no_access_or_unknown_model_exits_3(
    server: dict[str, Any],
    model: str,
    message: str,
    seeds: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with fault_server(**server) as srv:
        assert main(cli_args(seeds, tmp_path / "out", srv.url, model=model)) == 3
    assert f"genteach: the teacher cannot serve this run: {message} (" in capsys.readouterr().err
    nothing_written(tmp_path / "out")


def test_nothing_listening_at_start_exits_3(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    assert main(cli_args(seeds, tmp_path / "out", url)) == 3
    assert time.monotonic() - started < 30, "no retries, no waiting for a breaker"
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(
        "genteach: the teacher cannot serve this run: nothing is listening at the endpoint: "
        f"cannot connect to {url.removesuffix('/v1')}"
    ), err
    nothing_written(tmp_path / "out")


def test_retry_rejects_redoes_rejected_units_from_the_cache(
    seeds: Path, reference: Outcome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    with fault_server(plan=FaultPlan(rates={"400": 0.03}, attempts=None, seed=5)) as srv:
        assert main(cli_args(seeds, out, srv.url)) == 0
    before = check_accounting(out, expected_units(seeds))
    hit = {r["unit"] for r in before.rejects}
    assert hit and len(hit) < len(before.progress), "some units ended with rejects"
    capsys.readouterr()
    with fault_server() as srv:
        assert main(cli_args(seeds, out, srv.url)) == 0, "a plain rerun changes nothing"
        assert srv.requests == []
        assert main(cli_args(seeds, out, srv.url, "--retry-rejects")) == 0
        sent = len(srv.requests)
    o = check_accounting(out, expected_units(seeds))
    assert not o.rejects and o.ids == reference.ids
    stdout = [x for x in capsys.readouterr().out.splitlines() if " model calls (" in x][-1]
    assert (
        f"from {len(before.progress)} units ({len(before.progress) - len(hit)} already done)"
        in stdout
    )
    cached = int(stdout.split(" model calls (")[1].split(" answered from the cache")[0])
    assert cached > 0 and sent > 0, "the cache answered what it could, the server the rest"


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
