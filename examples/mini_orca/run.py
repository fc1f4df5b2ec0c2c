"""A teaching experiment end to end: generate pairs with a teacher, hold out an Orca-Bench
split, train a student with the bundled recipe, and score the base and trained students.

Four steps, each run through genteach's command line (with this interpreter) and each
skipped when its output is already there, so a stopped run resumes where it stopped:

1. ``genteach generate`` writes about ``--pairs`` pairs into ``OUT/data``;
2. ``genteach eval split OUT/data`` holds out ``--heldout-per-skill`` records per skill;
3. ``python -m genteach.train --config OUT/train.yaml`` trains ``--student`` on ``OUT/data``
   (the loader leaves the held-out records out) into ``OUT/student``;
4. ``genteach eval run OUT/data`` asks ``base`` (the model before training) and ``tuned``
   (``OUT/student``) to answer the held-out items, has the judge score them and the
   teacher's answers, and writes ``OUT/eval/summary.md``.

Usage (toy scale, CPU, offline: the embedded model is the teacher and the judge)::

    python examples/mini_orca/run.py --out runs/mini_orca

Real scale: see examples/mini_orca/README.md and docs/mini_orca.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SMOKE_CONFIG = REPO / "configs" / "train" / "smoke_cpu.yaml"
DEFAULT_SEEDS = REPO / "examples" / "seeds"
DEFAULT_SKILLS = "rc,text_modification,tool_use"  # the README demo's three skills
DEFAULT_STUDENT = "genteach:local:qwen2.5-coder-0.5b-instruct"
SMALL_UNITS = "tasks_per_type=1,suggestions=1"
#: Pairs a unit is assumed to give before any unit has run (later rounds use the measured yield).
FIRST_GUESS_PER_UNIT = 2
STATE_FILE = "mini_orca.json"
#: Training steps and row length with smoke_cpu.yaml: generated pairs need longer rows than 192.
TOY_STEPS, TOY_LENGTH = 5, 1024
STEPS = ("generate", "split", "train", "eval")


class StepFailed(Exception):
    """A step failed; the message is the one line the script prints."""


@dataclass
class Experiment:
    """Where the experiment writes, and what it has done (``OUT/mini_orca.json``).

    Attributes:
        out: the experiment folder.
        state: per finished step, what it did (counts, seconds).
    """

    out: Path
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        """The run folder of ``genteach generate`` (records, split)."""
        return self.out / "data"

    @property
    def student(self) -> Path:
        """The trained student's folder (model, tokenizer, data_report.json)."""
        return self.out / "student"

    @property
    def eval_dir(self) -> Path:
        """Answers, scores and summary of ``genteach eval run``."""
        return self.out / "eval"

    @property
    def train_config(self) -> Path:
        """The training config this script writes."""
        return self.out / "train.yaml"

    @property
    def split(self) -> Path:
        """``OUT/data/eval/split.json``."""
        return self.data / "eval" / "split.json"

    @classmethod
    def open(cls, out: Path) -> Experiment:
        """The experiment in ``out``, with its state if it ran before."""
        path = out / STATE_FILE
        state = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return cls(out=out, state=state)

    def save(self, step: str, info: dict[str, Any]) -> None:
        """Record that ``step`` finished, with ``info``."""
        self.state[step] = info
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / STATE_FILE).write_text(json.dumps(self.state, indent=2) + "\n")


# -- helpers -----------------------------------------------------------------------------------
def genteach(*args: str) -> list[str]:
    """The command line of ``genteach ARGS`` with this interpreter."""
    return [sys.executable, "-m", "genteach", *args]


def run_command(cmd: Sequence[str], what: str) -> None:
    """Run ``cmd`` (its output goes to ours).

    Raises:
        StepFailed: it exited with a non-zero status.
    """
    print("  $ " + shlex.join(cmd), flush=True)
    code = subprocess.run(list(cmd), check=False).returncode
    if code != 0:
        raise StepFailed(f"{what} failed (exit {code}): see its output above")


def count_lines(folder: Path, name: str) -> int:
    """Rows of ``folder/name`` and of ``folder/shards/*/name`` (a sharded run)."""
    from genteach.records import read_jsonl

    paths = [folder / name, *sorted(folder.glob(f"shards/*/{name}"))]
    return sum(1 for p in paths for _ in read_jsonl(p))


def records_written(data: Path) -> int:
    """Records the run in ``data`` has written (held-out ones included)."""
    return count_lines(data, "records.jsonl")


def units_done(data: Path) -> int:
    """(skill, seed) units the run in ``data`` has finished."""
    return count_lines(data, "progress.jsonl")


def model_flags(base_url: str | None, model: str | None, local_model: str | None) -> list[str]:
    """``--base-url/--model`` for an endpoint (``--model`` alone: OpenAI with
    ``OPENAI_API_KEY``), else ``--local`` (the embedded model)."""
    if base_url and not model:
        raise StepFailed("an endpoint needs its model name: give --teacher-model/--judge-model")
    if model:
        return ["--model", model, *(["--base-url", base_url] if base_url else [])]
    return ["--local", *(["--local-model", local_model] if local_model else [])]


def base_student_spec(student: str) -> str:
    """The ``genteach eval`` spec of the model before training.

    A ``genteach:local[:NAME]`` name becomes its Hugging Face folder, so the base model runs
    on the same engine (transformers) as the trained one, which is a Hugging Face folder too.
    """
    from genteach.train.recipe import resolve_model_path

    return "local:" + resolve_model_path(student)


# -- steps -------------------------------------------------------------------------------------
def step_generate(exp: Experiment, args: argparse.Namespace) -> str | None:
    """Generate until ``--pairs`` records are written, the seeds run out, or a round adds no
    record. Returns None when already done, else what it did."""
    have = records_written(exp.data)
    done = exp.state.get("generate", {})
    if have >= args.pairs or (have and done.get("pairs", 0) >= args.pairs):
        return None
    if exp.split.is_file():
        raise StepFailed(
            f"{exp.split} exists: pairs generated now would all go to training; "
            "use a new --out for more --pairs"
        )
    teacher = model_flags(args.teacher_base_url, args.teacher_model, args.teacher_local_model)
    settings = [f"--set={kv.strip()}" for kv in args.unit_settings.split(",") if kv.strip()]
    extra = ["--concurrency", str(args.concurrency)] if args.concurrency else []
    for round_no in range(1, args.max_rounds + 1):
        units, have = units_done(exp.data), records_written(exp.data)
        per_unit = have / units if have and units else FIRST_GUESS_PER_UNIT
        limit = units + max(1, math.ceil((args.pairs - have) / per_unit))
        print(f"  round {round_no}: {have} records from {units} units; asking for {limit} units")
        cmd = genteach(
            "generate",
            "--seeds",
            str(args.seeds),
            "--out",
            str(exp.data),
            "--skills",
            args.skills,
            "--limit",
            str(limit),
            "--seed",
            str(args.seed),
            "--no-progress",
            *teacher,
            *settings,
            *extra,
        )
        run_command(cmd, "generation")
        new_units, now = units_done(exp.data), records_written(exp.data)
        if now >= args.pairs or new_units == units or now == have:
            break  # enough, seeds used up, or the teacher's units give nothing
    have, units = records_written(exp.data), units_done(exp.data)
    if have == 0:
        raise StepFailed(
            f"generation wrote 0 records from {units} units: nothing to hold out; "
            "use a capable teacher or more --pairs"
        )
    exp.save("generate", {"pairs": args.pairs, "records": have, "units": units})
    note = "" if have >= args.pairs else f" (fewer than --pairs {args.pairs}: see the rejects)"
    return f"{have} records from {units} units{note}"


def step_split(exp: Experiment, args: argparse.Namespace) -> str | None:
    """Hold out ``--heldout-per-skill`` records per skill. None when already done."""
    if exp.split.is_file():
        per_skill = json.loads(exp.split.read_text(encoding="utf-8")).get("per_skill")
        if per_skill != args.heldout_per_skill:
            raise StepFailed(
                f"{exp.split} holds {per_skill} per skill, not --heldout-per-skill "
                f"{args.heldout_per_skill}: use a new --out"
            )
        return None
    cmd = genteach(
        "eval",
        "split",
        str(exp.data),
        "--per-skill",
        str(args.heldout_per_skill),
        "--seed",
        str(args.seed),
    )
    run_command(cmd, "the split")
    split = json.loads(exp.split.read_text(encoding="utf-8"))
    total = sum(c["total"] for c in split["counts"].values())
    left = total - len(split["ids"])
    if left == 0:
        raise StepFailed(
            f"every one of the {total} records is held out: nothing left to train on; "
            "use more --pairs or a smaller --heldout-per-skill"
        )
    exp.save("split", {"held_out": len(split["ids"]), "records": total})
    return f"{len(split['ids'])} of {total} records held out; {left} left for training"


def write_train_config(exp: Experiment, args: argparse.Namespace) -> dict[str, Any]:
    """``OUT/train.yaml``: ``--train-config`` (default smoke_cpu.yaml) with this experiment's
    model, data, steps, length and output folder. Returns the config."""
    import yaml

    config: dict[str, Any] = yaml.safe_load(Path(args.train_config).read_text(encoding="utf-8"))
    smoke = Path(args.train_config).resolve() == SMOKE_CONFIG
    config.update(
        model_name_or_path=args.student,
        sources=[{"path": str(exp.data), "name": "generated"}],
        output_dir=str(exp.student),
    )
    for key, value, toy in (
        ("max_steps", args.max_steps, TOY_STEPS),
        ("max_length", args.max_length, TOY_LENGTH),
    ):
        if value is not None or smoke:  # another config keeps its own unless asked
            config[key] = toy if value is None else value
    config.pop("report_path", None)  # the data report goes to OUT/student/data_report.json
    head = (
        f"# Written by examples/mini_orca/run.py from {args.train_config}.\n"
        f"# Run it by hand: python -m genteach.train --config {exp.train_config}\n"
        "# The source is the run folder, so training leaves the held-out records out.\n"
    )
    exp.out.mkdir(parents=True, exist_ok=True)
    exp.train_config.write_text(head + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return config


def trained(exp: Experiment) -> bool:
    """Whether ``OUT/student`` holds a finished training run (the model is saved at the end;
    the data report at the start)."""
    saved = any((exp.student / name).is_file() for name in ("config.json", "adapter_config.json"))
    return saved and (exp.student / "data_report.json").is_file()


def check_training(exp: Experiment) -> str:
    """Check that training read the records less the held-out ones; record the step.

    Raises:
        StepFailed: the data report read another number of rows.
    """
    report_path = exp.student / "data_report.json"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    read = sum(int(s["rows_read"]) for s in report["sources"])
    held = len(json.loads(exp.split.read_text(encoding="utf-8"))["ids"])
    expected = records_written(exp.data) - held
    if read != expected:
        raise StepFailed(
            f"training read {read} rows, expected {expected} (the records less {held} "
            f"held out): check {report_path}"
        )
    exp.save("train", {"rows_read": read, "rows_kept": report["rows_kept"]})
    return f"{read} rows read ({held} held-out records left out), {report['rows_kept']} kept"


def step_train(exp: Experiment, args: argparse.Namespace) -> str | None:
    """Train ``--student`` on the generated records. None when already done (by this script,
    or by hand with ``OUT/train.yaml``)."""
    if trained(exp):
        if "train" not in exp.state:
            print(f"  trained outside this script: {check_training(exp)}")
        return None
    write_train_config(exp, args)
    launcher = shlex.split(args.launcher) if args.launcher else [sys.executable]
    cmd = [*launcher, "-m", "genteach.train", "--config", str(exp.train_config)]
    run_command([*cmd, *shlex.split(args.train_args or "")], "training")
    if not trained(exp):
        raise StepFailed(f"training exited 0 but {exp.student} holds no saved model")
    return f"{check_training(exp)}; model in {exp.student}"


def step_eval(exp: Experiment, args: argparse.Namespace) -> str | None:
    """Score ``base`` and ``tuned`` on the held-out items. None when already done."""
    summary = exp.eval_dir / "summary.json"
    if summary.is_file():
        students = json.loads(summary.read_text(encoding="utf-8")).get("students_models", {})
        if {"base", "tuned"} <= set(students):
            return None
    base = args.base_student or base_student_spec(args.student)
    tuned = args.tuned_student or f"local:{exp.student}"
    judge = model_flags(args.judge_base_url, args.judge_model, args.judge_local_model)
    cmd = genteach(
        "eval",
        "run",
        str(exp.data),
        "--student",
        f"base={base}",
        "--student",
        f"tuned={tuned}",
        "--out",
        str(exp.eval_dir),
        "--student-max-tokens",
        str(args.student_max_tokens),
        *judge,
    )
    if args.judge_max_tokens:
        cmd += ["--max-tokens", str(args.judge_max_tokens)]
    if args.concurrency:
        cmd += ["--concurrency", str(args.concurrency)]
    run_command(cmd, "evaluation")
    exp.save("eval", {"base": base, "tuned": tuned})
    return f"summary in {exp.eval_dir / 'summary.md'}"


STEP_FUNCTIONS: dict[str, Callable[[Experiment, argparse.Namespace], str | None]] = {
    "generate": step_generate,
    "split": step_split,
    "train": step_train,
    "eval": step_eval,
}


def describe(step: str, exp: Experiment, args: argparse.Namespace) -> str:
    """One line on what ``step`` does."""
    teacher = args.teacher_model or args.teacher_local_model or "the embedded model"
    judge = args.judge_model or args.judge_local_model or "the embedded model"
    return {
        "generate": f"about {args.pairs} pairs of {args.skills} from {args.seeds}, "
        f"teacher {teacher}, into {exp.data}",
        "split": f"hold out {args.heldout_per_skill} record(s) per skill of {exp.data}",
        "train": f"{args.student} on the records not held out, with {args.train_config}'s "
        f"settings, into {exp.student}",
        "eval": f"base and tuned answer the held-out items; judge {judge}; into {exp.eval_dir}",
    }[step]


# -- command line ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The script's options."""
    p = argparse.ArgumentParser(
        prog="examples/mini_orca/run.py",
        description="Generate pairs, hold out an Orca-Bench split, train a student, score "
        "base and trained students. Steps already done in --out are skipped.",
    )
    p.add_argument("--out", type=Path, required=True, help="experiment folder (reused)")
    g = p.add_argument_group("1. generate")
    g.add_argument("--pairs", type=int, default=8, help="records to generate (default 8)")
    g.add_argument("--seeds", default=str(DEFAULT_SEEDS), help="seeds (default examples/seeds)")
    g.add_argument("--skills", default=DEFAULT_SKILLS, help=f"skills (default {DEFAULT_SKILLS})")
    g.add_argument("--teacher-base-url", help="teacher endpoint (default: the embedded model)")
    g.add_argument(
        "--teacher-model", help="the teacher's model name (alone: OpenAI, OPENAI_API_KEY)"
    )
    g.add_argument("--teacher-local-model", help="embedded teacher: a shipped name or a path")
    g.add_argument(
        "--unit-settings",
        default=SMALL_UNITS,
        help=f"--set values for generate, comma-separated (default {SMALL_UNITS}: small "
        "units; '' keeps the taxonomy's)",
    )
    g.add_argument(
        "--max-rounds", type=int, default=3, help="generate calls to reach --pairs (default 3)"
    )
    g.add_argument("--seed", type=int, default=0, help="seed of generation and split")
    g.add_argument("--concurrency", type=int, help="model calls at once (generate, eval)")
    p.add_argument(
        "--stop-before",
        choices=STEPS[1:],
        help="stop before this step (before train: OUT/train.yaml is written, to train by hand)",
    )
    s = p.add_argument_group("2. split")
    s.add_argument(
        "--heldout-per-skill", type=int, default=1, help="records held out per skill (default 1)"
    )
    t = p.add_argument_group("3. train")
    t.add_argument("--student", default=DEFAULT_STUDENT, help=f"base model ({DEFAULT_STUDENT})")
    t.add_argument(
        "--train-config",
        default=str(SMOKE_CONFIG),
        help="config whose settings are kept (default configs/train/smoke_cpu.yaml)",
    )
    t.add_argument(
        "--max-steps",
        type=int,
        help=f"optimiser steps, -1 for the config's epochs (default {TOY_STEPS} with "
        "smoke_cpu.yaml, else the config's)",
    )
    t.add_argument(
        "--max-length",
        type=int,
        help=f"tokens per row (default {TOY_LENGTH} with smoke_cpu.yaml, else the config's)",
    )
    t.add_argument(
        "--launcher",
        help="command before '-m genteach.train', e.g. 'accelerate launch --config_file "
        "configs/train/accelerate/single_gpu.yaml' (default: this python)",
    )
    t.add_argument(
        "--train-args",
        help="more options for genteach.train, one string, e.g. "
        "'--resume_from_checkpoint last --learning_rate 1e-5'",
    )
    e = p.add_argument_group("4. eval")
    e.add_argument("--judge-base-url", help="judge endpoint (default: the embedded model)")
    e.add_argument("--judge-model", help="the judge's model name (alone: OpenAI, OPENAI_API_KEY)")
    e.add_argument("--judge-local-model", help="embedded judge: a shipped name or a path")
    e.add_argument("--judge-max-tokens", type=int, help="most tokens of a judge answer")
    e.add_argument(
        "--student-max-tokens", type=int, default=256, help="most tokens of an answer (256)"
    )
    e.add_argument("--base-student", help="eval SPEC of the base (default: the --student folder)")
    e.add_argument("--tuned-student", help="eval SPEC of the trained student (default OUT/student)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the steps not done yet; print what each did and how long it took.

    Returns:
        0 when every step is done, 1 when one failed (one line says which and why), 2 on
        bad options.
    """
    args = build_parser().parse_args(argv)
    if args.pairs < 1 or args.heldout_per_skill < 1 or args.max_rounds < 1:
        print("mini_orca: --pairs, --heldout-per-skill and --max-rounds must be at least 1")
        return 2
    exp = Experiment.open(args.out)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    for n, name in enumerate(STEPS, 1):
        if name == args.stop_before:
            if name == "train":
                write_train_config(exp, args)
                print(f"wrote {exp.train_config}; train with it by hand, e.g.")
                print(f"  python -m genteach.train --config {exp.train_config}")
            print(f"stopped before {name} (--stop-before); run again without it to go on")
            return 0
        print(f"[{n}/{len(STEPS)}] {name}: {describe(name, exp, args)}", flush=True)
        began = time.perf_counter()
        try:
            did = STEP_FUNCTIONS[name](exp, args)
        except StepFailed as exc:
            print(f"mini_orca: step {name} failed: {exc}", flush=True)
            return 1
        if did is None:
            print(f"  done already in {exp.out}: skipped", flush=True)
        else:
            print(f"  {did} ({time.perf_counter() - began:.1f} s)", flush=True)
    md = exp.eval_dir / "summary.md"
    print()
    print(md.read_text(encoding="utf-8"))
    print(f"summary: {md}")
    print(
        "At toy scale these numbers mean nothing: a few items, a weak teacher and judge, a few\n"
        "training steps. The run shows that the pieces fit (generation, the held-out split,\n"
        "training without it, judging both students), not what training is worth.\n"
        f"total {time.perf_counter() - start:.1f} s"
    )
    return 0


__all__ = ["Experiment", "StepFailed", "base_student_spec", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
