"""The genteach command, end to end against an OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genteach.cli import _RateMeter, main
from genteach.models import ModelConfig, ModelError, TransientModelError, build_client
from genteach.models.base import ModelRequest
from genteach.taxonomy import load_taxonomy
from openai_stub import openai_stub
from scripted_teacher import Teacher

REPO = Path(__file__).resolve().parent.parent


def seeds_dir(tmp_path: Path) -> Path:
    d = tmp_path / "seeds"
    d.mkdir()
    (d / "a.txt").write_text("The harbour tunnel opened in May. " * 20)
    (d / "empty.txt").write_text("   \n")
    (d / "blob.bin.txt").write_bytes(b"\x00\x01binary" * 20)
    (d / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 50)
    return d


def test_generate_against_openai_compatible_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "out"
    with openai_stub(Teacher()) as (url, state):
        code = main(
            [
                "generate",
                "--seeds",
                str(seeds_dir(tmp_path)),
                "--out",
                str(out),
                "--skills",
                "rc",
                "--base-url",
                url,
                "--model",
                "stub-model",
                "--api-key",
                "k",
                "--no-progress",
                "--seed",
                "1",
            ]
        )
    assert code == 0
    captured = capsys.readouterr()
    assert "records, 0 rejects from 1 units" in captured.out
    assert "1 seeds, 1 skipped (binary), 1 skipped (empty), 1 skipped (not UTF-8)" in captured.err
    rows = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert rows and all(r["messages"][-1]["role"] == "assistant" for r in rows)
    assert all(r["meta"]["verification"]["status"] in ("passed", "unchecked") for r in rows)
    assert {r["meta"]["teacher"] for r in rows} == {"stub-model"}
    assert all(req["model"] == "stub-model" for req in state.requests)
    assert all("name" not in m for req in state.requests for m in req["messages"])
    # inspect shows the records and their agent chain
    assert main(["inspect", str(out), "-n", "1"]) == 0
    shown = capsys.readouterr().out
    assert f"{len(rows)} records in" in shown and "agents: " in shown and "-> responder" in shown


async def test_autogen_adapter_maps_errors_and_retry_after() -> None:
    with openai_stub(lambda m: "hi", faults=[429, 400], retry_after="7") as (url, _):
        client = build_client(ModelConfig(base_url=url, api_key="k", model="stub-model"))
        with pytest.raises(TransientModelError) as exc:
            await client.complete(ModelRequest([{"role": "user", "content": "x"}]))
        assert exc.value.retry_after == 7.0
        with pytest.raises(ModelError) as exc2:
            await client.complete(ModelRequest([{"role": "user", "content": "x"}]))
        assert not isinstance(exc2.value, TransientModelError)
        ok = await client.complete(
            ModelRequest([{"role": "user", "content": "x"}], max_tokens=5, seed=3)
        )
        assert ok.text == "hi" and ok.usage.calls == 1 and ok.usage.prompt_tokens == 1
        await client.close()


def test_generate_survives_transient_server_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("genteach.models.resilient.random.uniform", lambda a, b: 0.0)
    with openai_stub(Teacher(), faults=[503, 429, 500]) as (url, _state):
        code = main(
            [
                "generate",
                "--seeds",
                str(seeds_dir(tmp_path)),
                "--out",
                str(tmp_path / "out"),
                "--skills",
                "text_modification",
                "--base-url",
                url,
                "--model",
                "m",
                "--api-key",
                "k",
                "--no-progress",
            ]
        )
    assert code == 0
    assert " 0 rejects" in capsys.readouterr().out


def test_clear_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], planned_taxonomy: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nskills:\n  rc:\n    name: RC\n    status: ready\n    weight: heavy\n")
    assert main(["taxonomy", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: skills.rc.weight: Input should be a valid number" in err
    assert "Traceback" not in err
    assert (
        main(
            [
                "generate",
                "--seeds",
                str(tmp_path / "nope"),
                "--out",
                str(tmp_path / "o"),
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--api-key",
                "k",
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(
            [
                "generate",
                "--seeds",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
                "--skills",
                "rag",
                "--taxonomy",
                str(planned_taxonomy),
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--api-key",
                "k",
            ]
        )
        == 2
    )
    assert "is listed but not built yet" in capsys.readouterr().err
    assert (
        main(
            [
                "generate",
                "--seeds",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
                "--set",
                "nope",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--api-key",
                "k",
            ]
        )
        == 2
    )
    assert "argument --set: 'nope': expected KEY=VALUE" in capsys.readouterr().err


def test_taxonomy_commands(capsys: pytest.CaptureFixture[str], planned_taxonomy: Path) -> None:
    assert main(["taxonomy", "validate"]) == 0
    ready = len(load_taxonomy().ready_skills())
    assert f"valid (17 skills, {ready} ready" in capsys.readouterr().out
    assert main(["taxonomy", "list"]) == 0
    listing = capsys.readouterr().out
    assert "17 skills" in listing and "tool_use" in listing
    assert main(["taxonomy", "list", "--taxonomy", str(planned_taxonomy)]) == 0
    assert "planned" in capsys.readouterr().out
    assert main(["taxonomy", "list", "--skill", "rc"]) == 0
    assert "task types (43)" in capsys.readouterr().out


def test_dry_run_estimates_without_calling_or_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "out"
    code = main(
        [
            "generate",
            "--seeds",
            str(seeds_dir(tmp_path)),
            "--out",
            str(out),
            "--skills",
            "rc",
            "--model",
            "gpt-4o-mini",
            "--api-key",
            "k",
            "--dry-run",
            "--set",
            "suggestions=1",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "dry run: 1 units from 1 seeds, teacher gpt-4o-mini" in captured.out
    assert "rc " in captured.out and "assumed" in captured.out and "$" in captured.out
    assert not out.exists()


def test_generate_reports_cost_and_honours_rate_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    prices = tmp_path / "prices.yaml"
    prices.write_text("stub-model: {input: 1000, output: 2000}\n")
    out = tmp_path / "out"
    args = [
        "generate",
        "--seeds",
        str(seeds_dir(tmp_path)),
        "--out",
        str(out),
        "--skills",
        "rc",
        "--model",
        "stub-model",
        "--api-key",
        "k",
        "--prices",
        str(prices),
        "--rpm",
        "6000",
        "--tpm",
        "10000000",
        "--no-progress",
        "--set",
        "suggestions=1",
    ]
    with openai_stub(Teacher()) as (url, state):
        assert main([*args, "--base-url", url]) == 0
        first = capsys.readouterr().out
        calls = len(state.requests)
        assert main([*args, "--base-url", url, "--fresh"]) == 0  # --fresh: bought again
        assert len(state.requests) == 2 * calls
    assert "(0 answered from the cache, 0 retries)" in first
    assert "cost $" in first and "cost unknown" not in first


def test_seed_source_options_reach_the_loader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    rows = tmp_path / "rows.jsonl"
    text = "The harbour tunnel opened in May and traffic on the coast road fell. " * 6
    rows.write_text(
        json.dumps({"body": text}) + "\n" + json.dumps({"body": "Another. " + text}) + "\n"
    )
    args = ["generate", "--seeds", "hf:json", "--data-files", str(rows), "--text-field", "body"]
    args += ["--out", str(tmp_path / "out"), "--skills", "rc", "--model", "gpt-4o", "--dry-run"]
    assert main([*args, "--api-key", "k"]) == 0
    assert "dry run: 2 units from 2 seeds" in capsys.readouterr().out


def test_the_embedded_model_repairs_afresh_and_hotter_endpoints_as_shown() -> None:
    from genteach.cli import _parser, _run_settings

    args = _parser().parse_args(["generate", "--seeds", "s", "--out", "o"])
    local = _run_settings(args, uses_local=True)
    assert (local.repair_style, local.repair_temperature) == ("fresh", 1.0)
    endpoint = _run_settings(args, uses_local=False)
    assert (endpoint.repair_style, endpoint.repair_temperature) == ("show", None)
    told = _parser().parse_args(
        ["generate", "--seeds", "s", "--out", "o", "--repair-style", "show",
         "--repair-temperature", "0.3"]
    )  # fmt: skip
    settings = _run_settings(told, uses_local=True)
    assert (settings.repair_style, settings.repair_temperature) == ("show", 0.3)


def test_the_api_key_never_leaves_the_process(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A distinctive key, given through the environment and through --api-key, reaches the
    server and appears in no file of the output and export folders, nor on the console or
    in the logs (progress bars included)."""
    import logging

    caplog.set_level(logging.DEBUG)
    env_key, flag_key = "sk-genteach-ENVKEY-5f0c7d1e9a", "sk-genteach-FLAGKEY-2b8e4a6c3d"
    seeds = seeds_dir(tmp_path)
    base = ["generate", "--seeds", str(seeds), "--skills", "rc", "--model", "stub-model"]
    base += ["--set", "suggestions=1", "--set", "tasks_per_type=1"]
    with openai_stub(Teacher(), faults=[429]) as (url, state):
        monkeypatch.setenv("OPENAI_API_KEY", env_key)
        assert main([*base, "--out", str(tmp_path / "a"), "--base-url", url]) == 0
        monkeypatch.delenv("OPENAI_API_KEY")
        args = [*base, "--out", str(tmp_path / "b"), "--base-url", url, "--api-key", flag_key]
        assert main(args) == 0
        assert main([*args, "--accept-changes", "--fresh"]) == 0
    sent = {h.get("Authorization") for h in state.headers}
    assert sent == {f"Bearer {env_key}", f"Bearer {flag_key}"}  # the keys were used
    assert (
        main(["export", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "hf")])
        == 0
    )
    assert main(["inspect", str(tmp_path / "b"), "-n", "1"]) == 0
    captured = capsys.readouterr()
    files = [p for d in ("a", "b", "hf") for p in (tmp_path / d).rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in files) and any(p.suffix == ".parquet" for p in files)
    assert any(p.name == "cache.sqlite" for p in files)
    for key in (env_key, flag_key):
        for p in files:
            assert key.encode() not in p.read_bytes(), p
        assert key not in captured.out and key not in captured.err and key not in caplog.text
        assert key[-10:] not in captured.err + captured.out  # no partly masked copy either
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["endpoint"] == url.removesuffix("/v1") and "api_key" not in json.dumps(run)


def test_dry_run_counts_agree_and_say_what_they_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "docs"
    d.mkdir()
    for i in range(4):
        (d / f"doc{i}.txt").write_text(
            f"Document {i}. " + "The harbour tunnel opened in May. " * 20
        )
    (d / "tool.py").write_text("def area(width, height):\n    return width * height\n" * 12)
    args = ["generate", "--seeds", str(d), "--out", str(tmp_path / "o"), "--dry-run"]
    args += ["--model", "gpt-4o", "--api-key", "k", "--skills", "rc,text_modification"]
    assert main([*args, "--limit", "3"]) == 0
    captured = capsys.readouterr()
    # two seeds give the three units; no third seed is read
    assert "dry run: 3 units from 2 seeds, teacher gpt-4o" in captured.out
    assert captured.err.splitlines()[0] == "seeds: 2 seeds (reading stopped at --limit 3 units)"
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "dry run: 8 units from 4 seeds (1 more read suit no selected skill)" in captured.out
    assert captured.err.splitlines()[0] == "seeds: 5 seeds"


def test_rate_meter_reads_the_rate_over_its_window() -> None:
    count = 0
    meter = _RateMeter(lambda: count, window=10.0)
    assert meter.rate(now=0.0) is None  # one reading: no rate yet
    count = 50
    assert meter.rate(now=2.0) == 25.0
    count = 50  # a stall shows as the rate falling, not as the old figure
    for t in (4.0, 6.0, 8.0, 10.0, 12.0, 14.0):
        meter.rate(now=t)
    assert meter.rate(now=16.0) == 0.0
