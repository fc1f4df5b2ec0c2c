"""Verified pairs per minute of the embedded default teacher, per engine and model.

Runs the README's job (all three built skills together on the example seeds) with a local
model on the chosen engine, and reports: time to load the model, time to the first record
and to the first record of every skill, records and verified answers per skill, rejects
by reason, wall time, verified pairs per minute, the engine's token counts and the
process's peak memory. This is the measure the embedded default is chosen by.

Usage:
    python benchmarks/embedded_default_bench.py --engine llama.cpp --units 3 \
        --set suggestions=1 --set tasks_per_type=1 --json /tmp/embedded.json
    python benchmarks/embedded_default_bench.py --engine llama.cpp --model q.gguf ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from genteach import Pipeline, RunSettings
from genteach.agents.base import REPAIR_STYLES
from genteach.cli import _key_value
from genteach.models.config import LOCAL_REPAIR_STYLE, LOCAL_REPAIR_TEMPERATURE
from genteach.models.local import LocalEngine, local_model_client
from genteach.pipeline import Progress
from genteach.records import read_jsonl

REPO = Path(__file__).resolve().parent.parent


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    name = next((x.split(":", 1)[1].strip() for x in text.splitlines() if "model name" in x), "")
    flags = next((x for x in text.splitlines() if x.startswith("flags")), "")
    bf16 = "native bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "no native bf16"
    return f"{name} ({bf16})"


async def _run(args: argparse.Namespace, client: LocalEngine, out: str) -> dict[str, Any]:
    start = time.perf_counter()
    await client.load()
    loaded = time.perf_counter() - start
    first: dict[str, float] = {}

    def on_progress(p: Progress) -> None:
        if p.records and "any" not in first:
            first["any"] = time.perf_counter() - start

    pipe = Pipeline(
        client,
        skills=args.skills.split(","),
        settings=RunSettings(
            seed=0,
            limit=args.units,
            overrides=dict(args.set),
            repair_style=args.repair_style,
            repair_temperature=args.repair_temperature,
        ),
    )
    summary = await pipe.arun(REPO / "examples" / "seeds", out, progress=on_progress)
    wall = time.perf_counter() - start
    records = list(read_jsonl(Path(out) / "records.jsonl"))
    reasons = Counter(
        f"{r['skill']} {r['stage']}: {r['reason'][:90]}"
        for r in read_jsonl(Path(out) / "rejects.jsonl")
    )
    status = Counter(
        (r["meta"]["skill"], (r["meta"].get("verification") or {}).get("status", "none"))
        for r in records
    )
    verified_records = {skill: n for (skill, st), n in status.items() if st == "passed"}
    unchecked_records = {skill: n for (skill, st), n in status.items() if st != "passed"}
    stats = client.stats
    return {
        "load_s": round(loaded, 1),
        "first_record_s": round(first["any"], 1) if "any" in first else None,
        "wall_s": round(wall, 1),
        "units": summary.units_done,
        "records": summary.records,
        "verified_records": verified_records,
        "unchecked_records": unchecked_records,
        "verified_pairs_per_min": round(sum(verified_records.values()) / wall * 60, 2),
        "answers_checked": summary.verified,
        "rejects": summary.rejects,
        "calls": summary.usage.calls,
        "prompt_tokens": summary.usage.prompt_tokens,
        "completion_tokens": summary.usage.completion_tokens,
        "engine_tokens_read": client.tokens_read,
        "engine_tokens_reused": stats.reused_prompt_tokens,
        "engine_tokens_made": client.tokens_made,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "reject_reasons": dict(reasons.most_common(8)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--skills", default="rc,text_modification,tool_use")
    ap.add_argument("--units", type=int, default=3, help="units (seeds) in all")
    ap.add_argument(
        "--set", action="append", default=[], type=_key_value("--set"), metavar="KEY=VALUE"
    )
    ap.add_argument("--engine", choices=("auto", "llama.cpp", "transformers"), default="auto")
    ap.add_argument("--model", default=None, help="a .gguf file, or an HF folder or id")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--out", type=Path, help="keep the run's output folder here (default: a temporary one)"
    )
    ap.add_argument(
        "--repair-style",
        choices=REPAIR_STYLES,
        default=LOCAL_REPAIR_STYLE,
        help="as genteach generate (default: the embedded model's)",
    )
    ap.add_argument("--repair-temperature", type=float, default=LOCAL_REPAIR_TEMPERATURE)
    args = ap.parse_args()

    client = local_model_client(args.model, engine=args.engine)
    if args.out is not None:
        shutil.rmtree(args.out, ignore_errors=True)
        row = asyncio.run(_run(args, client, str(args.out)))
    else:
        with tempfile.TemporaryDirectory() as out:
            row = asyncio.run(_run(args, client, out))
    row["engine"] = type(client).__name__
    row["model"] = client.model_name
    print(json.dumps(row, indent=2), flush=True)
    meta = {
        "cpu": _cpu(),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPUs",
        "python": platform.python_version(),
        "versions": {
            p: _version(p) for p in ("genteach", "llama-cpp-python", "torch", "transformers")
        },
        "settings": dict(args.set),
        "units": args.units,
        "repair": f"{args.repair_style} at temperature {args.repair_temperature}",
    }
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "row": row}, indent=2))
    print(json.dumps(meta), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
