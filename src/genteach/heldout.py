"""Where ``genteach eval split`` keeps the ids it held out, and which sources they apply to.

A leaf module (standard library only), so that training's loader and ``genteach export``
can leave held-out records out on a machine that has only the training packages.
:mod:`genteach.evaluate` writes the split; this module reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

EVAL_DIR = "eval"
SPLIT_FILE = "split.json"


def split_path(run: str | Path) -> Path:
    """``RUN/eval/split.json``."""
    return Path(run) / EVAL_DIR / SPLIT_FILE


def split_file_for(source: str | Path) -> Path | None:
    """The ``eval/split.json`` that applies to a training source, or None: the source is a
    run folder, or a records file of one (``RUN/records.jsonl``, ``RUN/shards/*/``,
    ``RUN/judge/records.jsonl``, ``RUN/eval/heldout.jsonl``)."""
    p = Path(source)
    if p.is_dir():
        run = p
    elif p.suffix == ".jsonl":
        run = p.parent
        if run.parent.name == "shards":
            run = run.parent.parent
        elif run.name in ("judge", EVAL_DIR) and not split_path(run).is_file():
            run = run.parent
    else:
        return None
    path = split_path(run)
    return path if path.is_file() else None


def held_out_ids(source: str | Path) -> set[str]:
    """The held-out record ids that apply to a training source (empty when none)."""
    path = split_file_for(source)
    if path is None:
        return set()
    return set(json.loads(path.read_text(encoding="utf-8")).get("ids", []))


__all__ = ["EVAL_DIR", "SPLIT_FILE", "held_out_ids", "split_file_for", "split_path"]
