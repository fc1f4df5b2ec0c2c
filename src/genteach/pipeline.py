"""The Pipeline: seeds in, chat-pair records out, for the skills of a taxonomy.

Each (skill, seed) pair is a *unit*. Units run concurrently (model calls bounded by
``concurrency``); each one's records and rejects are written as soon as it ends, then a
line in ``progress.jsonl`` marks it done. Re-running with the same output folder skips
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
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from genteach import __version__
from genteach.agents.base import AgentError, RepairStyle
from genteach.cache import CACHE_FILE, CachedModel, ResponseCache
from genteach.cost import PriceTable, format_cost
from genteach.flows import FlowFactory, build_flows
from genteach.flows.base import Flow, RunContext, WorkItem, unit_key
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
from genteach.models.resilient import ResilientModel
from genteach.prompts import PromptLibrary
from genteach.records import JsonlWriter, Seed, read_jsonl
from genteach.seeds import SeedReport, iter_seeds
from genteach.taxonomy import Skill, Taxonomy, load_taxonomy, weighted_sample

log = logging.getLogger("genteach")

RECORDS_FILE = "records.jsonl"
REJECTS_FILE = "rejects.jsonl"
PROGRESS_FILE = "progress.jsonl"
RUN_FILE = "run.json"
LOCK_FILE = ".lock"
#: Times a run redoes, after its other units, a unit left unfinished by transient errors.
UNIT_RETRIES = 2


@dataclass
class RunSettings:
    """How a run behaves. Every field has a sensible default.

    Attributes:
        seed: the run's seed number; the same seed, inputs and model answers give the
            same choices (transformers, task types, layouts, call seeds).
        concurrency: most model calls in flight at once (the adaptive limit's ceiling).
        adaptive: halve the concurrency limit when the endpoint is overloaded (429, 503,
            timeouts) and grow it back as calls succeed; ``False`` keeps it fixed.
        rpm / tpm: optional requests-per-minute and tokens-per-minute caps.
        cache: keep every model answer in ``cache.sqlite`` in the output folder, so that
            redoing a step after a crash costs no model call.
        max_parse_retries: repairs asked of a model whose answer does not parse.
        max_retries: retries of a transient model error (rate limit, 5xx, timeout).
        timeout: seconds one model call may take.
        backoff: first retry delay in seconds (doubling, full jitter, capped at 60 s);
            a server's Retry-After wins.
        temperature / max_tokens: sampling settings sent with every call (None: the
            backend's default).
        repair_temperature: temperature of the calls that ask for a malformed answer to
            be repaired (None: ``temperature``); see :class:`~genteach.agents.Agent`.
        repair_style: ``"show"`` shows the model its malformed answer with the reason;
            ``"fresh"`` asks again with a note of the reason (for small models).
        skills_per_seed: None runs every selected skill on every seed that suits it;
            N draws N of them per seed by the skills' weights.
        limit: process at most this many units (None: all).
        overrides: stage settings replaced in every selected skill's pipeline where the
            stage has them, e.g. ``{"suggestions": 1, "tasks_per_type": 1}``.
        outage_deadline: seconds the endpoint may stay down (circuit breaker open) before
            the run stops (exit 4); None waits for ever.
        breaker_threshold: transient failures in a row that pause new calls and start
            probing the endpoint (0: never pause).
        max_probe_interval: the longest wait in seconds between two probes of an endpoint
            that is down (the first comes after ``backoff``).
    """

    seed: int = 0
    concurrency: int = 8
    adaptive: bool = True
    rpm: float | None = None
    tpm: float | None = None
    cache: bool = True
    max_parse_retries: int = 2
    max_retries: int = 5
    timeout: float | None = 600.0
    backoff: float = 1.0
    temperature: float | None = None
    max_tokens: int | None = None
    repair_temperature: float | None = None
    repair_style: RepairStyle = "show"
    skills_per_seed: int | None = None
    limit: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    outage_deadline: float | None = 900.0
    breaker_threshold: int = 5
    max_probe_interval: float = 30.0


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
    units_unfinished: int = 0

    def __str__(self) -> str:
        text = (
            f"{self.records} records, {self.rejects} rejects from {self.units_done} units "
            f"({self.units_resumed} already done); {self.usage.calls} model calls "
            f"({self.cached_calls} answered from the cache, {self.retries} retries), "
            f"{self.usage.prompt_tokens} prompt + {self.usage.completion_tokens} completion "
            f"tokens, cost {format_cost(self.cost)}; output in {self.out_dir}"
        )
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
        flows: extra flow factories by name, for custom ``flow:`` names in the taxonomy.
        prices: the price table for cost accounting (default: the built-in one).

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
        prices: PriceTable | None = None,
    ) -> None:
        self.taxonomy = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
        self.skills: list[Skill] = self.taxonomy.select(skills)
        self.prompts = prompts or PromptLibrary()
        self.settings = settings or RunSettings()
        self.client = client
        self.prices = prices or PriceTable()
        options = {
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
            "max_parse_retries": self.settings.max_parse_retries,
            "repair_temperature": self.settings.repair_temperature,
            "repair_style": self.settings.repair_style,
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
    def iter_units(self, seeds: Iterable[Seed]) -> Iterator[tuple[Skill, Seed]]:
        """The (skill, seed) units of a run, lazily, in a reproducible order."""
        n = 0
        for seed in seeds:
            fitting = [s for s in self.skills if seed.kind in s.seed_kinds]
            if self.settings.skills_per_seed is not None and fitting:
                rng = random.Random(f"{self.settings.seed}:{seed.id}:skills")
                k = min(self.settings.skills_per_seed, len(fitting))
                fitting = weighted_sample(fitting, k, rng)
            for skill in fitting:
                if self.settings.limit is not None and n >= self.settings.limit:
                    return
                n += 1
                yield skill, seed

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
        retry_rejects: bool = False,
    ) -> RunSummary:
        """Synchronous :meth:`arun`. Works in notebooks, where an event loop is running,
        by running the pipeline in a worker thread with its own loop."""
        kwargs: dict[str, Any] = {
            "fresh": fresh,
            "progress": progress,
            "seed_report": seed_report,
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
                summary's seed counts.
            retry_rejects: redo the done units that ended with rejects (their lines are
                dropped first); answers in the cache are reused, so a reject caused by an
                error is retried for real and one caused by a cached answer comes out the same.

        Returns:
            The summary; ``units_unfinished`` counts units left for a later run.

        Raises:
            FatalModelError: the endpoint cannot serve the run (nothing more was marked done).
            OutageError: the endpoint stayed down past ``settings.outage_deadline``.
        """
        report = seed_report if seed_report is not None else SeedReport()
        if isinstance(seeds, str | Path):
            seed_iter: Iterable[Seed] = iter_seeds(seeds, report=report, dedupe=True)
        else:
            seed_iter = seeds
        sized = isinstance(seed_iter, Sized)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock_folder(out)
        try:
            if fresh:
                for name in (RECORDS_FILE, REJECTS_FILE, PROGRESS_FILE, RUN_FILE, CACHE_FILE):
                    (out / name).unlink(missing_ok=True)
                    for suffix in ("-wal", "-shm"):
                        (out / f"{name}{suffix}").unlink(missing_ok=True)
            return await self._arun_locked(
                out, seed_iter, sized, report, seed_report, progress, retry_rejects
            )
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
        self._check_run_file(out)
        if retry_rejects:
            _reopen_rejected_units(out)
        done = {str(p["unit"]) for p in read_jsonl(out / PROGRESS_FILE)}
        # Lines of units not marked done were left by a crash between a unit's records and
        # its progress line: drop them, the unit is redone (from the cache) as a whole.
        _keep_units(out / RECORDS_FILE, done, lambda row: row["meta"]["unit"])
        _keep_units(out / REJECTS_FILE, done, lambda row: row["unit"])
        seen_ids = {str(r["id"]) for r in read_jsonl(out / RECORDS_FILE)}
        counters = Progress(
            units_total=len(self.units(seed_iter)) if sized else None,
            concurrency=self.settings.concurrency,
        )
        teacher = self.client.model_name

        def refresh() -> None:
            counters.cached_calls = client.hits if isinstance(client, CachedModel) else 0
            counters.retries = resilient.retries
            counters.concurrency = resilient.concurrency

        def notify() -> None:
            refresh()
            if progress is not None:
                progress(counters)

        def on_usage(usage: Usage) -> None:
            counters.usage = counters.usage + usage
            counters.cost = self.prices.cost(teacher, counters.usage)
            notify()

        resilient = ResilientModel(
            self.client,
            concurrency=self.settings.concurrency,
            adaptive=self.settings.adaptive,
            rpm=self.settings.rpm,
            tpm=self.settings.tpm,
            max_retries=self.settings.max_retries,
            timeout=self.settings.timeout,
            base_delay=self.settings.backoff,
            breaker_threshold=self.settings.breaker_threshold,
            max_probe_interval=self.settings.max_probe_interval,
            outage_deadline=self.settings.outage_deadline,
            on_usage=on_usage,
        )
        counters.cost = self.prices.cost(teacher, counters.usage)
        cache = ResponseCache(out / CACHE_FILE) if self.settings.cache else None
        client: ModelClient = resilient if cache is None else CachedModel(resilient, cache)
        ctx = RunContext(client=client, prompts=self.prompts, teacher=teacher, version=__version__)
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
                    "usage": item.usage.as_dict(),
                }
            )
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
            if cache is not None:
                cache.close()
        if run.error is not None:
            raise run.error
        refresh()
        if sized and seed_report is None:
            report.kept = len(seed_iter)  # type: ignore[arg-type]
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
            units_unfinished=len(run.unfinished),
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
    fh = (out / LOCK_FILE).open("w")
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


def _keep_units(path: Path, done: set[str], unit_of: Callable[[dict[str, Any]], str]) -> None:
    """Rewrite ``path`` without the lines of units not in ``done`` (only if it has any)."""
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


def _taxonomy_hash(taxonomy: Taxonomy) -> str:
    blob = taxonomy.model_dump_json(exclude={"source"})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


__all__ = ["Pipeline", "Progress", "RunSettings", "RunSummary"]
