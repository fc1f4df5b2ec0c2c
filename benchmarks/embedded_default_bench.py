"""Valid pairs per minute of the embedded default teacher, per skill.

Runs each skill on the example seeds with the embedded local model (in-process, batched) and
reports records (valid pairs), rejects by reason, wall time and pairs per minute. This is the
measure the embedded model was chosen by.

Usage:
    python benchmarks/embedded_default_bench.py --skills rc,text_modification,tool_use \
        --units 2 --set suggestions=1 --set tasks_per_type=1 --json /tmp/embedded.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from genteach import Pipeline, RunSettings
from genteach.agents.base import REPAIR_STYLES
from genteach.cli import _overrides
from genteach.models.config import LOCAL_REPAIR_STYLE, LOCAL_REPAIR_TEMPERATURE
from genteach.models.local import local_model_client
from genteach.records import read_jsonl

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--skills", default="rc,text_modification,tool_use")
    ap.add_argument("--units", type=int, default=2, help="units (seeds) per skill")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--model", default=None, help="HF folder/id (default: the embedded model)")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--repair-style",
        choices=REPAIR_STYLES,
        default=LOCAL_REPAIR_STYLE,
        help="as genteach generate (default: the embedded model's)",
    )
    ap.add_argument("--repair-temperature", type=float, default=LOCAL_REPAIR_TEMPERATURE)
    args = ap.parse_args()

    client = local_model_client(args.model, max_tokens=args.max_tokens)
    rows = []
    for skill in args.skills.split(","):
        with tempfile.TemporaryDirectory() as out:
            pipe = Pipeline(
                client,
                skills=[skill],
                settings=RunSettings(
                    seed=0,
                    limit=args.units,
                    overrides=_overrides(args.set),
                    repair_style=args.repair_style,
                    repair_temperature=args.repair_temperature,
                ),
            )
            t0 = time.perf_counter()
            summary = pipe.run(REPO / "examples" / "seeds", out)
            wall = time.perf_counter() - t0
            reasons = Counter(
                f"{r['stage']}: {r['reason'][:70]}" for r in read_jsonl(Path(out) / "rejects.jsonl")
            )
        row = {
            "skill": skill,
            "units": summary.units_done,
            "records": summary.records,
            "rejects": summary.rejects,
            "calls": summary.usage.calls,
            "completion_tokens": summary.usage.completion_tokens,
            "wall_s": round(wall, 1),
            "pairs_per_min": round(summary.records / wall * 60, 2),
            "reject_reasons": dict(reasons.most_common(5)),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "settings": args.set,
        "repair": f"{args.repair_style} at temperature {args.repair_temperature}",
        "model": client.model_name,
    }
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(json.dumps(meta), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
