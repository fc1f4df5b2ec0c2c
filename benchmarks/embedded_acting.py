"""The embedded local model as the *acting* agent of AgentTuning's environments.

The embedded model writes almost no OS task its checks accept (docs/trajectories.md), so a
run of the ``os`` skill with it alone never reaches an episode. This script measures the
acting half apart from the writing half: the tasks (and, for ``db``, the tables) come from
the tests' scripted writer (``tests/os_tasks.py``, ``tests/test_db_skill.py``: tasks whose
keys pass their own checks), and every episode turn is the embedded model's. The episodes
run through the real skill (format, demonstration, sandbox, reward filter), and the run
writes its records, rejects and ``trajectories.json`` as any run does.

Usage:
    python benchmarks/embedded_acting.py --skills os --limit 1 --out runs/acting --json F
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genteach import ModelConfig, Pipeline, RunSettings, ScriptedModel, build_client
from genteach.models.base import Completion, Message, ModelClient, ModelRequest
from genteach.records import Seed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the scripted writers' task tables

from os_tasks import TASKS as OS_TASKS  # noqa: E402
from test_db_skill import TABLES as DB_TABLES  # noqa: E402
from test_db_skill import TASKS as DB_TASKS  # noqa: E402

TAXONOMY = ROOT / "taxonomies" / "agenttuning.yaml"


def write(messages: Sequence[Message]) -> str:
    """The scripted writer: tables and tasks by task type, as the tests' teachers give them."""
    system, user = messages[0]["content"], messages[1]["content"]
    if "You are a database designer" in system:
        return json.dumps(DB_TABLES)
    name = re.search(r'of the type "([^"]+)"', user).group(1)  # type: ignore[union-attr]
    n = int(re.search(r"Write (\d+) task", user).group(1))  # type: ignore[union-attr]
    if name in OS_TASKS:
        request, key, _, _ = OS_TASKS[name]
        return json.dumps({"tasks": [{"instruction": request, "key": key}] * n})
    q, op, sql, _, _ = DB_TASKS[name]
    task = {"instruction": q, "key": {"kind": "db_reference", "operation": op, "sql": sql}}
    return json.dumps({"tasks": [task] * n})


class Router:
    """Table-building and task-writing calls to the scripted writer; every other call (the
    acting agent's turns) to the embedded model."""

    def __init__(self, actor: ModelClient) -> None:
        self.actor = actor
        self.writer = ScriptedModel(write, name="scripted-writer")

    @property
    def model_name(self) -> str:
        return f"{self.actor.model_name} (acting; tasks by a scripted writer)"

    async def complete(self, request: ModelRequest) -> Completion:
        system = request.messages[0]["content"] if request.messages else ""
        if "task-writing agent" in system or "You are a database designer" in system:
            return await self.writer.complete(request)
        return await self.actor.complete(request)

    async def close(self) -> None:
        await self.actor.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--skills", default="db,os", help="db, os or both (default both)")
    p.add_argument("--limit", type=int, default=1, help="units per skill (default 1)")
    p.add_argument("--out", required=True, help="output folder (resumable)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    skills = [s.strip() for s in args.skills.split(",") if s.strip()]
    seeds = [
        Seed.from_text(f.read_text(), source=f.name)
        for f in sorted((ROOT / "examples" / "seeds").iterdir())
        if f.suffix in (".md", ".txt")
    ]
    actor = build_client(ModelConfig(local=True))
    started = time.monotonic()
    pipe = Pipeline(
        Router(actor),
        taxonomy=TAXONOMY,
        skills=skills,
        settings=RunSettings(seed=0, limit=args.limit * len(skills)),
    )
    summary = pipe.run(seeds, args.out)
    wall = time.monotonic() - started
    report = json.loads((Path(args.out) / "trajectories.json").read_text())
    print(f"{summary.records} records, {summary.rejects} rejects in {wall:.0f} s")
    for line in summary.episodes:
        print(line)
    if args.json:
        figures: dict[str, Any] = {
            "command": " ".join(sys.argv),
            "actor": actor.model_name,
            "wall_s": round(wall, 1),
            "records": summary.records,
            "rejects": summary.rejects,
            "episodes": report,
        }
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
