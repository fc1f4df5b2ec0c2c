"""The Ray executor: sharding, per-shard output and resume, on a local 2-CPU Ray cluster."""

from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from genteach import ModelConfig, Pipeline, RunSettings, ScriptedModel
from genteach.executors import (
    RunSpec,
    ShardedRunSummary,
    ShardWorker,
    run_on_ray,
    shard_dir,
    shard_of,
)
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from genteach.taxonomy import load_taxonomy
from scripted_teacher import Teacher
from test_pipeline import MINI  # the small taxonomy the pipeline tests use


def teacher_client() -> ScriptedModel:
    """A picklable zero-argument client factory: each actor gets its own teacher."""
    return ScriptedModel(Teacher())


def seeds(n: int) -> list[Seed]:
    return [
        Seed.from_text(f"Document number {i}. " + "Some facts about tunnels. " * 10)
        for i in range(n)
    ]


def record_ids(path: Path) -> list[str]:
    return [json.loads(x)["id"] for x in path.read_text().splitlines()]


@pytest.fixture
def mini(tmp_path: Path, guidance_dir: Path) -> tuple[Path, Path]:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI)
    return path, guidance_dir


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    # Ray workers import the client factory by name: put this folder on their path.
    here = str(Path(__file__).resolve().parent)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": here}},
    )
    yield
    ray.shutdown()


def test_public_names() -> None:
    import genteach.executors as ex

    assert sorted(ex.__all__) == sorted(
        ["RunSpec", "ShardWorker", "ShardedRunSummary", "run_on_ray", "shard_dir", "shard_of"]
    )
    assert all(hasattr(ex, n) for n in ex.__all__)


def test_shards_are_stable_and_spread() -> None:
    ids = [s.id for s in seeds(60)]
    first = [shard_of(i, 3) for i in ids]
    assert first == [shard_of(i, 3) for i in ids], "same seed, same shard"
    assert set(first) == {0, 1, 2}
    assert shard_dir("out", 7) == Path("out/shards/shard-00007")


def test_client_factory_pickles() -> None:
    again = pickle.loads(pickle.dumps(teacher_client))
    assert again().model_name == "scripted"


def test_spec_pickles_and_a_worker_refuses_an_unshared_folder(tmp_path: Path) -> None:
    spec = RunSpec(
        client=ModelConfig(model="m", base_url="http://teacher:8000/v1", api_key="EMPTY"),
        taxonomy=load_taxonomy(),
        skills=["rc"],
        prompt_dirs=[],
        settings=RunSettings(),
        flows=None,
        out_dir=str(tmp_path / "out"),
    )
    worker = ShardWorker(pickle.loads(pickle.dumps(spec)))
    with pytest.raises(
        RuntimeError,
        match=r"ray\.json is not visible on node .*: the output folder must be on a filesystem every Ray node sees",
    ):
        asyncio.run(worker.run_shard(0, seeds(1), None))


def test_missing_ray_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from genteach.executors import run_on_ray\n"
        "try:\n"
        "    run_on_ray(None, [], 'out')\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'genteach[ray]'" in res.stdout


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
def test_sharded_run_matches_a_plain_run_and_resumes_per_shard(
    tmp_path: Path, mini: tuple[Path, Path], ray_cluster: None
) -> None:
    taxonomy, prompt_dir = mini
    plain = Pipeline(
        ScriptedModel(Teacher()), taxonomy=taxonomy, prompts=PromptLibrary([prompt_dir])
    ).run(seeds(6), tmp_path / "plain")
    out = tmp_path / "out"
    finished: list[str] = []

    def run(**kw: object) -> ShardedRunSummary:
        return run_on_ray(
            teacher_client,
            seeds(6),
            out,
            taxonomy=taxonomy,
            prompt_dirs=[prompt_dir],
            on_shard=lambda s: finished.append(s.out_dir.name),
            **kw,  # type: ignore[arg-type]
        )

    first = run(shards=3, actors=2)
    assert sorted(finished) == ["shard-00000", "shard-00001", "shard-00002"]
    assert (first.records, first.units_done, first.rejects) == (plain.records, 6, 0)
    assert first.usage == plain.usage
    assert json.loads((out / "ray.json").read_text())["shards"] == 3
    ids: list[str] = []
    for shard in range(3):
        folder = shard_dir(out, shard)
        assert {p.name for p in folder.iterdir()} >= {"records.jsonl", "progress.jsonl", "run.json"}
        ids += record_ids(folder / "records.jsonl")
    assert sorted(ids) == sorted(record_ids(tmp_path / "plain" / "records.jsonl"))
    per_shard = {s.out_dir.name: s.units_total for s in first.shards}
    expected = {f"shard-{i:05d}": 0 for i in range(3)}
    for seed in seeds(6):
        expected[f"shard-{shard_of(seed.id, 3):05d}"] += 1
    assert per_shard == expected

    again = run(shards=3, actors=1)
    assert (again.records, again.units_resumed, again.usage.calls) == (0, 6, 0)
    assert sum(len(record_ids(shard_dir(out, i) / "records.jsonl")) for i in range(3)) == len(ids)

    with pytest.raises(
        ValueError, match=r"ray\.json: this folder was sharded into 3 shards, not 2"
    ):
        run(shards=2)
    fresh = run(shards=2, fresh=True)
    assert fresh.records == plain.records and len(fresh.shards) == 2
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["shard-00000", "shard-00001"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
def test_limit_counts_units_over_the_whole_run(
    tmp_path: Path, mini: tuple[Path, Path], ray_cluster: None
) -> None:
    taxonomy, prompt_dir = mini
    kw = {"taxonomy": taxonomy, "prompt_dirs": [prompt_dir], "shards": 3}
    first = run_on_ray(
        teacher_client, seeds(6), tmp_path / "out", settings=RunSettings(limit=4), **kw
    )  # type: ignore[arg-type]
    assert first.units_done == 4
    rest = run_on_ray(teacher_client, seeds(6), tmp_path / "out", **kw)  # type: ignore[arg-type]
    assert (rest.units_resumed, rest.units_done, rest.units_total) == (4, 6, 6)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
def test_actors_build_the_teacher_from_a_model_config(tmp_path: Path, ray_cluster: None) -> None:
    from openai_stub import openai_stub

    settings = RunSettings(overrides={"suggestions": 1, "tasks_per_type": 1})
    with openai_stub(Teacher()) as (url, state):
        cfg = ModelConfig(model="stub-model", base_url=url, api_key="EMPTY")
        summary = run_on_ray(
            cfg, seeds(2), tmp_path / "out", skills=["rc"], settings=settings, shards=2
        )
    assert summary.records > 0 and summary.rejects == 0
    assert summary.usage.calls == len(state.requests)
    run = json.loads((shard_dir(tmp_path / "out", 0) / "run.json").read_text())
    assert run["teacher"] == "stub-model"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
def test_cli_executor_ray_runs_shards_and_plain_runs_refuse_the_folder(
    tmp_path: Path, ray_cluster: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from genteach.cli import main
    from openai_stub import openai_stub

    folder = tmp_path / "seeds"
    folder.mkdir()
    for i, seed in enumerate(seeds(3)):
        (folder / f"{i}.txt").write_text(seed.text)
    out = tmp_path / "out"
    with openai_stub(Teacher()) as (url, _state):
        common = ["generate", "--seeds", str(folder), "--out", str(out), "--skills", "rc"]
        common += ["--base-url", url, "--model", "stub-model", "--api-key", "k"]
        common += ["--set", "suggestions=1", "--set", "tasks_per_type=1", "--no-progress"]
        assert main([*common, "--executor", "ray", "--shards", "2", "--actors", "2"]) == 0
        printed = capsys.readouterr().out
        assert "from 3 units (0 already done)" in printed
        assert main([*common, "--executor", "ray", "--shards", "2"]) == 0  # resumes
        assert "from 3 units (3 already done); 0 model calls" in capsys.readouterr().out
        assert main(common) == 2  # a plain run does not mix into a sharded folder
    assert "holds a sharded Ray run" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["shard-00000", "shard-00001"]
