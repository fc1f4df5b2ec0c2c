"""``--dry-run``: how many calls, tokens and dollars a run will take, before spending any.

Call counts come from each skill's pipeline: every flow says how many model calls it
makes per unit and how many tasks it leaves (``expected_calls``), from the same settings
the run would use (task types per seed, tasks per type, suggestions, rounds, ...). Flows
without that method are counted as one call per unit.

Tokens are estimated per call: the prompt is the seed's tokens plus
``prompt_overhead`` (instructions, format, earlier outputs), the answer is
``completion_tokens`` (capped by ``max_tokens``). Both are rough; a *calibrated* estimate
is much better: run a few dozen units first, then pass their output folder as
``calibration``, and the measured calls and tokens per unit of each skill replace the
assumptions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from genteach.cost import format_cost
from genteach.models.base import Usage
from genteach.records import Seed, read_jsonl
from genteach.tokens import tokenizer_for

if TYPE_CHECKING:
    from genteach.pipeline import Pipeline

#: Prompt tokens assumed per call on top of the seed (uncalibrated estimates).
PROMPT_OVERHEAD = 1200
#: Completion tokens assumed per call (uncalibrated estimates), at most ``max_tokens``.
COMPLETION_TOKENS = 600


@dataclass
class SkillEstimate:
    """The estimate for one skill."""

    skill: str
    units: int = 0
    calls: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    calibrated_units: int = 0
    cost: float | None = None

    @property
    def usage(self) -> Usage:
        return Usage(round(self.prompt_tokens), round(self.completion_tokens), round(self.calls))


@dataclass
class RunEstimate:
    """What a run is expected to take, per skill and in total."""

    teacher: str
    skills: list[SkillEstimate]
    #: Seeds that give at least one unit.
    seeds: int
    assumptions: list[str] = field(default_factory=list)
    #: Seeds read: ``seeds`` plus those no selected skill suits (e.g. code for a text skill).
    seeds_read: int = 0

    @property
    def units(self) -> int:
        return sum(s.units for s in self.skills)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for s in self.skills:
            total = total + s.usage
        return total

    @property
    def cost(self) -> float | None:
        costs = [s.cost for s in self.skills if s.units]
        return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)

    def __str__(self) -> str:
        unsuited = self.seeds_read - self.seeds
        lines = [
            f"dry run: {self.units} units from {self.seeds} seeds"
            + (f" ({unsuited} more read suit no selected skill)" if unsuited > 0 else "")
            + f", teacher {self.teacher}",
            f"  {'skill':22} {'units':>8} {'calls':>10} {'prompt tok':>13} "
            f"{'compl. tok':>12} {'cost':>12}  basis",
        ]
        for s in self.skills:
            basis = f"calibrated on {s.calibrated_units} units" if s.calibrated_units else "assumed"
            lines.append(
                f"  {s.skill:22} {s.units:>8} {s.calls:>10,.0f} {s.prompt_tokens:>13,.0f} "
                f"{s.completion_tokens:>12,.0f} {format_cost(s.cost):>12}  {basis}"
            )
        u = self.usage
        lines.append(
            f"  {'total':22} {self.units:>8} {u.calls:>10,} {u.prompt_tokens:>13,} "
            f"{u.completion_tokens:>12,} {format_cost(self.cost):>12}"
        )
        lines += [f"  note: {a}" for a in self.assumptions]
        return "\n".join(lines)


def calibration_from(paths: Sequence[str | Path]) -> dict[str, tuple[int, Usage]]:
    """Per skill: (units measured, their total usage), from earlier runs' progress files.

    ``paths`` are output folders (``progress.jsonl``, also under ``shards/*/``) or
    progress files. Units that made no call are left out (nothing to learn from them).
    """
    out: dict[str, tuple[int, Usage]] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = [p / "progress.jsonl", *sorted(p.glob("shards/*/progress.jsonl"))]
        elif p.exists():
            files = [p]
        else:
            raise FileNotFoundError(f"calibration: {p} does not exist")
        for f in files:
            for row in read_jsonl(f):
                usage = row.get("usage") or {}
                if not usage.get("calls"):
                    continue
                skill = str(row["unit"]).split("/", 1)[0]
                n, total = out.get(skill, (0, Usage()))
                out[skill] = (
                    n + 1,
                    total
                    + Usage(
                        int(usage.get("prompt_tokens", 0)),
                        int(usage.get("completion_tokens", 0)),
                        int(usage.get("calls", 0)),
                    ),
                )
    return out


def estimate_run(
    pipeline: Pipeline,
    seeds: Iterable[Seed],
    *,
    calibration: Sequence[str | Path] = (),
    prompt_overhead: int = PROMPT_OVERHEAD,
    completion_tokens: int = COMPLETION_TOKENS,
) -> RunEstimate:
    """Estimate the calls, tokens and cost of running ``pipeline`` over ``seeds``.

    Nothing is called: seeds are read (streamed) and counted, that is all. Units already
    done in an output folder are not subtracted; pass the plain seeds.

    Args:
        pipeline: the configured pipeline (skills, settings, teacher, prices).
        seeds: the run's seeds.
        calibration: earlier output folders whose measured per-unit usage replaces the
            assumptions for the skills they cover.
        prompt_overhead / completion_tokens: the per-call assumptions (see the module
            docstring); ``completion_tokens`` is capped by the run's ``max_tokens``.
    """
    teacher = pipeline.client.model_name
    measured = calibration_from(calibration)
    max_tokens = pipeline.settings.max_tokens
    per_call_completion = min(completion_tokens, max_tokens) if max_tokens else completion_tokens
    calls_per_unit: dict[str, float] = {}
    for skill in pipeline.skills:
        tasks, calls = 0.0, 0.0
        for flow in pipeline.flows[skill.id]:
            expected = getattr(flow, "expected_calls", None)
            if expected is None:
                calls += 1.0
                continue
            c, tasks = expected(tasks)
            calls += c
        calls_per_unit[skill.id] = calls
    rows = {s.id: SkillEstimate(s.id) for s in pipeline.skills}
    tokenizer = tokenizer_for(teacher)
    seed_tokens: dict[str, int] = {}
    n_seeds = 0
    last_seed = ""
    read = [0]

    def counted() -> Iterator[Seed]:
        for seed in seeds:
            read[0] += 1
            yield seed

    for skill, seed in pipeline.iter_units(counted()):
        if seed.id != last_seed:
            n_seeds += 1
            last_seed = seed.id
        row = rows[skill.id]
        row.units += 1
        if skill.id in measured:
            continue
        if seed.id not in seed_tokens:
            seed_tokens = {seed.id: tokenizer.count(seed.text)}  # one seed at a time
        calls = calls_per_unit[skill.id]
        row.calls += calls
        row.prompt_tokens += calls * (prompt_overhead + seed_tokens[seed.id])
        row.completion_tokens += calls * per_call_completion
    assumptions: list[str] = []
    for row in rows.values():
        if row.skill in measured:
            n, total = measured[row.skill]
            row.calibrated_units = n
            row.calls = row.units * total.calls / n
            row.prompt_tokens = row.units * total.prompt_tokens / n
            row.completion_tokens = row.units * total.completion_tokens / n
        row.cost = pipeline.prices.cost(teacher, row.usage)
    uncalibrated = any(not r.calibrated_units and r.units for r in rows.values())
    if uncalibrated:
        assumptions.append(
            f"uncalibrated skills assume {prompt_overhead} prompt tokens per call plus the "
            f"seed, and {per_call_completion} completion tokens per call; tool conversations "
            "assume 3 assistant turns. Calibrate with --calibrate-from OUT after a short run."
        )
    if uncalibrated and tokenizer.approximate:
        assumptions.append(f"seed tokens counted with {tokenizer.name} (approximate)")
    if pipeline.prices.lookup(teacher) is None:
        assumptions.append(f"no price known for {teacher}: pass --prices FILE")
    return RunEstimate(
        teacher=teacher,
        skills=list(rows.values()),
        seeds=n_seeds,
        assumptions=assumptions,
        seeds_read=read[0],
    )


__all__ = [
    "COMPLETION_TOKENS",
    "PROMPT_OVERHEAD",
    "RunEstimate",
    "SkillEstimate",
    "calibration_from",
    "estimate_run",
]
