"""Per-run overhead of the sandbox: start-to-result time of ``print(1)``.

Usage::

    nice -n 10 python benchmarks/sandbox_bench.py                 # N=50, every isolation here
    python benchmarks/sandbox_bench.py --runs 20 --isolation bwrap --out /tmp/sandbox.md

Each run is one :meth:`Sandbox.run_python` call, timed from the call to its result: temporary
directory, namespaces and mounts, the interpreter's start, the snippet, the teardown and the
directory's removal. Runs go one after another (no concurrency). ``none`` (no isolation, the
same limits and temporary directory) is the baseline: the difference is the isolation's cost.
Two warm-up runs per isolation are not counted. Results: docs/benchmarks/sandbox.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from genteach.runtime.sandbox import Sandbox, SandboxLimits, SandboxUnavailable

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """lscpu's model name (and core count), or the platform's processor string."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    model = fields.get("Model name", "unknown").strip()
    cpus = fields.get("CPU(s)", "?").strip()
    return f"{model}, {cpus} CPUs"


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return "absent"
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.stdout or out.stderr else "?"


def works(isolation: str) -> bool:
    try:
        Sandbox.probe(isolation)  # type: ignore[arg-type]
    except SandboxUnavailable:
        return False
    return True


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


async def measure(isolation: str, runs: int) -> list[float]:
    sandbox = Sandbox(SandboxLimits(), isolation=isolation)  # type: ignore[arg-type]
    for _ in range(2):
        await sandbox.run_python("print(1)")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = await sandbox.run_python("print(1)")
        times.append(time.perf_counter() - start)
        if not result.ok or result.stdout != "1\n":
            raise SystemExit(f"{isolation}: print(1) failed: {result}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed runs per isolation")
    parser.add_argument(
        "--isolation",
        action="append",
        choices=["bwrap", "unshare", "none"],
        help="isolations to time (repeat the flag; default: every one that works here)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/sandbox.md")
    args = parser.parse_args()
    chosen = args.isolation or [
        *(iso for iso in ("bwrap", "unshare") if works(iso)),
        "none",
    ]
    rows = []
    for isolation in chosen:
        times = asyncio.run(measure(isolation, args.runs))
        ms = [t * 1000 for t in times]
        rows.append(
            f"| {isolation} | {len(ms)} | {statistics.median(ms):.1f} | "
            f"{percentile(ms, 0.95):.1f} | {min(ms):.1f} | {max(ms):.1f} |"
        )
        print(rows[-1], flush=True)
    machine = (
        f"Machine: {cpu_model()}; Python {platform.python_version()} ({sys.executable}); "
        f"kernel {platform.release()}; {tool_version(['bwrap', '--version'])}; "
        f"{tool_version(['unshare', '--version'])}."
    )
    text = "\n".join(
        [
            "# Sandbox overhead: start-to-result of `print(1)`",
            "",
            "Script: [`benchmarks/sandbox_bench.py`](../../benchmarks/sandbox_bench.py), run as",
            f"`nice -n 10 python benchmarks/sandbox_bench.py --runs {args.runs}` on a machine",
            "shared with other work (2 warm-up runs per isolation not counted). Each run is one",
            "`Sandbox.run_python` call with the default limits: temporary directory, namespaces",
            "and mounts, interpreter start, the snippet, teardown, directory removal. `none` runs",
            "with the same limits and directory but no isolation (the baseline). The machine",
            "was shared with other work: compare rows of one run, not runs on other machines.",
            "This measures one run at a time; it says nothing about concurrent runs.",
            "",
            machine,
            "",
            "| isolation | runs | median ms | p95 ms | min ms | max ms |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
