"""The Pipeline: seeds in, chat-pair records out, for the skills of a taxonomy.

Each (skill, seed) pair is a *unit*. Units run concurrently (model calls bounded by
``concurrency``); each one's records and rejects are written as soon as it ends, then a
line in ``progress.jsonl`` marks it done. Re-running with the same output folder skips
done units and never writes a record id twice. ``run.json`` records what made the folder
(teacher, endpoint, taxonomy, template hashes, settings); a resume that would mix in
another teacher or other templates is refused unless asked for (``accept_changes``).

done units and never writes a record id twice.

A unit is marked done only when it ended on its own terms (records, or rejects with a
reason). A model call that failed transiently past its retries leaves its unit unfinished:
it is redone later in the run (up to :data:`UNIT_RETRIES` times) and, if it still fails,
on resume. A fatal endpoint error (wrong key, unknown model, nothing listening) or an
outage past the deadline stops the whole run at once, and no unit is marked done after it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from genteach import __version__
from genteach.agents.base import AgentError, RepairStyle
from genteach.cache import CACHE_FILE
from genteach.cost import PriceTable, format_cost
from genteach.flows import build_flows, known_settings
from genteach.flows.base import Flow, FlowBuild, FlowType, Judge, RunContext, WorkItem, unit_key
from genteach.keys import AnswerKey, KeyKinds
from genteach.models.base import (
    Completion,
    FatalModelError,
    ModelClient,
    ModelError,
    ModelRequest,
    OutageError,
    TransientModelError,
    Usage,
)
from genteach.models.config import LOCAL_REPAIR_STYLE, LOCAL_REPAIR_TEMPERATURE
from genteach.models.stack import CallSettings, ModelStack
from genteach.preflight import check_templates, naming_file, run_templates
from genteach.prompts import PromptLibrary
from genteach.records import JsonlWriter, Seed, read_jsonl
from genteach.retrieval import SeedIndex
from genteach.runtime import Sandbox
from genteach.seeds import SeedReport, Skip, iter_seeds, require_seeds
from genteach.taxonomy import Skill, Taxonomy, TaxonomyError, load_taxonomy, weighted_sample
from genteach.trajectories import EPISODE_STAGES, trajectory_report

log = logging.getLogger("genteach")

RECORDS_FILE = "records.jsonl"
REJECTS_FILE = "rejects.jsonl"
PROGRESS_FILE = "progress.jsonl"
RUN_FILE = "run.json"
SKIPS_FILE = "skips.jsonl"
#: The folder of the run's seed index (built when a stage needs it; see :mod:`genteach.retrieval`).
INDEX_DIR = "index"
LOCK_FILE = ".lock"
#: Times a run redoes, after its other units, a unit left unfinished by transient errors.
UNIT_RETRIES = 2


@pydantic_dataclass(config=ConfigDict(extra="forbid"))
class RunSettings(CallSettings):
    """How a run behaves. Every field has a default and a description, which is also the
    help of its ``genteach generate`` flag (``--max-parse-retries`` for
    ``max_parse_retries``); values out of range are refused when the settings are made.
    How the teacher is called (concurrency, retries, the outage breaker) comes from
    :class:`~genteach.models.stack.CallSettings`, shared with ``genteach judge`` and
    ``genteach eval run``.
    """

    seed: int = Field(
        default=0,
        description="run seed: the same seed, inputs and model answers give the same choices "
        "(transformers, task types, layouts, call seeds)",
    )
    cache: bool = Field(
        default=True,
        description="keep every model answer in OUT/cache.sqlite, so that redoing a step after "
        "a crash costs no model call",
    )
    max_parse_retries: int = Field(
        default=2, ge=0, description="repairs asked of a model whose answer does not parse"
    )
    temperature: float | None = Field(
        default=None,
        ge=0,
        description="sampling temperature of every call (default: the backend's)",
    )
    max_tokens: int | None = Field(
        default=None, ge=1, description="most tokens of one model answer"
    )
    repair_temperature: float | None = Field(
        default=None,
        ge=0,
        description="temperature of the calls asking to repair a malformed answer (default: "
        f"the temperature; {LOCAL_REPAIR_TEMPERATURE} on the embedded model, whose nearly "
        "greedy sampling otherwise repeats the answer it was asked to fix)",
    )
    repair_style: RepairStyle = Field(
        default="show",
        description="repair a malformed answer by showing it with the reason (show, the "
        f"default) or by asking again with a note of the reason ({LOCAL_REPAIR_STYLE}, the "
        "default on the embedded model, which copies an answer shown to it)",
    )
    skills_per_seed: int | None = Field(
        default=None,
        ge=1,
        description="draw N skills per seed by the skills' weights (default: every selected "
        "skill that suits the seed)",
    )
    limit: int | None = Field(
        default=None, ge=1, description="process at most N (skill, seed) units (default: all)"
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="override a pipeline setting in every stage that has it, e.g. --set "
        "suggestions=1 --set tasks_per_type=1 (repeatable)",
        json_schema_extra={"flag": "--set", "metavar": "KEY=VALUE"},
    )


@dataclass
class Progress:
    """Live counters of a run, passed to the progress callback.

    ``units_total`` is ``None`` while the seeds are streamed and not yet all read.
    ``usage`` counts the calls actually sent (cache hits are free and counted apart);
    ``cost`` is in dollars, ``None`` when the teacher's price is unknown.
    """

    units_total: int | None = 0
    units_done: int = 0
    units_skipped: int = 0
    records: int = 0
    rejects: int = 0
    usage: Usage = field(default_factory=Usage)
    cached_calls: int = 0
    retries: int = 0
    concurrency: int = 0
    cost: float | None = None
    verified: dict[str, dict[str, int]] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)


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
    cached_calls: int = 0
    retries: int = 0
    cost: float | None = None
    seeds_skipped: int = 0
    units_unfinished: int = 0
    verified: dict[str, dict[str, int]] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    #: Per environment: episodes attempted, kept and why the others were filtered
    #: (:mod:`genteach.trajectories`; also in ``trajectories.json``).
    episodes: list[str] = field(default_factory=list)

    def verification_line(self) -> str:
        """Answers checked against their keys, per skill: e.g. ``rc 9 verified, 2
        disagreed, 1 unchecked``."""
        parts = []
        for skill, c in sorted(self.verified.items()):
            parts.append(
                f"{skill} {c.get('passed', 0)} verified, {c.get('failed', 0)} disagreed, "
                f"{c.get('unchecked', 0)} unchecked"
            )
        line = "answers checked against their keys: " + ("; ".join(parts) or "none")
        total = sum(self.positions.values())
        if total:
            shares = ", ".join(f"{p} {n / total:.0%}" for p, n in sorted(self.positions.items()))
            line += f"\ncorrect option's position in {total} multiple-choice records: {shares}"
        return line

    def __str__(self) -> str:
        text = (
            f"{self.records} records, {self.rejects} rejects from {self.units_done} units "
            f"({self.units_resumed} already done); {self.usage.calls} model calls "
            f"({self.cached_calls} answered from the cache, {self.retries} retries), "
            f"{self.usage.prompt_tokens} prompt + {self.usage.completion_tokens} completion "
            f"tokens, cost {format_cost(self.cost)}; output in {self.out_dir}\n"
            f"{self.verification_line()}"
        )
        if self.episodes:
            text += "\nepisodes: " + "; ".join(self.episodes)
        if self.units_unfinished:
            text += (
                f"; {self.units_unfinished} units left unfinished by model errors that "
                "outlasted their retries: run the same command to redo them"
            )
        return text


class Pipeline:
    """Runs a taxonomy's skill pipelines over seeds.

    Args:
        client: the teacher model (any :class:`~genteach.models.ModelClient`).
        taxonomy: a Taxonomy, a path to a YAML file, or None for the built-in one.
        skills: skill ids to run (default: every ready skill). Planned skills are refused.
        prompts: the prompt library (default: the built-in templates).
        settings: run settings (see :class:`RunSettings`).
        flows: extra flow classes by name, for custom ``flow:`` names in the taxonomy.
        prices: the price table for cost accounting (default: the built-in one).
        keys: extra answer-key classes (custom ``key:`` kinds in the taxonomy).
        judge: decides answers code cannot check (free text); None (the default) leaves
            them ``unchecked``.
        endpoint: where the teacher is served, recorded in ``run.json`` as
            ``scheme://host:port`` only (see :attr:`ModelConfig.endpoint
            <genteach.models.ModelConfig.endpoint>`); a resume against another is refused.
        sandbox: where program-tests keys run the teacher's code (default: a
            :class:`~genteach.runtime.Sandbox` with its default limits, made when the first
            such answer is verified).

    Raises:
        TaxonomyError: a selected skill is unknown or planned, a stage setting or override
            is unknown, or a template a selected skill names is missing, does not compile
            or includes a missing one: all found here, before any model call.

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
        flows: Mapping[str, FlowType] | None = None,
        prices: PriceTable | None = None,
        keys: Sequence[type[AnswerKey]] = (),
        judge: Judge | None = None,
        endpoint: str | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.taxonomy = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
        self.skills: list[Skill] = self.taxonomy.select(skills)
        self.prompts = prompts or PromptLibrary()
        self.settings = settings or RunSettings()
        self.client = client
        self.prices = prices or PriceTable()
        self.endpoint = endpoint
        options = {
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
            "max_parse_retries": self.settings.max_parse_retries,
            "repair_temperature": self.settings.repair_temperature,
            "repair_style": self.settings.repair_style,
        }
        with naming_file(self.taxonomy.source or self.taxonomy.name):
            self.keys = KeyKinds([*self.taxonomy.key_classes(), *keys])
        self.judge = judge
        self.sandbox = sandbox
        known = known_settings(self.skills, flows)
        unknown = sorted(set(self.settings.overrides) - known)
        if unknown:
            raise ValueError(
                f"--set {', '.join(unknown)}: no stage of skills "
                f"{', '.join(s.id for s in self.skills)} has it "
                f"(settings: {', '.join(sorted(known))})"
            )
        build = FlowBuild(prompts=self.prompts, options=options, keys=self.keys)
        source = self.taxonomy.source or self.taxonomy.name
        with naming_file(source):
            self.flows: dict[str, list[Flow]] = {
                s.id: build_flows(
                    s, build, source=source, extra=flows, overrides=self.settings.overrides
                )
                for s in self.skills
            }
        built = [(s, self.flows[s.id]) for s in self.skills]
        problems = check_templates(built, self.prompts, source)
        if problems:
            more = len(problems) - 1
            raise TaxonomyError(
                problems[0]
                + (f" (and {more} more: `genteach taxonomy validate` lists them)" if more else "")
            )
        #: Every template a run may render (with what they include), for run.json.
        self.templates: list[str] = run_templates(built, self.prompts)

    # -- identity ---------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """What makes this run's output: written to ``run.json``, compared on resume."""
        return {
            "genteach_version": __version__,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "teacher": self.client.model_name,
            "endpoint": self.endpoint,
            "taxonomy": self.taxonomy.source or self.taxonomy.name,
            "taxonomy_sha256": _taxonomy_hash(self.taxonomy),
            "skills": [s.id for s in self.skills],
            "templates_sha256": self.prompts.chain_hash(self.templates),
            "templates": self.prompts.hashes(self.templates),
            "settings": asdict(self.settings),
        }

    # -- planning ---------------------------------------------------------------------
    def iter_units(self, seeds: Iterable[Seed]) -> Iterator[tuple[Skill, Seed]]:
        """The (skill, seed) units of a run, lazily, in a reproducible order. With a
        ``limit``, no seed is read after the last unit."""
        n = 0
        limit = self.settings.limit
        for seed in seeds:
            fitting = [s for s in self.skills if seed.kind in s.seed_kinds]
            if self.settings.skills_per_seed is not None and fitting:
                rng = random.Random(f"{self.settings.seed}:{seed.id}:skills")
                k = min(self.settings.skills_per_seed, len(fitting))
                fitting = weighted_sample(fitting, k, rng)
            for skill in fitting:
                n += 1
                yield skill, seed
                if limit is not None and n >= limit:
                    return

    def units(self, seeds: Iterable[Seed]) -> list[tuple[Skill, Seed]]:
        """The (skill, seed) units of a run, in a reproducible order."""
        return list(self.iter_units(seeds))

    # -- running ----------------------------------------------------------------------
    def run(
        self,
        seeds: Iterable[Seed] | str | Path,
        out_dir: str | Path,
        *,
        fresh: bool = False,
        progress: Callable[[Progress], None] | None = None,
        seed_report: SeedReport | None = None,
        accept_changes: bool = False,
        retry_rejects: bool = False,
    ) -> RunSummary:
        """Synchronous :meth:`arun`. Works in notebooks, where an event loop is running,
        by running the pipeline in a worker thread with its own loop."""
        kwargs: dict[str, Any] = {
            "fresh": fresh,
            "progress": progress,
            "seed_report": seed_report,
            "accept_changes": accept_changes,
            "retry_rejects": retry_rejects,
        }
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(seeds, out_dir, **kwargs))
        box: dict[str, Any] = {}

        def worker() -> None:
            try:
                box["value"] = asyncio.run(self.arun(seeds, out_dir, **kwargs))
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
        seed_report: SeedReport | None = None,
        accept_changes: bool = False,
        retry_rejects: bool = False,
    ) -> RunSummary:
        """Run every unit not yet done and write its records; see the module docstring.

        Args:
            seeds: seeds (a list, or any iterable, read lazily: e.g.
                :func:`genteach.seeds.iter_seeds` over a streamed dataset), or a path or
                dataset name for :func:`~genteach.seeds.iter_seeds` with its defaults.
            out_dir: the output folder (``records.jsonl``, ``rejects.jsonl``,
                ``progress.jsonl``, ``run.json``, ``cache.sqlite``).
            fresh: delete the folder's earlier output (and cache) first instead of resuming.
            progress: called with live counters before the first unit, after each model
                call and after each finished unit.
            seed_report: the report an ``iter_seeds`` passed as ``seeds`` fills, for the
                summary's seed counts; its skips are listed in ``skips.jsonl``.
            accept_changes: resume even if the teacher, endpoint, taxonomy, skills, seed or
                templates differ from ``run.json``'s; the earlier identity is kept in its
                ``history``. Without it such a resume is refused (ValueError).
            retry_rejects: redo the done units that ended with rejects (their lines are
                dropped first); answers in the cache are reused, so a reject caused by an
                error is retried for real and one caused by a cached answer comes out the same.

        Returns:
            The summary; ``units_unfinished`` counts units left for a later run.

        Raises:
            ValueError: the output folder cannot be written, a seed source given by name
                holds no usable seed, or a resume would mix runs; nothing is written then.
            FatalModelError: the endpoint cannot serve the run (nothing more was marked done).
            OutageError: the endpoint stayed down past ``settings.outage_deadline``.
        """
        report = seed_report if seed_report is not None else SeedReport()
        if isinstance(seeds, str | Path):
            seed_iter: Iterable[Seed] = require_seeds(
                iter_seeds(seeds, report=report, dedupe=True), report, str(seeds)
            )
        else:
            seed_iter = seeds  # given as they are: a shard of a sharded run may be empty
        sized = isinstance(seed_iter, Sized)
        out = Path(out_dir)
        check_output_folder(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFolderError(
                f"{out}: cannot create the output folder: {_why(exc)}"
            ) from None
        lock = _lock_folder(out)
        try:
            if fresh:
                for name in (
                    RECORDS_FILE, REJECTS_FILE, PROGRESS_FILE, RUN_FILE, CACHE_FILE, SKIPS_FILE
                ):  # fmt: skip
                    (out / name).unlink(missing_ok=True)
                    for suffix in ("-wal", "-shm"):
                        (out / f"{name}{suffix}").unlink(missing_ok=True)
            self._check_run_file(out, accept_changes=accept_changes)
            skips = _SkipsWriter(out / SKIPS_FILE)
            report.attach(skips.write)
            try:
                return await self._arun_locked(
                    out, seed_iter, sized, report, seed_report, progress, retry_rejects
                )
            finally:
                report.attach(None)
                skips.close()
        finally:
            lock.close()

    async def _arun_locked(
        self,
        out: Path,
        seed_iter: Iterable[Seed],
        sized: bool,
        report: SeedReport,
        seed_report: SeedReport | None,
        progress: Callable[[Progress], None] | None,
        retry_rejects: bool,
    ) -> RunSummary:
        if retry_rejects:
            _reopen_rejected_units(out)
        progress_rows = list(read_jsonl(out / PROGRESS_FILE))
        done = {str(p["unit"]) for p in progress_rows}
        # Lines of units not marked done were left by a crash between a unit's records and
        # its progress line: drop them, the unit is redone (from the cache) as a whole.
        # Only a count that disagrees with progress.jsonl's makes the files be parsed.
        _keep_units(
            out / RECORDS_FILE, done, lambda row: row["meta"]["unit"],
            expected=_total(progress_rows, "records"),
        )  # fmt: skip
        _keep_units(
            out / REJECTS_FILE, done, lambda row: row["unit"],
            expected=_total(progress_rows, "rejects"),
        )  # fmt: skip
        seen_ids = record_ids(out / RECORDS_FILE)
        counters = Progress(
            units_total=len(self.units(seed_iter)) if sized else None,
            concurrency=self.settings.concurrency,
        )
        teacher = self.client.model_name

        def refresh() -> None:
            counters.cached_calls = stack.cached_calls
            counters.retries = stack.retries
            counters.concurrency = stack.concurrency

        def notify() -> None:
            refresh()
            if progress is not None:
                progress(counters)

        def on_usage(usage: Usage) -> None:
            counters.usage = counters.usage + usage
            counters.cost = self.prices.cost(teacher, counters.usage)
            notify()

        stack = ModelStack.open(
            self.client,
            self.settings,
            cache_path=out / CACHE_FILE if self.settings.cache else None,
            on_usage=on_usage,
        )
        client = stack.client
        counters.cost = self.prices.cost(teacher, counters.usage)
        index_skills = self.index_skills()
        if index_skills and not isinstance(seed_iter, Sequence):
            seed_iter = list(seed_iter)  # the index reads every seed before the first unit
        index_needed = bool(index_skills) and any(
            skill.id in index_skills and unit_key(skill.id, seed.id) not in done
            for skill, seed in self.iter_units(seed_iter)
        )
        ctx = RunContext(
            client=client,
            prompts=self.prompts,
            teacher=teacher,
            version=__version__,
            keys=self.keys,
            judge=self.judge,
            code_sandbox=self.sandbox,
            seed_index=await self._seed_index(out, seed_iter) if index_needed else None,
        )
        duplicates = 0
        records_w = JsonlWriter(out / RECORDS_FILE)
        rejects_w = JsonlWriter(out / REJECTS_FILE)
        progress_w = JsonlWriter(out / PROGRESS_FILE)
        # Enough units in flight to keep `concurrency` calls busy; the seeds are read
        # lazily, so a streamed corpus never sits in memory whole.
        n_workers = max(1, self.settings.concurrency)
        total = 0
        run = _RunState()

        def fresh_units() -> Iterator[tuple[Skill, Seed]]:
            nonlocal total
            try:
                for skill, seed in self.iter_units(seed_iter):
                    total += 1
                    if unit_key(skill.id, seed.id) in done:
                        counters.units_done += 1
                        counters.units_skipped += 1
                        continue
                    yield skill, seed
            finally:
                counters.units_total = total

        def mark_done(item: WorkItem) -> None:
            nonlocal duplicates
            written = 0
            for rec in item.records:
                if rec.id in seen_ids:
                    duplicates += 1
                    continue
                seen_ids.add(rec.id)
                records_w.write(rec)
                written += 1
            counters.records += written
            for rej in item.rejects:
                rejects_w.write(rej)
            counters.rejects += len(item.rejects)
            # The unit's line comes last: a unit without it is redone on resume, its
            # answers then come from the cache and its records are not written twice.
            progress_w.write(
                {
                    "unit": item.unit,
                    "records": written,
                    "duplicates": len(item.records) - written,
                    "rejects": len(item.rejects),
                    "verified": dict(item.verified),
                    "usage": item.usage.as_dict(),
                }
            )
            checks = counters.verified.setdefault(item.skill.id, {})
            for status, n in item.verified.items():
                checks[status] = checks.get(status, 0) + n
            for pos, n in item.positions.items():
                counters.positions[pos] = counters.positions.get(pos, 0) + n
            counters.units_done += 1
            notify()

        async def one(skill: Skill, seed: Seed) -> None:
            unit = _UnitClient(client, run)
            item = await self._process(skill, seed, replace(ctx, client=unit))
            if run.error is not None:
                return  # the run is stopping: nothing more is marked done
            if unit.failure is not None:
                log.warning(
                    "unit %s left unfinished (to redo): %s",
                    unit_key(skill.id, seed.id),
                    unit.failure,
                )
                run.unfinished.append((skill, seed))
                return
            mark_done(item)

        try:
            notify()
            await _work(fresh_units(), one, n_workers, run)
            for _ in range(UNIT_RETRIES):
                if not run.unfinished or run.error is not None:
                    break
                again, run.unfinished = run.unfinished, []
                log.warning("redoing %d units whose model calls failed", len(again))
                await _work(iter(again), one, n_workers, run)
        finally:
            records_w.close()
            rejects_w.close()
            progress_w.close()
            await stack.close(close_client=False)  # the caller owns the teacher
        if run.error is not None:
            raise run.error
        refresh()
        if sized and seed_report is None:
            report.kept = len(seed_iter)  # type: ignore[arg-type]
        episodes: list[str] = []
        episodic = self.episodic_skills()
        if episodic:
            trajectories = trajectory_report(out, episodic)
            trajectories.write(out)
            episodes = trajectories.lines()
        return RunSummary(
            out_dir=out,
            units_total=total,
            units_done=counters.units_done,
            units_resumed=counters.units_skipped,
            records=counters.records,
            duplicates=duplicates,
            rejects=counters.rejects,
            usage=counters.usage,
            seeds=report.summary(),
            cached_calls=counters.cached_calls,
            retries=counters.retries,
            cost=counters.cost,
            verified=counters.verified,
            positions=counters.positions,
            seeds_skipped=sum(report.skipped.values()),
            units_unfinished=len(run.unfinished),
            episodes=episodes,
        )

    def episodic_skills(self) -> list[str]:
        """The run's skills whose episodes run in an environment (their report is written
        as ``trajectories.json``)."""
        return [sid for sid, fs in self.flows.items() if any(f.name in EPISODE_STAGES for f in fs)]

    def needs_index(self) -> bool:
        """Whether a stage of a selected skill uses the seed index (the RAG skill's
        documents)."""
        return bool(self.index_skills())

    def index_skills(self) -> set[str]:
        """The selected skills with a stage that uses the seed index. A run builds the
        index only when one of its units still to run is of such a skill."""
        return {
            sid
            for sid, fs in self.flows.items()
            if any(getattr(f, "needs_index", False) for f in fs)
        }

    async def _seed_index(self, out: Path, seeds: Iterable[Seed]) -> SeedIndex | None:
        """The run's BM25 index of its seeds, saved in ``out/index`` and reused while the
        seeds are the same; None when no selected skill needs it or there is no seed."""
        if not self.needs_index() or not isinstance(seeds, Sequence) or not seeds:
            return None
        try:
            return await asyncio.to_thread(SeedIndex.load_or_build, out / INDEX_DIR, seeds)
        except ValueError as exc:  # no word to index in any seed
            log.warning("no seed index: %s", exc)
            return None

    async def _process(self, skill: Skill, seed: Seed, ctx: RunContext) -> WorkItem:
        stream_key = f"{self.settings.seed}:{skill.id}:{seed.id}"
        item = WorkItem(
            seed=seed,
            skill=skill,
            rng=random.Random(stream_key),
            stream_key=stream_key,
            run_seed=self.settings.seed,
        )
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
            if getattr(flow, "material_stage", False):
                if item.material is None:
                    break  # no material to write tasks about (its reject says why)
            elif not item.tasks and not item.records:
                break
        return item

    def _check_run_file(self, out: Path, *, accept_changes: bool = False) -> None:
        """Write run.json, or check that a resumed run is the same run (see
        :meth:`identity`); with ``accept_changes`` a changed one is recorded, the earlier
        identity kept in ``history``."""
        meta = self.identity()
        path = out / RUN_FILE
        if not path.exists():
            _write_json(path, meta)
            return
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(old, dict):
                raise ValueError("not a JSON object")
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(
                f"{path}: unreadable ({exc}); use another output folder, or --fresh to start over"
            ) from None
        changes = identity_changes(old, meta)
        if not changes:
            return
        if not accept_changes:
            raise ValueError(
                f"{path}: resuming would mix two runs in one folder: {'; '.join(changes)}; "
                "pass --accept-changes to continue anyway (run.json keeps the history), or use "
                "another --out, or --fresh to start over"
            )
        log.warning("%s: resuming with changes: %s", path, "; ".join(changes))
        earlier = {k: v for k, v in old.items() if k != "history"}
        meta["history"] = [*old.get("history", []), earlier]
        _write_json(path, meta)


def identity_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two run identities (``run.json`` contents), one phrase each.

    Endpoints are compared without their port (a server restarted on another port serves
    the same teacher), and only when both are known; keys the older file lacks (an older
    genteach wrote it) are not compared; ``settings`` other than the seed may change
    between resumes.
    """
    out: list[str] = []
    for key, what in (
        ("teacher", "teacher model"),
        ("endpoint", "endpoint"),
        ("taxonomy_sha256", "taxonomy"),
        ("skills", "skills"),
    ):
        if key == "endpoint" and (
            old.get(key) is None
            or new[key] is None
            or _without_port(old[key]) == _without_port(new[key])
        ):
            continue  # unknown, or a server restarted on another port: the same teacher
        if key in old and old[key] != new[key]:
            if key == "taxonomy_sha256":
                out.append(f"taxonomy {old.get('taxonomy')} changed")
            else:
                out.append(f"{what} {_show(old[key])} -> {_show(new[key])}")
    old_seed = old.get("settings", {}).get("seed")
    if "settings" in old and old_seed != new["settings"]["seed"]:
        out.append(f"seed {old_seed} -> {new['settings']['seed']}")
    if "templates" in old:
        before, now = old["templates"], new["templates"]
        changed = sorted(n for n in before.keys() & now.keys() if before[n] != now[n])
        changed += [f"{n} (new)" for n in sorted(now.keys() - before.keys())]
        changed += [f"{n} (gone)" for n in sorted(before.keys() - now.keys())]
        if changed:
            more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            out.append(f"templates changed: {', '.join(changed[:5])}{more}")
    return out


def _without_port(endpoint: Any) -> Any:
    return re.sub(r":\d+$", "", endpoint) if isinstance(endpoint, str) else endpoint


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class OutputFolderError(ValueError):
    """The output folder is a file or cannot be written."""


def check_output_folder(out: str | Path) -> None:
    """Refuse an output folder that is a file or cannot be written, before anything runs.

    Raises:
        OutputFolderError: one line naming the folder and the reason.
    """
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise OutputFolderError(f"--out {p}: is a file, not a folder")
    existing = p
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise OutputFolderError(f"--out {p}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "the output folder" if existing == p else f"{existing}, where it would be made,"
        raise OutputFolderError(f"--out {p}: {what} is not writable (permission denied)")


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class _RunState:
    """What the units of one run share: the error that stops it, and the units left
    unfinished by transient errors."""

    def __init__(self) -> None:
        self.error: ModelError | None = None
        self.stopping = asyncio.Event()
        self.unfinished: list[tuple[Skill, Seed]] = []

    def stop(self, error: ModelError) -> None:
        if self.error is None:
            self.error = error
            self.stopping.set()


class _UnitClient:
    """The run's client as one unit sees it.

    It remembers the first failure that must not end the unit as rejects (a transient
    error past its retries, a fatal error, an outage) and fails the unit's later calls at
    once with it; a fatal error or an outage also stops the run. The flows still turn the
    error into rejects, but the pipeline then leaves the unit unfinished.
    """

    def __init__(self, client: ModelClient, run: _RunState) -> None:
        self.client = client
        self.run = run
        self.failure: ModelError | None = None

    @property
    def model_name(self) -> str:
        return self.client.model_name

    async def complete(self, request: ModelRequest) -> Completion:
        if self.failure is not None:
            raise self.failure
        try:
            return await self.client.complete(request)
        except (FatalModelError, OutageError) as exc:
            self.failure = exc
            self.run.stop(exc)
            raise
        except TransientModelError as exc:
            self.failure = exc
            raise

    async def close(self) -> None:
        return None  # the run's client is closed by its owner


async def _work(
    units: Iterator[tuple[Skill, Seed]],
    handle: Callable[[Skill, Seed], Awaitable[None]],
    n_workers: int,
    run: _RunState,
) -> None:
    """Run ``handle`` on ``units`` with ``n_workers`` workers; when the run stops, cancel
    every unit in flight (none of them is marked done) and return."""
    queue: asyncio.Queue[tuple[Skill, Seed] | None] = asyncio.Queue(maxsize=2 * n_workers)

    async def producer() -> None:
        try:
            for unit in units:
                await queue.put(unit)
        finally:
            for _ in range(n_workers):
                await queue.put(None)

    async def worker() -> None:
        while (unit := await queue.get()) is not None:
            await handle(*unit)

    tasks = [asyncio.ensure_future(producer())]
    tasks += [asyncio.ensure_future(worker()) for _ in range(n_workers)]
    stopping = asyncio.ensure_future(run.stopping.wait())
    pending: set[asyncio.Future[Any]] = set(tasks)
    try:
        while pending and not stopping.done():
            done, pending = await asyncio.wait(
                pending | {stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(stopping)
            for task in done - {stopping}:
                error = task.exception()
                if error is not None:  # a bug or an I/O error, not a model error: raise it
                    raise error
    finally:
        for task in [*tasks, stopping]:
            task.cancel()
        await asyncio.gather(*tasks, stopping, return_exceptions=True)


def _reopen_rejected_units(out: Path) -> None:
    """Mark the done units that ended with rejects as not done, so the run redoes them:
    their progress lines are dropped (one atomic rewrite), and their records and rejects
    lines then go as those of any unfinished unit."""
    path = out / PROGRESS_FILE
    rows = list(read_jsonl(path))
    keep = [p for p in rows if not p.get("rejects")]
    if len(keep) == len(rows):
        return
    log.info("%s: redoing %d units that ended with rejects", path, len(rows) - len(keep))
    _rewrite(path, keep)


class _FolderLock:
    def __init__(self, fh: IO[str] | None) -> None:
        self.fh = fh

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()  # closing the file releases the lock


def _lock_folder(out: Path) -> _FolderLock:
    """One run per output folder: a second one would write every line twice."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        return _FolderLock(None)
    try:
        fh = (out / LOCK_FILE).open("w")
    except OSError as exc:
        raise OutputFolderError(f"{out}: cannot write the output folder: {_why(exc)}") from None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise ValueError(
            f"{out}: another genteach run is writing to this folder; wait for it or use "
            "another --out"
        ) from None
    except OSError as exc:  # e.g. a network filesystem without locks: run unlocked
        log.warning("%s: cannot lock the output folder (%s); run one job at a time", out, exc)
    return _FolderLock(fh)


def _keep_units(
    path: Path,
    done: set[str],
    unit_of: Callable[[dict[str, Any]], str],
    *,
    expected: int | None = None,
) -> None:
    """Rewrite ``path`` without the lines of units not in ``done`` (only if it has any).

    With ``expected`` (the lines finished units wrote, from progress.jsonl), a file with
    that many whole lines is left alone without being parsed: a unit's lines are written
    together before its progress line, so only a crash in between leaves extra ones.
    """
    if expected is not None and _whole_lines(path) == expected:
        return
    rows = list(read_jsonl(path))
    keep = [r for r in rows if unit_of(r) in done]
    if len(keep) == len(rows):
        return
    log.info("%s: dropping %d lines of unfinished units", path, len(rows) - len(keep))
    _rewrite(path, keep)


def _rewrite(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace ``path`` with ``rows`` atomically (a crash leaves the old or the new file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _whole_lines(path: Path) -> int:
    """Newline-terminated lines of a file (a torn last line is not counted)."""
    if not path.exists():
        return 0
    n = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
    return n


def _total(rows: Iterable[Mapping[str, Any]], key: str) -> int | None:
    """The sum of ``key`` over progress rows, or None when a row lacks it."""
    total = 0
    for row in rows:
        value = row.get(key)
        if not isinstance(value, int):
            return None
        total += value
    return total


_ID_PREFIX = re.compile(rb'\{"id": "([^"\\]*)"')


def record_ids(path: str | Path) -> set[str]:
    """The ids of a records file, read from the start of each line (JsonlWriter writes
    ``{"id": "...", ...``) without parsing the records; other lines are parsed."""
    p = Path(path)
    ids: set[str] = set()
    if not p.exists():
        return ids
    with p.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                break  # a torn last line: cut off when the run writes again
            m = _ID_PREFIX.match(line)
            if m is not None:
                ids.add(m.group(1).decode("utf-8"))
            elif line.strip():
                try:
                    ids.add(str(json.loads(line)["id"]))
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{p}:{lineno}: not a record line ({exc})") from None
    return ids


class _SkipsWriter:
    """``skips.jsonl``: the seeds this run's reading skipped, one line each; made (anew)
    on the first skip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        path.unlink(missing_ok=True)

    def write(self, skip: Skip) -> None:
        if self._fh is None:
            self._fh = self.path.open("w", encoding="utf-8")
        self._fh.write(json.dumps(skip.as_dict(), ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def _taxonomy_hash(taxonomy: Taxonomy) -> str:
    blob = taxonomy.model_dump_json(exclude={"source"})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


__all__ = [
    "OutputFolderError",
    "Pipeline",
    "Progress",
    "RunSettings",
    "RunSummary",
    "check_output_folder",
    "identity_changes",
    "record_ids",
]
