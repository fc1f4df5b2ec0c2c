"""``genteach train ...``: the recipe and ``inspect``, behind one light entry point.

``genteach`` dispatches every argument after ``train`` to :func:`main`. Nothing heavy is
imported until a command runs, and a missing ``train`` extra is one clear line.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["INSTALL_HINT", "main", "missing_extra"]

INSTALL_HINT = "pip install 'genteach[train]'"
REQUIRED = ("torch", "transformers", "trl", "accelerate", "datasets")
USAGE = """usage: genteach train --config CONFIG.yaml [--field value ...]
       genteach train --sources DATA.jsonl --model_name_or_path MODEL [--field value ...]
       genteach train inspect --config CONFIG.yaml [--index N] [--max_rows N] [--color auto]

Train with the SFT recipe (TRL), or print what a config trains (`inspect`). Configs:
configs/train/. Any field of the config can be overridden on the command line;
`genteach train --help` and `genteach train inspect --help` list them all."""


def missing_extra() -> list[str]:
    """Packages of the ``train`` extra that are not installed."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``genteach train`` with ``argv`` (the arguments after ``train``); return an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE, file=sys.stderr)
        return 2
    missing = missing_extra()
    if missing:
        print(
            f"genteach train needs the train extra ({', '.join(missing)} missing): {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    if args[0] == "inspect":
        from genteach.train.inspect import main as inspect_main

        return inspect_main(args[1:])
    if not {"--config", "--sources", "-h", "--help"} & {a.split("=")[0] for a in args}:
        print(f"genteach train: give --config or --sources\n{USAGE}", file=sys.stderr)
        return 2
    from genteach.train.recipe import main as recipe_main

    recipe_main(args)
    return 0
