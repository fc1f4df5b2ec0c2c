"""The Pipeline: seeds in, chat-pair records out, for the skills of a taxonomy.

Each (skill, seed) pair is a *unit*. Units run concurrently (model calls bounded by
``concurrency``); each one's records and rejects are written as soon as it ends, then a
line in ``progress.jsonl`` marks it done. Re-running with the same output folder skips
done units and never writes a record id twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genteach import __version__
from genteach.agents.base import AgentError
from genteach.flows import FlowFactory, build_flows
from genteach.flows.base import Flow, RunContext, WorkItem, unit_key
from genteach.models.base import ModelClient, ModelError, Usage
from genteach.models.resilient import ResilientModel
from genteach.prompts import PromptLibrary
from genteach.records import JsonlWriter, Seed, read_jsonl
from genteach.seeds import SeedReport, load_seeds
from genteach.taxonomy import Skill, Taxonomy, load_taxonomy, weighted_sample

log = logging.getLogger("genteach")

RECORDS_FILE = "records.jsonl"
REJECTS_FILE = "rejects.jsonl"
PROGRESS_FILE = "progress.jsonl"
RUN_FILE = "run.json"


@dataclass
class RunSettings:
    """How a run behaves. Every field has a sensible default.

    Attributes:
        seed: the run's seed number; the same seed, inputs and model answers give the
            same choices (transformers, task types, layouts, call seeds).
        concurrency: most model calls in flight at once.
        max_parse_retries: repairs asked of a model whose answer does not parse.
        max_retries: retries of a transient model error (rate limit, 5xx, timeout).
        timeout: seconds one model call may take.
        temperature / max_tokens: sampling settings sent with every call (None: the
            backend's default).
        skills_per_seed: None runs every selected skill on every seed that suits it;
            N draws N of them per seed by the skills' weights.
        limit: process at most this many units (None: all).
        overrides: stage settings replaced in every selected skill's pipeline where the
            stage has them, e.g. ``{"suggestions": 1, "tasks_per_type": 1}``.
    """

    seed: int = 0
    concurrency: int = 8
    max_parse_retries: int = 2
    max_retries: int = 5
    timeout: float | None = 600.0
    temperature: float | None = None
    max_tokens: int | None = None
    skills_per_seed: int | None = None
    limit: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Progress:
    """Live counters of a run, passed to the progress callback after each unit."""

    units_total: int = 0
    units_done: int = 0
    units_skipped: int = 0
    records: int = 0
    rejects: int = 0
    usage: Usage = field(default_factory=Usage)


@dataclass
class RunSummary:
    """What a run did."""

    out_dir: Path
    units_total: int
    units_done: int
    units_resumed: int
    records: int
    duplicates: int
    rejects: int
    usage: Usage
    seeds: str

    def __str__(self) -> str:
        return (
            f"{self.records} records, {self.rejects} rejects from {self.units_done} units "
            f"({self.units_resumed} already done); {self.usage.calls} model calls, "
            f"{self.usage.prompt_tokens} prompt + {self.usage.completion_tokens} completion "
            f"tokens; output in {self.out_dir}"
        )


class Pipeline:
    """Runs a taxonomy's skill pipelines over seeds.

    Args:
        client: the teacher model (any :class:`~genteach.models.ModelClient`).
        taxonomy: a Taxonomy, a path to a YAML file, or None for the built-in one.
        skills: skill ids to run (default: every ready skill). Planned skills are refused.
        prompts: the prompt library (default: the built-in templates).
        settings: run settings (see :class:`RunSettings`).
        flows: extra flow factories by name, for custom ``flow:`` names in the taxonomy.

    Example:
        >>> pipe = Pipeline(ScriptedModel(...), skills=["rc"])     # doctest: +SKIP
        >>> summary = await pipe.arun("seeds/", "out/")            # doctest: +SKIP
    """

    def __init__(
        self,
        client: ModelClient,
        *,
        taxonomy: Taxonomy | str | Path | None = None,
        skills: Sequence[str] | None = None,
        prompts: PromptLibrary | None = None,
        settings: RunSettings | None = None,
        flows: Mapping[str, FlowFactory] | None = None,
    ) -> None:
        self.taxonomy = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
        self.skills: list[Skill] = self.taxonomy.select(skills)
        self.prompts = prompts or PromptLibrary()
        self.settings = settings or RunSettings()
        self.client = client
        options = {
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
            "max_parse_retries": self.settings.max_parse_retries,
        }
        known = {k for s in self.skills for st in s.pipeline for k in st.settings}
        unknown = sorted(set(self.settings.overrides) - known)
        if unknown:
            raise ValueError(
                f"override {', '.join(unknown)}: no stage of skills "
                f"{', '.join(s.id for s in self.skills)} has it "
                f"(settings: {', '.join(sorted(known))})"
            )
        self.flows: dict[str, list[Flow]] = {
            s.id: build_flows(
                s, self.prompts, options=options, extra=flows, overrides=self.settings.overrides
            )
            for s in self.skills
        }

    # -- planning ---------------------------------------------------------------------
    def units(self, seeds: Iterable[Seed]) -> list[tuple[Skill, Seed]]:
        """The (skill, seed) units of a run, in a reproducible order."""
        out: list[tuple[Skill, Seed]] = []
        for seed in seeds:
            fitting = [s for s in self.skills if seed.kind in s.seed_kinds]
            if self.settings.skills_per_seed is not None and fitting:
                rng = random.Random(f"{self.settings.seed}:{seed.id}:skills")
                k = min(self.settings.skills_per_seed, len(fitting))
                fitting = weighted_sample(fitting, k, rng)
            out.extend((s, seed) for s in fitting)
        if self.settings.limit is not None:
            out = out[: self.settings.limit]
        return out

    # -- running ----------------------------------------------------------------------
    def run(
        self,
        seeds: Iterable[Seed] | str | Path,
        out_dir: str | Path,
        *,
        fresh: bool = False,
        progress: Callable[[Progress], None] | None = None,
    ) -> RunSummary:
        """Synchronous :meth:`arun`. Works in notebooks, where an event loop is running,
        by running the pipeline in a worker thread with its own loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(seeds, out_dir, fresh=fresh, progress=progress))
        box: dict[str, Any] = {}

        def worker() -> None:
            try:
                box["value"] = asyncio.run(
                    self.arun(seeds, out_dir, fresh=fresh, progress=progress)
                )
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=worker, name="genteach-run")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    async def arun(
        self,
        seeds: Iterable[Seed] | str | Path,
        out_dir: str | Path,
        *,
        fresh: bool = False,
        progress: Callable[[Progress], None] | None = None,
    ) -> RunSummary:
        """Run every unit not yet done and write its records; see the module docstring.

        Args:
            seeds: seeds, or a path for :func:`genteach.seeds.load_seeds`.
            out_dir: the output folder (``records.jsonl``, ``rejects.jsonl``,
                ``progress.jsonl``, ``run.json``).
            fresh: delete the folder's earlier output first instead of resuming.
            progress: called with live counters before the first unit, after each model
                call and after each finished unit.
        """
        report = SeedReport()
        seed_list = (
            load_seeds(seeds, report=report) if isinstance(seeds, str | Path) else list(seeds)
        )
        if not isinstance(seeds, str | Path):
            report.kept = len(seed_list)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if fresh:
            for name in (RECORDS_FILE, REJECTS_FILE, PROGRESS_FILE, RUN_FILE):
                (out / name).unlink(missing_ok=True)
        self._check_run_file(out)

        done = {str(p["unit"]) for p in read_jsonl(out / PROGRESS_FILE)}
        seen_ids = {str(r["id"]) for r in read_jsonl(out / RECORDS_FILE)}
        units = self.units(seed_list)
        todo = [(s, seed) for s, seed in units if unit_key(s.id, seed.id) not in done]
        counters = Progress(
            units_total=len(units),
            units_done=len(units) - len(todo),
            units_skipped=len(units) - len(todo),
        )
        if progress is not None:
            progress(counters)

        def on_usage(usage: Usage) -> None:
            counters.usage = counters.usage + usage
            if progress is not None:
                progress(counters)

        client = ResilientModel(
            self.client,
            concurrency=self.settings.concurrency,
            max_retries=self.settings.max_retries,
            timeout=self.settings.timeout,
            on_usage=on_usage,
        )
        ctx = RunContext(
            client=client,
            prompts=self.prompts,
            teacher=self.client.model_name,
            version=__version__,
        )
        duplicates = 0
        records_w = JsonlWriter(out / RECORDS_FILE)
        rejects_w = JsonlWriter(out / REJECTS_FILE)
        progress_w = JsonlWriter(out / PROGRESS_FILE)
        try:
            queue: asyncio.Queue[tuple[Skill, Seed]] = asyncio.Queue()
            for unit in todo:
                queue.put_nowait(unit)

            async def worker() -> None:
                nonlocal duplicates
                while True:
                    try:
                        skill, seed = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    item = await self._process(skill, seed, ctx)
                    for rec in item.records:
                        if rec.id in seen_ids:
                            duplicates += 1
                            continue
                        seen_ids.add(rec.id)
                        records_w.write(rec)
                        counters.records += 1
                    for rej in item.rejects:
                        rejects_w.write(rej)
                    counters.rejects += len(item.rejects)
                    progress_w.write(
                        {
                            "unit": item.unit,
                            "records": len(item.records),
                            "rejects": len(item.rejects),
                            "usage": item.usage.as_dict(),
                        }
                    )
                    counters.units_done += 1
                    if progress is not None:
                        progress(counters)

            # Enough units in flight to keep `concurrency` calls busy.
            n_workers = max(1, min(len(todo), self.settings.concurrency))
            await asyncio.gather(*(worker() for _ in range(n_workers)))
        finally:
            records_w.close()
            rejects_w.close()
            progress_w.close()
        return RunSummary(
            out_dir=out,
            units_total=len(units),
            units_done=counters.units_done,
            units_resumed=counters.units_skipped,
            records=counters.records,
            duplicates=duplicates,
            rejects=counters.rejects,
            usage=counters.usage,
            seeds=report.summary(),
        )

    async def _process(self, skill: Skill, seed: Seed, ctx: RunContext) -> WorkItem:
        rng = random.Random(f"{self.settings.seed}:{skill.id}:{seed.id}")
        item = WorkItem(seed=seed, skill=skill, rng=rng)
        for flow in self.flows[skill.id]:
            try:
                await flow(item, ctx)
            except AgentError as exc:
                item.add_usage(exc.usage)
                item.reject(flow.name, exc.agent, exc.reason, exc.raw)
                break
            except ModelError as exc:
                item.reject(flow.name, flow.name, f"model error: {exc}")
                break
            except Exception as exc:  # one bad item never stops a run
                log.exception("unit %s failed in %s", item.unit, flow.name)
                item.reject(flow.name, flow.name, f"internal error: {type(exc).__name__}: {exc}")
                break
            if flow.name != "content_transformation" and not item.tasks and not item.records:
                break
        return item

    def _check_run_file(self, out: Path) -> None:
        """Write run.json, or check that a resumed run uses the same settings."""
        meta = {
            "genteach_version": __version__,
            "teacher": self.client.model_name,
            "taxonomy": self.taxonomy.source or self.taxonomy.name,
            "taxonomy_sha256": _taxonomy_hash(self.taxonomy),
            "skills": [s.id for s in self.skills],
            "settings": asdict(self.settings),
        }
        path = out / RUN_FILE
        if path.exists():
            old = json.loads(path.read_text(encoding="utf-8"))
            keys = ("skills", "taxonomy_sha256")
            changed = [k for k in keys if old.get(k) != meta[k]]
            if old.get("settings", {}).get("seed") != self.settings.seed:
                changed.append("settings.seed")
            if changed:
                raise ValueError(
                    f"{path}: this folder holds a run with other {', '.join(changed)}; "
                    "use another output folder, or --fresh to start over"
                )
            return
        path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _taxonomy_hash(taxonomy: Taxonomy) -> str:
    blob = taxonomy.model_dump_json(exclude={"source"})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


__all__ = ["Pipeline", "Progress", "RunSettings", "RunSummary"]
