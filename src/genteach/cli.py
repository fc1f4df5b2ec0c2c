"""The ``genteach`` command: generate, taxonomy, inspect, export, contamination, dedup,
train."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import logging
import os
import signal
import sys
import time
import types
import typing
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from genteach import __version__
from genteach.models.config import LOCAL_REPAIR_STYLE, LOCAL_REPAIR_TEMPERATURE, ModelConfig
from genteach.pipeline import RunSettings
from genteach.prompts import PromptError

if TYPE_CHECKING:
    from pydantic import ValidationError

_T = TypeVar("_T")

EPILOG = """examples:
  genteach generate --seeds examples/seeds --out out/        # embedded local model
  OPENAI_API_KEY=... genteach generate --seeds docs/ --out out/ --model gpt-4o
  genteach generate --seeds docs/ --out out/ --base-url http://127.0.0.1:8000/v1 --model my-model
  genteach taxonomy list
  genteach inspect out/ -n 2
  genteach export out/ --out hf/ --push-to-hub me/my-pairs
  genteach train --config configs/train/smoke_cpu.yaml
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``genteach`` command; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["train"]:
        from genteach.train.cli import main as train_main

        return train_main(args_list[1:])
    parser = _parser()
    try:
        args = parser.parse_args(args_list)
    except _UsageError as exc:
        print(f"{exc} (see {exc.prog} --help)", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    from genteach.models.base import FatalModelError, OutageError

    try:
        return int(args.func(args))
    except FatalModelError as exc:
        print(
            f"genteach: the teacher cannot serve this run: {exc} "
            "(nothing more was marked done; fix it and run the same command)",
            file=sys.stderr,
        )
        return 3
    except OutageError as exc:
        print(
            f"genteach: {exc}; finished units are saved: run the same command to resume",
            file=sys.stderr,
        )
        return 4
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished units are saved; run the same command to resume",
            file=sys.stderr,
        )
        return 130
    except (ValueError, FileNotFoundError, ImportError, PromptError) as exc:
        # Bad input (TaxonomyError, SeedSourceError, OutputFolderError, PromptError, refused
        # resumes, bad paths): one line, exit 2. See docs/cli.md for the exit codes.
        print(f"genteach: error: {_one_line(exc)}", file=sys.stderr)
        return 2


class _UsageError(Exception):
    """A command line argparse refuses; its message is one line."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: error: {message}")
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (exit 2) instead of the usage block."""

    def error(self, message: str) -> typing.NoReturn:
        raise _UsageError(self.prog, message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="genteach",
        description="Generative teaching: turn documents and code into chat pairs with "
        "AgentInstruct's agentic flows.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"genteach {__version__}")
    sub = p.add_subparsers(dest="command")

    g = sub.add_parser("generate", help="generate chat pairs from seeds")
    g.add_argument(
        "--seeds",
        required=True,
        help="folder of text/code files; a .jsonl/.json/.parquet file; a saved dataset folder; "
        "or a Hugging Face dataset name (hf:NAME forces one), streamed",
    )
    g.add_argument("--text-field", default="text", help="row field holding the text")
    g.add_argument("--split", default="train", help="dataset split (default train)")
    g.add_argument("--dataset-config", help="dataset configuration name")
    g.add_argument(
        "--data-files",
        action="append",
        default=[],
        metavar="PATTERN",
        help="data files of a dataset builder, e.g. --seeds hf:json --data-files 'a/*.jsonl.gz' "
        "(repeatable)",
    )
    g.add_argument(
        "--chunk-tokens",
        type=_positive(int),
        default=2048,
        help="split longer documents into chunks of at most N tokens (default 2048)",
    )
    g.add_argument("--out", required=True, help="output folder (records.jsonl, rejects.jsonl, ...)")
    g.add_argument("--skills", help="comma-separated skill ids (default: every ready skill)")
    g.add_argument("--taxonomy", help="taxonomy YAML (default: the built-in agentinstruct.yaml)")
    g.add_argument(
        "--prompts",
        action="append",
        default=[],
        help="extra prompt folder, searched first (repeatable)",
    )
    seen: set[str] = set()
    _add_field_flags(g, ModelConfig, seen, title="teacher (ModelConfig)")
    _add_field_flags(g, RunSettings, seen, title="run (RunSettings)")
    g.add_argument("--prices", help="YAML price table, $ per 1M tokens: MODEL: {input, output}")
    g.add_argument(
        "--dry-run",
        action="store_true",
        help="estimate calls, tokens and cost, then stop without calling the model",
    )
    g.add_argument(
        "--calibrate-from",
        action="append",
        default=[],
        metavar="OUT",
        help="for --dry-run: an earlier output folder whose measured usage per unit is used",
    )
    g.add_argument(
        "--fresh", action="store_true", help="discard earlier output in --out instead of resuming"
    )
    g.add_argument(
        "--accept-changes",
        action="store_true",
        help="resume even though the teacher, endpoint, taxonomy, skills, seed or templates "
        "differ from OUT/run.json (which then keeps the earlier ones in its history)",
    )
    g.add_argument(
        "--retry-rejects",
        action="store_true",
        help="redo the units of --out that ended with rejects (answers in the cache are reused)",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: shard the seeds over a Ray cluster (genteach[ray])",
    )
    g.add_argument("--ray-address", help="Ray cluster address, e.g. HEAD:6379 (default: local)")
    g.add_argument(
        "--shards",
        type=_positive(int),
        default=8,
        help="ray: seed shards, fixed per --out (default 8)",
    )
    g.add_argument(
        "--actors",
        type=_positive(int),
        default=2,
        help="ray: shards run at once, one per actor (default 2)",
    )
    g.add_argument(
        "--cpus-per-actor", type=_positive(float), default=1.0, help="ray: CPUs reserved per actor"
    )
    g.set_defaults(func=_generate)

    t = sub.add_parser("taxonomy", help="list or validate a skill taxonomy")
    tsub = t.add_subparsers(dest="taxonomy_command", required=True)
    tl = tsub.add_parser("list", help="list skills and sub-categories")
    tl.add_argument("--taxonomy")
    tl.add_argument("--skill", help="show one skill's sub-categories in full")
    tl.set_defaults(func=_taxonomy_list)
    tv = tsub.add_parser("validate", help="validate a taxonomy and the templates it names")
    tv.add_argument("path", nargs="?", help="taxonomy YAML (default: built-in)")
    tv.add_argument("--prompts", action="append", default=[])
    tv.set_defaults(func=_taxonomy_validate)
    td = tsub.add_parser("docs", help="write one Markdown page per skill (and an index)")
    td.add_argument("--taxonomy")
    td.add_argument("--out", required=True, help="folder for the pages (e.g. docs/skills)")
    td.add_argument(
        "--examples",
        action="append",
        default=[],
        metavar="RECORDS",
        help="records .jsonl (or an output folder) whose first record per skill and teacher "
        "is shown as an example (repeatable)",
    )
    td.set_defaults(func=_taxonomy_docs)

    i = sub.add_parser("inspect", help="show records and the agents that made them")
    i.add_argument("path", help="output folder or records .jsonl")
    i.add_argument("-n", type=int, default=3, help="records to show (default 3)")
    i.add_argument("--skill", help="only this skill")
    i.add_argument("--id", help="only the record with this id")
    i.add_argument(
        "--rejects",
        action="store_true",
        help="show rejects instead of records: counted by reason, then the transcripts of "
        "the first -n filtered episodes",
    )
    i.set_defaults(func=_inspect)

    e = sub.add_parser(
        "export",
        help="export records as a Hub dataset: one parquet split per skill, with a card",
    )
    e.add_argument(
        "inputs", nargs="+", help="output folders (shards/*/ included) or records .jsonl files"
    )
    e.add_argument("--out", required=True, help="folder for data/*.parquet and README.md")
    e.add_argument(
        "--json-messages",
        action="store_true",
        help="messages as one JSON string (the orca-agentinstruct-1M form) instead of a list",
    )
    e.add_argument("--no-meta", action="store_true", help="leave out the meta column")
    e.add_argument(
        "--no-conversations",
        action="store_true",
        help="leave out THUDM's conversations column (the messages column has the same turns)",
    )
    e.add_argument("--rows-per-shard", type=int, help="most rows per parquet file")
    e.add_argument(
        "--max-shard-size", default="500MB", help="most bytes per parquet file (default 500MB)"
    )
    e.add_argument("--name", help="dataset title in the card (default: the --out folder name)")
    e.add_argument(
        "--tokenizer",
        metavar="MODEL",
        help="count the card's tokens with this model's tokenizer: an OpenAI model or a local "
        "HF folder (default: cl100k_base)",
    )
    e.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    e.add_argument(
        "--push-to-hub", metavar="REPO", help="then upload the folder to this Hub dataset repo"
    )
    e.add_argument("--private", action="store_true", help="create the Hub repo as private")
    e.set_defaults(func=_export)

    c = sub.add_parser(
        "contamination",
        help="find benchmark items that training rows overlap (10-grams, up to 4 mismatches)",
    )
    _module_command(c, "genteach.contamination")

    d = sub.add_parser(
        "dedup",
        help="remove exact, near (MinHash) and semantic duplicates from runs or datasets",
    )
    _module_command(d, "genteach.dedup")

    j = sub.add_parser("judge", help="score records with an LLM judge; keep those at a threshold")
    _module_command(j, "genteach.judge")

    v = sub.add_parser("eval", help="Orca-Bench: hold out records, have students answer, judge")
    _module_command(v, "genteach.evaluate")

    _module_command(
        sub.add_parser(
            "diversity",
            help="distinct-n, opening stems, embedding spread, refinement deltas, letter balance",
        ),
        "genteach.diversity",
    )
    _module_command(
        sub.add_parser("report", help="write one self-contained HTML report of a run"),
        "genteach.report",
    )

    sub.add_parser("train", help="post-train a model on the pairs (see `genteach train --help`)")
    return p


def _module_command(parser: argparse.ArgumentParser, module: str) -> None:
    """Give ``parser`` the arguments and the action of a command that lives in ``module``
    (its ``add_arguments`` and ``run``)."""
    mod = importlib.import_module(module)
    mod.add_arguments(parser)
    parser.set_defaults(func=mod.run)


# -- flags derived from the settings classes -------------------------------------------------
def _add_field_flags(
    parser: argparse.ArgumentParser, cls: type[Any], seen: set[str], *, title: str
) -> None:
    """One flag per field of the pydantic dataclass ``cls``, from its name, type, default
    and description (fields in ``seen`` already have one). Values not given are left out
    of the namespace, so the class's own defaults (and the environment) apply.

    ``--name-with-dashes`` for ``name_with_dashes``; a bool that defaults to True gets
    ``--no-name``, one that defaults to False (or None) ``--name``; a dict gets repeatable
    ``KEY=VALUE``; a Literal gets choices. ``json_schema_extra`` may give ``flag`` and
    ``metavar``; its ``env`` variables are named in the help.
    """
    group = parser.add_argument_group(title)
    for name, info in cls.__pydantic_fields__.items():
        if name in seen:
            continue
        seen.add(name)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        flag = str(extra.get("flag") or "--" + name.replace("_", "-"))
        kind, choices = _flag_type(info.annotation)
        help_text = info.description or ""
        env = extra.get("env")
        if isinstance(env, list) and env:
            help_text += f" (env {' / '.join(map(str, env))})"
        common: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS}
        if kind is bool:
            if info.default is True:
                flag = "--no-" + flag.removeprefix("--")
                group.add_argument(flag, action="store_false", help=f"do not {help_text}", **common)
            else:
                group.add_argument(flag, action="store_true", help=help_text, **common)
        elif kind is dict:
            group.add_argument(
                flag,
                action="append",
                type=_key_value(flag),
                metavar=str(extra.get("metavar", "KEY=VALUE")),
                help=help_text,
                **common,
            )
        else:
            default = info.default
            if default is not None and not callable(default) and "(default" not in help_text:
                help_text += (
                    f" (default {default:g})"
                    if isinstance(default, float)
                    else (f" (default {default})")
                )
            group.add_argument(
                flag,
                type=kind,
                choices=choices,
                metavar=str(extra["metavar"]) if "metavar" in extra else None,
                help=help_text,
                **common,
            )


def _flag_type(annotation: Any) -> tuple[Any, tuple[str, ...] | None]:
    """(argparse type, choices) of a field annotation: ``X | None`` is X, a Literal is
    its values."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _flag_type(inner[0]) if len(inner) == 1 else (str, None)
    if typing.get_origin(annotation) is typing.Literal:
        return str, tuple(str(a) for a in args)
    if typing.get_origin(annotation) is dict or annotation is dict:
        return dict, None
    if annotation in (bool, int, float, str):
        return annotation, None
    return str, None


def _key_value(flag: str) -> Any:
    import yaml

    def parse(pair: str) -> tuple[str, Any]:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(
                f"{pair!r}: expected KEY=VALUE, e.g. {flag} suggestions=1"
            )
        try:
            return key.strip(), yaml.safe_load(value)
        except yaml.YAMLError:
            return key.strip(), value

    return parse


def _positive(kind: type[Any]) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value

    return parse


def _given(args: argparse.Namespace, cls: type[Any]) -> dict[str, Any]:
    """The values of ``cls``'s fields given on the command line."""
    values = {k: v for k, v in vars(args).items() if k in cls.__pydantic_fields__}
    if isinstance(values.get("overrides"), list):
        values["overrides"] = dict(values["overrides"])
    return values


def _settings_error(exc: ValidationError, cls: type[Any]) -> ValueError:
    """A pydantic error about a settings class as one line naming the flag (and the
    environment variable a value may have come from)."""
    parts = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else ""
        info = cls.__pydantic_fields__.get(name)
        extra = info.json_schema_extra if info and isinstance(info.json_schema_extra, dict) else {}
        flag = str(extra.get("flag") or "--" + name.replace("_", "-"))
        env = extra.get("env")
        if isinstance(env, list) and env:
            flag += f" (or {' / '.join(map(str, env))})"
        parts.append(f"{flag} {err['input']!r}: {err['msg']}")
    return ValueError("; ".join(parts))


def _model_config(args: argparse.Namespace) -> ModelConfig:
    """The teacher's settings: the environment, then the flags given."""
    from pydantic import ValidationError

    try:
        return ModelConfig.from_env(**_given(args, ModelConfig))
    except ValidationError as exc:
        raise _settings_error(exc, ModelConfig) from None


def _run_settings(args: argparse.Namespace, *, uses_local: bool) -> RunSettings:
    """The run's settings from the command line; the embedded model repairs its own way
    (:data:`~genteach.models.config.LOCAL_REPAIR_STYLE`) unless told otherwise."""
    from pydantic import ValidationError

    values = _given(args, RunSettings)
    if uses_local:
        values.setdefault("repair_temperature", LOCAL_REPAIR_TEMPERATURE)
        values.setdefault("repair_style", LOCAL_REPAIR_STYLE)
    try:
        return RunSettings(**values)
    except ValidationError as exc:
        raise _settings_error(exc, RunSettings) from None


def _generate(args: argparse.Namespace) -> int:
    from genteach.cost import PriceTable, format_cost
    from genteach.models.config import DEFAULT_OPENAI_MODEL, LOCAL_MODEL_WARNING, build_client
    from genteach.models.local import LocalEngine
    from genteach.models.local_assets import local_teacher_name
    from genteach.pipeline import SKIPS_FILE, Pipeline, Progress, check_output_folder
    from genteach.prompts import PromptLibrary
    from genteach.seeds import SeedReport, SeedSourceError, iter_seeds, require_seeds

    # Everything that can be checked is checked before a model is loaded or called, in
    # order of cost: flags, output folder, taxonomy and templates, then the seeds.
    cfg = _model_config(args)
    settings = _run_settings(args, uses_local=cfg.uses_local)
    skills = [s.strip() for s in args.skills.split(",")] if args.skills else None
    if not args.dry_run:
        check_output_folder(args.out)
        if (Path(args.out) / "ray.json").exists() and not args.fresh and args.executor != "ray":
            raise ValueError(
                f"{args.out} holds a sharded Ray run: resume it with --executor ray, "
                "or use another output folder"
            )
    prompts = PromptLibrary(args.prompts)
    prices = PriceTable.load(args.prices)
    # The planner has the teacher's name (for prices) and is never called; building it
    # checks the taxonomy, the skills, the overrides and every template they name.
    name = cfg.model or (
        local_teacher_name(cfg.local_model) if cfg.uses_local else DEFAULT_OPENAI_MODEL
    )
    planner = Pipeline(
        _NamedOnly(name),
        taxonomy=args.taxonomy,
        skills=skills,
        prompts=prompts,
        settings=settings,
        prices=prices,
    )
    report = SeedReport()
    try:
        seeds = require_seeds(
            iter_seeds(
                args.seeds,
                text_field=args.text_field,
                split=args.split,
                config=args.dataset_config,
                data_files=args.data_files or None,
                chunk_tokens=args.chunk_tokens,
                dedupe=True,
                report=report,
            ),
            report,
            args.seeds,
        )
    except SeedSourceError as exc:
        if report.skipped.get("row without text field"):
            raise SeedSourceError(f"{exc}; rows are read from field {args.text_field!r}: set "
                                  "--text-field") from None  # fmt: skip
        raise

    if args.dry_run:
        from genteach.estimate import estimate_run

        estimate = estimate_run(planner, seeds, calibration=args.calibrate_from)
        stopped = settings.limit is not None and estimate.units >= settings.limit
        _print_seeds(report, stopped_at=settings.limit if stopped else None, skips_file=None)
        print(str(estimate))
        return 0

    if args.executor == "ray":
        if args.retry_rejects:
            raise ValueError("--retry-rejects works with --executor local only")
        if cfg.uses_local:
            print(LOCAL_MODEL_WARNING, file=sys.stderr)
        return _generate_on_ray(args, cfg, skills, settings, seeds)
    client = build_client(cfg)
    # Start-up objects (taxonomy, templates, SDKs) live for the whole run: keep the
    # garbage collector from walking them again and again while calls stream in.
    gc.collect()
    gc.freeze()
    pipeline = Pipeline(
        client,
        taxonomy=planner.taxonomy,
        skills=skills,
        prompts=prompts,
        settings=settings,
        prices=prices,
        endpoint=cfg.endpoint,
    )
    bar: Any = None
    postfix: dict[str, Any] = {}
    started = False

    def on_progress(p: Progress) -> None:
        nonlocal bar, started
        if not started:  # the run passed its checks (a refused resume prints one line)
            started = True
            if cfg.uses_local:
                print(LOCAL_MODEL_WARNING, file=sys.stderr)
            skill_ids = ", ".join(s.id for s in pipeline.skills)
            print(f"teacher: {client.model_name}; skills: {skill_ids}", file=sys.stderr)
        if args.no_progress:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=p.units_total, unit="unit", file=sys.stderr)
        if p.units_total is not None and bar.total != p.units_total:
            bar.total = p.units_total
        bar.n = p.units_done
        postfix.update(
            records=p.records,
            rejects=p.rejects,
            calls=p.usage.calls,
            tokens=p.usage.total_tokens,
            cost=format_cost(p.cost),
            cached=p.cached_calls,
            conc=p.concurrency,
        )
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()

    async def show_engine_rate(engine: Any) -> None:
        """Keep the bar's ``tok/s`` (tokens the local engine made per second, over the
        last seconds) and ``read/s`` (prompt tokens it read) fresh while long work runs,
        so a slow machine is visible, not silent."""
        made = _RateMeter(lambda: int(engine.tokens_made))
        read = _RateMeter(lambda: int(getattr(engine, "tokens_read", 0)))
        while True:
            await asyncio.sleep(ENGINE_RATE_EVERY)
            rates = made.rate(), read.rate()
            if bar is not None and rates[0] is not None and rates[1] is not None:
                postfix["tok/s"] = f"{rates[0]:.1f}"
                postfix["read/s"] = f"{rates[1]:.0f}"
                bar.set_postfix(postfix, refresh=False)
                bar.refresh()

    async def run() -> Any:
        engine: Any = client  # the local engine counts its tokens as it makes them
        meter = None
        if not args.no_progress and hasattr(engine, "tokens_made"):
            meter = asyncio.create_task(show_engine_rate(engine))
        try:
            return await pipeline.arun(
                seeds,
                args.out,
                fresh=args.fresh,
                progress=on_progress,
                seed_report=report,
                accept_changes=args.accept_changes,
                retry_rejects=args.retry_rejects,
            )
        finally:
            if meter is not None:
                meter.cancel()
            await client.close()  # in the loop that used it (HTTP sessions, model threads)

    try:
        summary = asyncio.run(_interruptible(run()))
    finally:
        if bar is not None:
            bar.close()
    stopped = settings.limit is not None and summary.units_total >= settings.limit
    _print_seeds(
        report,
        stopped_at=settings.limit if stopped else None,
        skips_file=Path(args.out) / SKIPS_FILE,
    )
    print(str(summary))
    if isinstance(client, LocalEngine):
        print(
            f"local engine: {client.tokens_read} prompt tokens read, "
            f"{client.stats.reused_prompt_tokens} more found in its cache; "
            f"{client.tokens_made} tokens made"
        )
    return 4 if summary.units_unfinished else 0


#: Seconds between two refreshes of the local engine's rate on the progress bar.
ENGINE_RATE_EVERY = 2.0


class _RateMeter:
    """The rate of a growing count over about the last ``window`` seconds, from the
    readings taken by :meth:`rate` (at least two, the first one gives None)."""

    def __init__(self, read: typing.Callable[[], int], window: float = 10.0) -> None:
        self.read = read
        self.window = window
        self._readings: deque[tuple[float, int]] = deque()

    def rate(self, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        self._readings.append((now, self.read()))
        while len(self._readings) > 2 and now - self._readings[1][0] >= self.window:
            self._readings.popleft()
        (t0, n0), (t1, n1) = self._readings[0], self._readings[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None


#: Printed at the first Ctrl-C of a run.
STOPPING_NOTE = (
    "\nstopping: no new work; units in flight are dropped and redone on resume "
    "(Ctrl-C again quits at once)"
)


async def _interruptible(work: typing.Coroutine[Any, Any, _T]) -> _T:
    """Await ``work``; the first Ctrl-C (SIGINT) cancels it and raises KeyboardInterrupt
    once its clean-up has run (clients closed, a local batch ended at its next token);
    a second Ctrl-C ends the process at once with exit 130.

    Cancellation reaches the run only at its awaits, so no line of a record or progress
    file is cut short; the units in flight were never marked done, and resuming redoes
    them. Outside the main thread (no signal handlers there) ``work`` is just awaited.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    presses = 0

    def on_sigint() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            print(STOPPING_NOTE, file=sys.stderr, flush=True)
            task.cancel()
        else:
            print("\ninterrupted again: quitting now", file=sys.stderr, flush=True)
            os._exit(130)

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread; Windows
        return await task
    try:
        return await task
    except asyncio.CancelledError:
        if presses:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _print_seeds(report: Any, *, stopped_at: int | None, skips_file: Path | None) -> None:
    """The seed counts, then the skip reasons by file (stderr)."""
    line = f"seeds: {report.summary()}"
    if stopped_at is not None:
        line += f" (reading stopped at --limit {stopped_at} units)"
    if report.skipped and skips_file is not None:
        line += f"; skips listed in {skips_file}"
    print(line, file=sys.stderr)
    for text in report.files():
        print(f"  skipped {text}", file=sys.stderr)


def _generate_on_ray(
    args: argparse.Namespace, cfg: Any, skills: list[str] | None, settings: Any, seeds: Any
) -> int:
    from genteach.executors import run_on_ray
    from genteach.pipeline import RunSummary

    bar: Any = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=args.shards, unit="shard", file=sys.stderr)

    def on_shard(summary: RunSummary) -> None:
        if bar is not None:
            bar.update(1)
            bar.write(f"  {summary.out_dir.name}: {summary}")

    try:
        summary = run_on_ray(
            cfg,
            seeds,
            args.out,
            taxonomy=args.taxonomy,
            skills=skills,
            prompt_dirs=args.prompts,
            settings=settings,
            shards=args.shards,
            actors=args.actors,
            cpus_per_actor=args.cpus_per_actor,
            address=args.ray_address,
            fresh=args.fresh,
            on_shard=on_shard,
        )
    except Exception as exc:
        if type(exc).__module__.startswith("ray."):
            print(
                f"genteach: a shard failed: {str(exc).splitlines()[0]}\n"
                "finished units are saved; run the same command to resume",
                file=sys.stderr,
            )
            return 1
        raise
    finally:
        if bar is not None:
            bar.close()
    print(f"seeds: {summary.seeds}", file=sys.stderr)
    print(str(summary))
    return 0


class _NamedOnly:
    """The teacher of a dry run: it has a name (for prices) and is never called."""

    def __init__(self, name: str) -> None:
        self.model_name = name

    async def complete(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a dry run calls no model")

    async def close(self) -> None:
        return None


def _taxonomy_list(args: argparse.Namespace) -> int:
    from genteach.taxonomy import load_taxonomy

    tax = load_taxonomy(args.taxonomy)
    if args.skill:
        skill = tax.skill(args.skill, ready=False)
        print(f"{skill.id}: {skill.name} [{skill.status}] weight {skill.weight:g}")
        print(f"  {skill.description}")
        for title, items in (
            ("transformers", skill.transformers),
            ("task types", skill.task_types),
            ("refinement goals", skill.refinement_goals),
        ):
            if items:
                print(f"\n{title} ({len(items)}):")
                for it in items:
                    origin = getattr(it, "origin", "")
                    mark = " (genteach)" if origin == "genteach" else ""
                    print(f"  - {it.id}: {it.name}{mark} - {it.description}")
        if skill.pipeline:
            print("\npipeline: " + " -> ".join(st.flow for st in skill.pipeline))
        return 0
    print(
        f"{tax.name}: {len(tax.skills)} skills, "
        f"{tax.sub_category_count} sub-categories ({tax.source})"
    )
    for sid, s in tax.skills.items():
        print(
            f"  {sid:22} {s.name:38} {s.status:8} weight {s.weight:<5g}"
            f" {len(s.transformers):>2} transformers {len(s.task_types):>3} task types"
        )
    return 0


def _taxonomy_validate(args: argparse.Namespace) -> int:
    from genteach.flows import FlowBuild, build_flows
    from genteach.keys import KeyKinds
    from genteach.preflight import check_templates, naming_file
    from genteach.prompts import PromptLibrary
    from genteach.taxonomy import load_taxonomy

    tax = load_taxonomy(args.path)
    prompts = PromptLibrary(args.prompts)
    ready = [s for s in tax.skills.values() if s.status == "ready"]
    source = tax.source or tax.name
    with naming_file(source):
        build = FlowBuild(prompts=prompts, keys=KeyKinds(tax.key_classes()))
        built = [(s, build_flows(s, build, source=source)) for s in ready]
    problems = check_templates(built, prompts, source)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    print(
        f"{tax.source}: valid ({len(tax.skills)} skills, {len(tax.ready_skills())} ready, "
        f"{tax.sub_category_count} sub-categories)"
    )
    return 0


def _taxonomy_docs(args: argparse.Namespace) -> int:
    from genteach.pipeline import RECORDS_FILE
    from genteach.records import read_records
    from genteach.skill_docs import write_skill_docs
    from genteach.taxonomy import load_taxonomy

    tax = load_taxonomy(args.taxonomy)
    records = []
    for name in args.examples:
        path = Path(name)
        path = path / RECORDS_FILE if path.is_dir() else path
        if not path.is_file():
            print(
                f"genteach taxonomy docs: --examples {name}: no such records file", file=sys.stderr
            )
            return 2
        records += read_records(path)
    written = write_skill_docs(tax, Path(args.out), records)
    print(f"wrote {len(written)} pages to {args.out} ({len(records)} example records read)")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from genteach.pipeline import RECORDS_FILE, REJECTS_FILE
    from genteach.records import read_jsonl

    path = Path(args.path)
    if path.is_dir():
        path = path / (REJECTS_FILE if args.rejects else RECORDS_FILE)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    rows = list(read_jsonl(path))
    if args.rejects:
        _show_rejects(path, rows, args)
        return 0
    if args.skill:
        rows = [r for r in rows if r["meta"]["skill"] == args.skill]
    if args.id:
        rows = [r for r in rows if r["id"] == args.id]
    counts = Counter((r["meta"]["skill"], r["meta"]["sub_category"]) for r in rows)
    print(f"{len(rows)} records in {path}")
    for (skill, sub), n in sorted(counts.items()):
        print(f"  {skill:18} {sub:36} {n}")
    for r in rows[: args.n]:
        m = r["meta"]
        print("\n" + "=" * 78)
        print(
            f"id {r['id']}  skill {m['skill']}  sub-category {m['sub_category']}  "
            f"seed {m['seed_id']}"
        )
        print(f"agents: {' -> '.join(m['agents'])}")
        if m.get("parent_task_id"):
            print(
                f"refined (round {m['refinement_round']}, goal {m['refinement_goal']}) "
                f"from task {m['parent_task_id']}"
            )
        print(f"teacher {m['teacher']}; usage {json.dumps(m['usage'])}")
        for msg in r["messages"]:
            print(f"--- {msg['role']}")
            print(msg["content"])
    return 0


#: The characters of one turn that ``inspect --rejects`` shows (an episode's opening holds
#: the format's instructions and the tables: long, and the same in every episode).
_REJECT_TURN_CHARS = 1500


def _show_rejects(path: Path, rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Print the rejects of ``rows`` counted by reason, then the whole transcript of the
    first ``args.n`` filtered episodes (rejects that carry ``messages``): each turn's role,
    whether it is trained, and its text cut to :data:`_REJECT_TURN_CHARS`."""
    from genteach.models.base import is_trained
    from genteach.runtime.executor import clip

    if args.skill:
        rows = [r for r in rows if r.get("skill") == args.skill]
    reasons = Counter(f"{r['stage']}/{r['agent']}: {r['reason'][:80]}" for r in rows)
    print(f"{len(rows)} rejects in {path}")
    for reason, n in reasons.most_common(20):
        print(f"  {n:5}  {reason}")
    episodes = [r for r in rows if r.get("messages")]
    if episodes:
        print(f"{len(episodes)} of them filtered episodes; showing {min(args.n, len(episodes))}")
    for r in episodes[: args.n]:
        print("\n" + "=" * 78)
        print(f"unit {r['unit']}  stage {r['stage']}  agent {r['agent']}")
        print(f"reason: {r['reason']}")
        for msg in r["messages"]:
            print(f"--- {msg['role']} ({'trained' if is_trained(msg) else 'untrained'})")
            print(clip(msg["content"], _REJECT_TURN_CHARS))
        raw = str(r.get("raw") or "").strip()
        if raw and all(raw != m["content"].strip() for m in r["messages"]):
            print("--- raw: the model's last output, not in the transcript as written")
            print(clip(raw, _REJECT_TURN_CHARS))


def _export(args: argparse.Namespace) -> int:
    from genteach.export import CARD_FILE, DATA_DIR, collect_records, export_dataset, push_export
    from genteach.tokens import tokenizer_for

    rs = collect_records(args.inputs)
    dsd = export_dataset(
        rs,
        args.out,
        messages_format="json" if args.json_messages else "list",
        include_meta=not args.no_meta,
        include_conversations=not args.no_conversations,
        rows_per_shard=args.rows_per_shard,
        max_shard_size=args.max_shard_size,
        name=args.name,
        tokenizer=tokenizer_for(args.tokenizer),
        overwrite=args.overwrite,
    )
    out = Path(args.out)
    dup = "duplicate" if rs.duplicates == 1 else "duplicates"
    print(
        f"{rs.total} records in {len(dsd)} splits ({rs.duplicates} {dup} dropped, "
        f"{rs.rejects} rejects not included"
        + (f", {rs.held_out} held out for evaluation" if rs.held_out else "")
        + f") from {len(rs.sources)} record files"
    )
    for split, ds in dsd.items():
        shards = len(list((out / DATA_DIR).glob(f"{split}-*.parquet")))
        print(f"  {split:22} {len(ds):8} records  {shards} shard{'s' if shards > 1 else ''}")
    print(f"parquet: {out / DATA_DIR}/\ncard: {out / CARD_FILE}")
    if args.push_to_hub:
        url = push_export(out, args.push_to_hub, private=True if args.private else None)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub} ({url})")
    return 0


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


__all__ = ["main"]
