"""The ``genteach`` command: generate, taxonomy, inspect, export, train."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genteach import __version__
from genteach.agents.base import REPAIR_STYLES
from genteach.models.config import LOCAL_REPAIR_STYLE, LOCAL_REPAIR_TEMPERATURE

if TYPE_CHECKING:
    from genteach.pipeline import RunSettings

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
    args = parser.parse_args(args_list)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished units are saved; run the same command to resume",
            file=sys.stderr,
        )
        return 130
    except (ValueError, FileNotFoundError, ImportError) as exc:
        # TaxonomyError, PromptError (ValueError/Exception subclasses) and bad paths: one line.
        print(f"genteach: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
        type=int,
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
    g.add_argument("--model", help="teacher model name (env GENTEACH_MODEL / OPENAI_MODEL)")
    g.add_argument("--base-url", help="OpenAI-compatible endpoint (env OPENAI_BASE_URL)")
    g.add_argument("--api-key", help="API key (env OPENAI_API_KEY; prefer the env variable)")
    g.add_argument(
        "--structured-output", action="store_true", help="the endpoint supports JSON-schema output"
    )
    g.add_argument(
        "--transport",
        choices=("aiohttp", "openai-sdk"),
        help="HTTP client for endpoints: aiohttp (default; built for high concurrency) or "
        "openai-sdk (env GENTEACH_TRANSPORT)",
    )
    g.add_argument(
        "--local",
        action="store_true",
        help="use the embedded local model even if an endpoint is set",
    )
    g.add_argument("--local-model", help="HF folder or model id for the embedded backend")
    g.add_argument(
        "--temperature", type=float, help="sampling temperature (default: the backend's)"
    )
    g.add_argument("--max-tokens", type=int, help="max tokens per model answer")
    g.add_argument(
        "--repair-temperature",
        type=float,
        help="temperature of the calls asking to repair a malformed answer (default: "
        f"--temperature; {LOCAL_REPAIR_TEMPERATURE} on the embedded model, whose nearly "
        "greedy sampling otherwise repeats the answer it was asked to fix)",
    )
    g.add_argument(
        "--repair-style",
        choices=REPAIR_STYLES,
        help="repair a malformed answer by showing it with the reason (show, the default) or "
        f"by asking again with a note of the reason ({LOCAL_REPAIR_STYLE}, the default on the "
        "embedded model, which copies an answer shown to it)",
    )
    g.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="most model calls in flight; the adaptive limit's ceiling (default 8)",
    )
    g.add_argument(
        "--no-adaptive",
        action="store_true",
        help="keep concurrency fixed instead of halving it on 429/503/timeouts",
    )
    g.add_argument("--rpm", type=float, help="cap requests per minute")
    g.add_argument("--tpm", type=float, help="cap tokens (prompt + completion) per minute")
    g.add_argument(
        "--timeout", type=float, default=600.0, help="seconds one call may take (default 600)"
    )
    g.add_argument(
        "--max-retries", type=int, default=5, help="retries of a transient error (default 5)"
    )
    g.add_argument(
        "--backoff", type=float, default=1.0, help="first retry delay in seconds (default 1)"
    )
    g.add_argument(
        "--no-cache",
        action="store_true",
        help="do not keep model answers in OUT/cache.sqlite (resume then re-buys them)",
    )
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
        "--seed", type=int, default=0, help="run seed: same seed, same choices (default 0)"
    )
    g.add_argument("--limit", type=int, help="process at most N (skill, seed) units")
    g.add_argument(
        "--skills-per-seed", type=int, help="draw N skills per seed by weight (default: all)"
    )
    g.add_argument(
        "--max-parse-retries", type=int, default=2, help="repairs asked for a malformed answer"
    )
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a pipeline setting in every stage that has it, e.g. --set suggestions=1 "
        "--set tasks_per_type=1 (repeatable)",
    )
    g.add_argument(
        "--fresh", action="store_true", help="discard earlier output in --out instead of resuming"
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
        "--shards", type=int, default=8, help="ray: seed shards, fixed per --out (default 8)"
    )
    g.add_argument(
        "--actors", type=int, default=2, help="ray: shards run at once, one per actor (default 2)"
    )
    g.add_argument("--cpus-per-actor", type=float, default=1.0, help="ray: CPUs reserved per actor")
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

    i = sub.add_parser("inspect", help="show records and the agents that made them")
    i.add_argument("path", help="output folder or records .jsonl")
    i.add_argument("-n", type=int, default=3, help="records to show (default 3)")
    i.add_argument("--skill", help="only this skill")
    i.add_argument("--id", help="only the record with this id")
    i.add_argument("--rejects", action="store_true", help="show rejects instead of records")
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

    sub.add_parser("train", help="post-train a model on the pairs (see `genteach train --help`)")
    return p


def _run_settings(args: argparse.Namespace, *, uses_local: bool) -> RunSettings:
    """The run's settings from the command line; the embedded model repairs its own way
    (:data:`~genteach.models.config.LOCAL_REPAIR_STYLE`) unless told otherwise."""
    from genteach.pipeline import RunSettings

    repair_temperature = args.repair_temperature
    if repair_temperature is None and uses_local:
        repair_temperature = LOCAL_REPAIR_TEMPERATURE
    return RunSettings(
        seed=args.seed,
        concurrency=args.concurrency,
        adaptive=not args.no_adaptive,
        rpm=args.rpm,
        tpm=args.tpm,
        cache=not args.no_cache,
        max_parse_retries=args.max_parse_retries,
        max_retries=args.max_retries,
        timeout=args.timeout,
        backoff=args.backoff,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        repair_temperature=repair_temperature,
        repair_style=args.repair_style or (LOCAL_REPAIR_STYLE if uses_local else "show"),
        skills_per_seed=args.skills_per_seed,
        limit=args.limit,
        overrides=_overrides(args.set),
    )


def _generate(args: argparse.Namespace) -> int:
    from genteach.cost import PriceTable, format_cost
    from genteach.models.config import LOCAL_MODEL_WARNING, ModelConfig, build_client
    from genteach.pipeline import Pipeline, Progress
    from genteach.prompts import PromptLibrary
    from genteach.seeds import SeedReport, iter_seeds

    cfg = ModelConfig.from_env(
        model=args.model,
        base_url=args.base_url,
        api_key=args.api_key,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        structured_output=True if args.structured_output else None,
        local_model=args.local_model,
        local=True if args.local else None,
        transport=args.transport,
    )
    settings = _run_settings(args, uses_local=cfg.uses_local)
    skills = [s.strip() for s in args.skills.split(",")] if args.skills else None
    prompts = PromptLibrary(args.prompts)
    prices = PriceTable.load(args.prices)
    report = SeedReport()

    def seeds() -> Any:
        return iter_seeds(
            args.seeds,
            text_field=args.text_field,
            split=args.split,
            config=args.dataset_config,
            data_files=args.data_files or None,
            chunk_tokens=args.chunk_tokens,
            dedupe=True,
            report=report,
        )

    if args.dry_run:
        from genteach.estimate import estimate_run
        from genteach.models.config import DEFAULT_OPENAI_MODEL

        # No client is built: nothing is loaded or called. The teacher name prices it.
        name = cfg.model or (
            "local:qwen2.5-coder-0.5b-instruct" if cfg.uses_local else DEFAULT_OPENAI_MODEL
        )
        pipeline = Pipeline(
            _NamedOnly(name),
            taxonomy=args.taxonomy,
            skills=skills,
            prompts=prompts,
            settings=settings,
            prices=prices,
        )
        estimate = estimate_run(pipeline, seeds(), calibration=args.calibrate_from)
        print(f"seeds: {report.summary()}", file=sys.stderr)
        print(str(estimate))
        return 0

    if cfg.uses_local:
        print(LOCAL_MODEL_WARNING, file=sys.stderr)
    if args.executor == "ray":
        return _generate_on_ray(args, cfg, skills, settings, seeds())
    if (Path(args.out) / "ray.json").exists() and not args.fresh:
        raise ValueError(
            f"{args.out} holds a sharded Ray run: resume it with --executor ray, "
            "or use another output folder"
        )
    client = build_client(cfg)
    # Start-up objects (taxonomy, templates, SDKs) live for the whole run: keep the
    # garbage collector from walking them again and again while calls stream in.
    gc.collect()
    gc.freeze()
    pipeline = Pipeline(
        client,
        taxonomy=args.taxonomy,
        skills=skills,
        prompts=prompts,
        settings=settings,
        prices=prices,
    )
    print(
        f"teacher: {client.model_name}; skills: {', '.join(s.id for s in pipeline.skills)}",
        file=sys.stderr,
    )
    bar: Any = None

    def on_progress(p: Progress) -> None:
        nonlocal bar
        if args.no_progress:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=p.units_total, unit="unit", file=sys.stderr)
        if p.units_total is not None and bar.total != p.units_total:
            bar.total = p.units_total
        bar.n = p.units_done
        bar.set_postfix(
            records=p.records,
            rejects=p.rejects,
            calls=p.usage.calls,
            tokens=p.usage.total_tokens,
            cost=format_cost(p.cost),
            cached=p.cached_calls,
            conc=p.concurrency,
            refresh=False,
        )
        bar.refresh()

    async def run() -> Any:
        try:
            return await pipeline.arun(
                seeds(), args.out, fresh=args.fresh, progress=on_progress, seed_report=report
            )
        finally:
            await client.close()  # in the loop that used it (HTTP sessions, model threads)

    try:
        summary = asyncio.run(run())
    finally:
        if bar is not None:
            bar.close()
    print(f"seeds: {summary.seeds}", file=sys.stderr)
    print(str(summary))
    return 0


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


def _overrides(pairs: Sequence[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set suggestions=1")
        out[key.strip()] = yaml.safe_load(value)
    return out


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
    from genteach.flows import build_flows
    from genteach.prompts import PromptLibrary
    from genteach.taxonomy import load_taxonomy

    tax = load_taxonomy(args.path)
    prompts = PromptLibrary(args.prompts)
    problems: list[str] = []
    for skill in tax.skills.values():
        if skill.status != "ready":
            continue
        build_flows(skill, prompts)
        for kind, items in (("transformers", skill.transformers), ("task_types", skill.task_types)):
            for it in items:
                if it.agent == "identity":
                    continue
                name = skill.guidance(kind, it)  # type: ignore[arg-type]
                if not prompts.exists(name):
                    problems.append(
                        f"{tax.source}: skills.{skill.id}.{kind}.{it.id}: template {name} not found"
                    )
        for key, name in skill.prompts.items():
            if not prompts.exists(name):
                problems.append(
                    f"{tax.source}: skills.{skill.id}.prompts.{key}: template {name} not found"
                )
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    print(
        f"{tax.source}: valid ({len(tax.skills)} skills, {len(tax.ready_skills())} ready, "
        f"{tax.sub_category_count} sub-categories)"
    )
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
        reasons = Counter(f"{r['stage']}/{r['agent']}: {r['reason'][:80]}" for r in rows)
        print(f"{len(rows)} rejects in {path}")
        for reason, n in reasons.most_common(20):
            print(f"  {n:5}  {reason}")
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
        f"{rs.rejects} rejects not included) from {len(rs.sources)} record files"
    )
    for split, ds in dsd.items():
        shards = len(list((out / DATA_DIR).glob(f"{split}-*.parquet")))
        print(f"  {split:22} {len(ds):8} records  {shards} shard{'s' if shards > 1 else ''}")
    print(f"parquet: {out / DATA_DIR}/\ncard: {out / CARD_FILE}")
    if args.push_to_hub:
        url = push_export(out, args.push_to_hub, private=True if args.private else None)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub} ({url})")
    return 0


__all__ = ["main"]
