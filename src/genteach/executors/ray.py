"""Run a generation over a Ray cluster: seeds are sharded, each shard is a normal run.

Each seed goes to shard ``sha256(seed.id) mod shards``, so a rerun maps every seed to the
same shard. A pool of Ray actors (``ray.data`` ``map_batches`` with an async callable
class) runs :meth:`Pipeline.arun` on one shard at a time; shard ``i`` writes a normal
genteach output folder ``<out>/shards/shard-0000i/`` and resumes on its own.
``<out>/ray.json`` records the sharding; a rerun with another shard count is refused.
The output folder must be on a filesystem that every node sees at the same path.

Needs the ``ray`` extra: ``pip install 'genteach[ray]'``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeAlias

from genteach import __version__
from genteach.flows import FlowType
from genteach.models.base import ModelClient, Usage
from genteach.models.config import ModelConfig, build_client
from genteach.models.scripted import ScriptedModel
from genteach.pipeline import RUN_FILE, Pipeline, RunSettings, RunSummary
from genteach.prompts import PromptLibrary
from genteach.records import Seed
from genteach.seeds import SeedReport, load_seeds
from genteach.taxonomy import Taxonomy, load_taxonomy
from genteach.trajectories import merge_reports, read_report

RAY_FILE = "ray.json"
SHARDS_DIR = "shards"
_SHARD_NAME = re.compile(r"^shard-\d{5}$")

#: What builds the teacher in each actor: a ModelConfig (for :func:`build_client`) or a
#: picklable zero-argument callable that returns a client.
ClientSpec: TypeAlias = ModelConfig | Callable[[], ModelClient]


def shard_of(seed_id: str, shards: int) -> int:
    """The shard of a seed: stable across runs, machines and Python processes."""
    return int(hashlib.sha256(seed_id.encode("utf-8")).hexdigest()[:16], 16) % shards


def shard_dir(out_dir: str | Path, shard: int) -> Path:
    """The output folder of shard ``shard``: ``<out>/shards/shard-NNNNN``."""
    return Path(out_dir) / SHARDS_DIR / f"shard-{shard:05d}"


@dataclass
class ShardedRunSummary(RunSummary):
    """What a sharded run did: the totals, and each shard's own summary."""

    shards: list[RunSummary] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{super().__str__()} ({len(self.shards)} shards)"


@dataclass(frozen=True)
class RunSpec:
    """Everything an actor needs to run a shard; picklable."""

    client: ClientSpec
    taxonomy: Taxonomy
    skills: list[str]
    prompt_dirs: list[str]
    settings: RunSettings
    flows: Mapping[str, FlowType] | None
    out_dir: str


class ShardWorker:
    """A Ray Data actor: runs the pipeline on the shards of each batch it is given.

    A batch has columns ``shard`` (index), ``seeds`` (the shard's seeds as JSON) and
    ``limit`` (units to run, -1 for all); the result has one pickled :class:`RunSummary` per shard.
    The teacher is built once per actor, on first use.
    """

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self._client: ModelClient | None = None
        self._prompts: PromptLibrary | None = None

    async def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[bytes]]:
        out = []
        for shard, seeds, limit in zip(batch["shard"], batch["seeds"], batch["limit"], strict=True):
            rows = json.loads(str(seeds))
            summary = await self.run_shard(
                int(shard),
                [Seed.model_validate(r) for r in rows],
                None if int(limit) < 0 else int(limit),
            )
            out.append(pickle.dumps(summary))
        return {"summary": out}

    async def run_shard(self, shard: int, seeds: list[Seed], limit: int | None) -> RunSummary:
        """Run (or resume) one shard's seeds into its own folder."""
        spec = self.spec
        if not (Path(spec.out_dir) / RAY_FILE).exists():
            raise RuntimeError(
                f"{spec.out_dir}/{RAY_FILE} is not visible on node {socket.gethostname()}: "
                "the output folder must be on a filesystem every Ray node sees at the same path"
            )
        if self._client is None:
            self._client = (
                build_client(spec.client) if isinstance(spec.client, ModelConfig) else spec.client()
            )
        if self._prompts is None:
            self._prompts = PromptLibrary(spec.prompt_dirs)
        if limit == 0:  # the run's --limit is used up by earlier shards: run no unit here
            seeds, limit = [], None
        pipeline = Pipeline(
            self._client,
            taxonomy=spec.taxonomy,
            skills=spec.skills,
            prompts=self._prompts,
            settings=replace(spec.settings, limit=limit),
            flows=spec.flows,
        )
        summary = await pipeline.arun(seeds, shard_dir(spec.out_dir, shard))
        summary.seeds = f"{len(seeds)} seeds"
        return summary


def run_on_ray(
    client: ClientSpec,
    seeds: Iterable[Seed] | str | Path,
    out_dir: str | Path,
    *,
    taxonomy: Taxonomy | str | Path | None = None,
    skills: Sequence[str] | None = None,
    prompt_dirs: Sequence[str | Path] = (),
    settings: RunSettings | None = None,
    flows: Mapping[str, FlowType] | None = None,
    shards: int = 8,
    actors: int = 2,
    cpus_per_actor: float = 1.0,
    address: str | None = None,
    fresh: bool = False,
    on_shard: Callable[[RunSummary], None] | None = None,
) -> ShardedRunSummary:
    """Shard the seeds and run each shard as a :class:`Pipeline` run on a Ray actor.

    Args:
        client: a ModelConfig, or a picklable zero-argument callable returning a client;
            each actor builds its own teacher from it.
        seeds: seeds, or a path for :func:`genteach.seeds.load_seeds` (read here, on the
            driver).
        out_dir: the output folder: ``ray.json`` and ``shards/shard-NNNNN/``. It must be
            on a filesystem every node sees at the same path.
        taxonomy / skills / settings / flows: as for :class:`Pipeline`; ``settings.limit``
            counts units over the whole run, as in a single-process run.
        prompt_dirs: extra prompt folders (paths that exist on every node).
        shards: number of shards; fixed for the life of an output folder.
        actors: Ray actors running shards at once, one shard each. Every actor keeps up
            to ``settings.concurrency`` model calls in flight; ``settings.rpm`` and
            ``settings.tpm`` cap the whole run, so each actor gets an equal share.
        cpus_per_actor: CPUs Ray reserves for each actor.
        address: the Ray cluster (``HOST:6379``, ``ray://HOST:10001``, ``auto``); None:
            ``RAY_ADDRESS``, else a local cluster. Unused if Ray is already initialized.
        fresh: delete earlier shard output first instead of resuming.
        on_shard: called on the driver with each shard's summary as it finishes.

    Example:
        >>> run_on_ray(ModelConfig.from_env(), "seeds/", "out/", shards=64, actors=8,
        ...            address="head:6379")                            # doctest: +SKIP
    """
    if shards < 1 or actors < 1:
        raise ValueError(f"shards and actors must be at least 1 (got {shards}, {actors})")
    ray = _import_ray()
    settings = settings or RunSettings()
    tax = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
    report = SeedReport()
    if isinstance(seeds, str | Path):
        seed_list = load_seeds(seeds, report=report)
    else:
        seed_list = list(seeds)
        report.kept = len(seed_list)

    # Plan on the driver: checks skills and overrides before any actor starts, and turns
    # a whole-run limit into each shard's share of the same units.
    planner = Pipeline(
        ScriptedModel([], name="planner"),
        taxonomy=tax,
        skills=skills,
        prompts=PromptLibrary(prompt_dirs),
        settings=settings,
        flows=flows,
    )
    chosen = Counter(seed.id for _, seed in planner.units(seed_list))
    by_shard: list[list[Seed]] = [[] for _ in range(shards)]
    for seed in seed_list:
        if settings.limit is None or chosen[seed.id]:
            by_shard[shard_of(seed.id, shards)].append(seed)
    items = [
        {
            "shard": i,
            "seeds": json.dumps([s.model_dump() for s in part]),
            "limit": -1 if settings.limit is None else sum(chosen[s.id] for s in part),
        }
        for i, part in enumerate(by_shard)
    ]

    out = Path(out_dir)
    _prepare_out(out, shards, fresh)
    pool = min(actors, shards)
    spec = RunSpec(
        client=client,
        taxonomy=tax,
        skills=[s.id for s in planner.skills],
        prompt_dirs=[str(Path(d).resolve()) for d in prompt_dirs],
        settings=replace(
            settings,
            rpm=None if settings.rpm is None else settings.rpm / pool,
            tpm=None if settings.tpm is None else settings.tpm / pool,
        ),
        flows=flows,
        out_dir=str(out.resolve()),
    )

    started = False
    if not ray.is_initialized():
        ray.init(address=address)
        started = True
    try:
        ds = ray.data.from_items(items, override_num_blocks=shards).map_batches(
            ShardWorker,
            fn_constructor_kwargs={"spec": spec},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=pool, max_tasks_in_flight_per_actor=1),
            num_cpus=cpus_per_actor,
        )
        done: list[RunSummary] = []
        for row in ds.iter_rows():
            summary: RunSummary = pickle.loads(row["summary"])
            done.append(summary)
            if on_shard is not None:
                on_shard(summary)
    finally:
        if started:
            ray.shutdown()
    done.sort(key=lambda s: s.out_dir.name)
    return _total(out, report.summary(), done)


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError("the Ray executor needs Ray Data: pip install 'genteach[ray]'") from exc
    return ray


def _prepare_out(out: Path, shards: int, fresh: bool) -> None:
    """Write ray.json, or check that a resumed run keeps the same shard count."""
    if (out / RUN_FILE).exists():
        raise ValueError(
            f"{out} holds a single-process run ({RUN_FILE}); use another output folder "
            "for a sharded run"
        )
    path = out / RAY_FILE
    if fresh:
        path.unlink(missing_ok=True)
        if (out / SHARDS_DIR).is_dir():
            for d in (out / SHARDS_DIR).iterdir():
                if d.is_dir() and _SHARD_NAME.match(d.name):
                    shutil.rmtree(d)
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old.get("shards") != shards:
            raise ValueError(
                f"{path}: this folder was sharded into {old.get('shards')} shards, not "
                f"{shards}; resume with --shards {old.get('shards')}, or use another output "
                "folder, or --fresh to start over"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "genteach_version": __version__,
        "executor": "ray",
        "shards": shards,
        "sharding": "sha256(seed id) mod shards",
        "layout": f"{SHARDS_DIR}/shard-NNNNN/",
    }
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _total(out: Path, seeds: str, parts: list[RunSummary]) -> ShardedRunSummary:
    """Add up the shards' summaries: counts and usage add, and so do the counts in dicts
    (verifications per skill, option positions) and the trajectory reports (written to
    ``out`` as well); a number that is None in any shard (an unknown cost) is None in the
    total."""
    values: dict[str, Any] = {"out_dir": out, "seeds": seeds, "shards": parts}
    for f in fields(RunSummary):
        if f.name in values:
            continue
        items = [getattr(p, f.name) for p in parts]
        if f.name == "usage":
            values[f.name] = sum(items, Usage())
        elif f.name == "episodes":  # the shards' trajectory reports, added up
            merged = merge_reports(read_report(p.out_dir) for p in parts)
            if merged.environments:
                merged.write(out)
            values[f.name] = merged.lines()
        elif all(isinstance(x, dict) for x in items):
            values[f.name] = _add_counts(items)
        elif any(x is None for x in items):
            values[f.name] = None
        else:
            values[f.name] = sum(items)
    return ShardedRunSummary(**values)


def _add_counts(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts in (possibly nested) dicts, added key by key."""
    total: dict[str, Any] = {}
    for item in items:
        for key, value in item.items():
            if isinstance(value, dict):
                total[key] = _add_counts([total.get(key, {}), value])
            else:
                total[key] = total.get(key, 0) + value
    return total


__all__ = ["RunSpec", "ShardWorker", "ShardedRunSummary", "run_on_ray", "shard_dir", "shard_of"]
