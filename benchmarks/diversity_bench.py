"""Diversity of generated data: distinct-n and repeated opening stems.

Two sets of texts are measured, per skill and overall:

- **instructions** as the instruction and editor agents wrote them: the string values of the
  fields ``instruction``, ``request``, ``question`` and ``stem`` (at any depth) of every JSON
  object answer in the run's ``cache.sqlite``. Per skill: the instructions that appear verbatim
  in a user message of one of that skill's records (the cache does not say which agent asked).
- **student messages**: the first user message of each record (what the student sees), and its
  system message where present (share empty or absent, distinct count).

Metrics: distinct-1/2/3 (unique n-grams / all n-grams within each text, lowercased word
tokens, a CJK character being one word); opening stems (the first 3 words): the share of the
most common one, the share of the top 5, distinct stems / texts, the top 5 with counts.
distinct-n falls as a set grows: compare runs of the same size only.

Subcommands:
  measure        one or more run output folders (each apart, or pooled with --pool).
  run-scripted   N units of the scripted teacher (tests/scripted_teacher.py's Teacher) on
                 deterministic text seeds cut from --sources, then measure.
  run-embedded   ``genteach generate`` with the embedded local model, then measure.

Usage:
    python benchmarks/diversity_bench.py run-scripted --out /work/bench/diversity-before-scripted \\
        --limit 200 --json benchmarks/results/diversity_before_scripted.json --md /tmp/scripted.md
    python benchmarks/diversity_bench.py run-embedded --out /work/bench/diversity-before-embedded \\
        --limit 20 --json benchmarks/results/diversity_before_embedded.json --md /tmp/embedded.md
    python benchmarks/diversity_bench.py measure out/demo --md /tmp/demo.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

# The metrics live in genteach.diversity (behind `genteach diversity` too); their names stay
# importable from this script.
from genteach.diversity import (  # noqa: F401
    DRAWS,
    STEM_WORDS,
    TOP,
    distinct_n,
    sampled_stats,
    stem,
    stem_stats,
    text_stats,
    words,
)

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
DEFAULT_SOURCES = [REPO / "examples" / "seeds", Path("/work/shared/seeds")]
#: Fields of an agent's JSON answer that hold an instruction (at any depth).
INSTRUCTION_KEYS = frozenset({"instruction", "request", "question", "stem"})
OVERALL = "overall"
#: Settings of the README demo, used by both runs.
OVERRIDES = {"tasks_per_type": 1, "suggestions": 1}
#: Shortest text seed cut from the sources (characters); paragraphs are joined up to it.
SEED_CHARS = 300
TEXT_SUFFIXES = {".txt", ".md"}


# --------------------------------------------------------------------------- instructions
def instruction_strings(obj: Any) -> Iterator[str]:
    """The non-empty string values of :data:`INSTRUCTION_KEYS` anywhere in a JSON value."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in INSTRUCTION_KEYS and isinstance(value, str) and value.strip():
                yield value.strip()
            else:
                yield from instruction_strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from instruction_strings(value)


# --------------------------------------------------------------------------- reading a run
def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.endswith("\n") and line.strip():  # a torn last line is skipped
                rows.append(json.loads(line))
    return rows


def cached_instructions(path: Path) -> tuple[list[str], int, int]:
    """Instructions in the JSON answers of a response cache.

    Returns:
        (instructions, answers read, answers that were JSON objects).
    """
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        texts = [str(t) for (t,) in db.execute("SELECT text FROM responses ORDER BY created, key")]
    finally:
        db.close()
    found: list[str] = []
    objects = 0
    for text in texts:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            objects += 1
            found.extend(instruction_strings(obj))
    return found, len(texts), objects


def _first(messages: list[dict[str, Any]], role: str) -> str | None:
    for m in messages:
        if m.get("role") == role:
            return str(m.get("content") or "")
    return None


def measure(folders: Sequence[Path], sample: int | None = None) -> dict[str, Any]:
    """The diversity metrics of one run, pooled over ``folders`` (see the module docstring);
    ``sample``: see :func:`text_stats`."""
    records: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    instructions: list[str] = []
    answers = objects = 0
    caches = 0
    for folder in folders:
        if not (folder / "records.jsonl").exists() and not (folder / "rejects.jsonl").exists():
            raise SystemExit(f"{folder}: no records.jsonl or rejects.jsonl (not a run folder)")
        records += _jsonl(folder / "records.jsonl")
        rejects += _jsonl(folder / "rejects.jsonl")
        if (folder / "cache.sqlite").exists():
            caches += 1
            found, n_answers, n_objects = cached_instructions(folder / "cache.sqlite")
            instructions += found
            answers += n_answers
            objects += n_objects
    skills = sorted({str(r["meta"]["skill"]) for r in records} | {str(r["skill"]) for r in rejects})
    user_texts: dict[str, list[str]] = {s: [] for s in skills}
    system: dict[str, list[str]] = {s: [] for s in skills}
    all_user: dict[str, list[str]] = {s: [] for s in skills}
    for r in records:
        skill = str(r["meta"]["skill"])
        msgs = r["messages"]
        first_user = _first(msgs, "user")
        if first_user is not None:
            user_texts[skill].append(first_user)
        first = msgs[0] if msgs else {}
        system[skill].append(
            str(first.get("content") or "") if first.get("role") == "system" else ""
        )
        all_user[skill] += [str(m.get("content") or "") for m in msgs if m.get("role") == "user"]
    placed: dict[str, list[str]] = {s: [] for s in skills}
    unplaced = 0
    for text in instructions:
        hit = [s for s in skills if any(text in u for u in all_user[s])]
        for s in hit:
            placed[s].append(text)
        unplaced += not hit

    def scope(users: list[str], systems: list[str], instr: list[str]) -> dict[str, Any]:
        sys_counts = Counter(s for s in systems if s.strip())
        empty = sum(1 for s in systems if not s.strip())
        return {
            "records": len(systems),
            "instructions": text_stats(instr, sample),
            "student": text_stats(users, sample),
            "system": {
                "empty_or_absent_share": empty / len(systems) if systems else None,
                "distinct": len(sys_counts),
                "top1_share": (sys_counts.most_common(1)[0][1] / len(systems))
                if sys_counts
                else None,
            },
        }

    every = [s for k in skills for s in system[k]]
    out: dict[str, Any] = {
        "folders": [str(f) for f in folders],
        "records": len(records),
        "rejects": len(rejects),
        "rejects_by_skill": dict(Counter(str(r["skill"]) for r in rejects)),
        "cache": {
            "files": caches,
            "answers": answers,
            "json_objects": objects,
            "instructions": len(instructions),
            "instructions_not_in_a_record": unplaced,
        },
        "scopes": {
            OVERALL: scope([u for k in skills for u in user_texts[k]], every, instructions),
            **{k: scope(user_texts[k], system[k], placed[k]) for k in skills},
        },
    }
    return out


# --------------------------------------------------------------------------- report
def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def markdown(result: dict[str, Any], title: str = "") -> str:
    """Markdown tables of a :func:`measure` result."""
    scopes: dict[str, Any] = result["scopes"]
    c = result["cache"]
    lines = [f"#### {title}", ""] if title else []
    lines += [
        f"{result['records']} records, {result['rejects']} rejects; the cache held "
        f"{c['answers']} answers, {c['json_objects']} JSON objects, {c['instructions']} "
        f"instructions ({c['instructions_not_in_a_record']} in no record).",
        "",
        "Instructions (as the instruction and editor agents wrote them):",
        "",
        "| scope | instructions | distinct-1 | distinct-2 | distinct-3 | distinct stems / n "
        "| top stem | top-5 stems |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in scopes.items():
        i = s["instructions"]
        st = i["stems"]
        lines.append(
            f"| {name} | {i['n']} | {_f(i['distinct_1'])} | {_f(i['distinct_2'])} "
            f"| {_f(i['distinct_3'])} | {_f(st['distinct_ratio'])} | {_pct(st['top1_share'])} "
            f"| {_pct(st['top5_share'])} |"
        )
    lines += [
        "",
        "Student messages (first user message of each record; system message):",
        "",
        "| scope | records | distinct-1 | distinct-2 | distinct-3 | distinct first-line shapes / n "
        "| top shape | top-5 shapes | no system msg | distinct system msgs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in scopes.items():
        u = s["student"]
        st = u["stems"]
        sy = s["system"]
        lines.append(
            f"| {name} | {s['records']} | {_f(u['distinct_1'])} | {_f(u['distinct_2'])} "
            f"| {_f(u['distinct_3'])} | {_f(st['distinct_ratio'])} | {_pct(st['top1_share'])} "
            f"| {_pct(st['top5_share'])} | {_pct(sy['empty_or_absent_share'])} | {sy['distinct']} |"
        )
    lines += ["", "Top opening stems (first 3 words; count):", ""]
    for name, s in scopes.items():
        for label, key in (("instructions", "instructions"), ("student", "student")):
            top = s[key]["stems"]["top"]
            if top:
                shown = "; ".join(f"`{t}` {n}" for t, n in top)
                lines.append(f"- {name}, {label}: {shown}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- environment
def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


#: What generates the data: the package, its prompts and taxonomies, the scripted teacher.
_CODE_PATHS = ("src", "prompts", "taxonomies", "tests/scripted_teacher.py")


def environment() -> dict[str, Any]:
    """Machine and versions, for the results file."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import genteach

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "genteach": genteach.__version__,
        "genteach_path": str(Path(genteach.__file__).parent),
        "commit": _git("rev-parse", "--short", "HEAD"),
        # The last commit that changed what generates the data (HEAD may add only benchmarks).
        "code_commit": _git("log", "-1", "--format=%h", "--", *_CODE_PATHS),
        "code_dirty": bool(_git("status", "--porcelain", "--untracked-files=no", *_CODE_PATHS)),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "loadavg_start": os.getloadavg(),
    }


def _seed_set_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- seeds
def _source_files(sources: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for src in sources:
        if not src.is_dir():
            raise SystemExit(f"--sources: {src} is not a folder")
        files += sorted(p for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
    return files


def build_scripted_seeds(sources: Sequence[Path], dest: Path) -> int:
    """Cut the sources' text files into paragraph seeds of at least :data:`SEED_CHARS`
    characters (consecutive paragraphs joined), copy code files whole; write them to
    ``dest`` as ``NNNN.txt`` / ``NNNN<suffix>`` in a stable order. Returns the file count."""
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in _source_files(sources):
        raw = path.read_text(encoding="utf-8")
        if path.suffix.lower() not in TEXT_SUFFIXES:
            (dest / f"{n:04d}{path.suffix}").write_text(raw, encoding="utf-8")
            n += 1
            continue
        paras = [p.strip() for p in re.split(r"\n\s*\n", raw) if p.strip()]
        chunk: list[str] = []
        for para in paras:
            chunk.append(para)
            if sum(len(c) for c in chunk) >= SEED_CHARS:
                (dest / f"{n:04d}.txt").write_text("\n\n".join(chunk) + "\n", encoding="utf-8")
                n += 1
                chunk = []
        if chunk and sum(len(c) for c in chunk) >= SEED_CHARS // 2:
            (dest / f"{n:04d}.txt").write_text("\n\n".join(chunk) + "\n", encoding="utf-8")
            n += 1
    return n


def build_embedded_seeds(sources: Sequence[Path], dest: Path) -> int:
    """Copy the sources' files whole into ``dest``, named so that they keep the order of
    ``sources`` (each folder's files sorted by name). Returns the file count."""
    dest.mkdir(parents=True, exist_ok=True)
    files = _source_files(sources)
    for i, path in enumerate(files):
        shutil.copyfile(path, dest / f"{i:02d}_{path.name}")
    return len(files)


# --------------------------------------------------------------------------- runs
def _fresh_dir(path: Path) -> Path:
    """``path`` emptied (the seeds are rebuilt the same way on every run)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _finish(result: dict[str, Any], args: argparse.Namespace, title: str) -> None:
    text = markdown(result["measure"], title)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(text)


def cmd_measure(args: argparse.Namespace) -> int:
    folders: list[Path] = args.folders
    sample = args.sample
    runs = [measure(folders, sample)] if args.pool else [measure([f], sample) for f in folders]
    results = [{"environment": environment(), "measure": r} for r in runs]
    text = "\n".join(markdown(r["measure"], ", ".join(r["measure"]["folders"])) for r in results)
    print(text)
    if args.json:
        args.json.write_text(
            json.dumps(results[0] if len(results) == 1 else results, indent=2, ensure_ascii=False)
            + "\n"
        )
    if args.md:
        args.md.write_text(text)
    return 0


def cmd_run_scripted(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(TESTS))
    from genteach import Pipeline, RunSettings, ScriptedModel
    from genteach.seeds import iter_seeds
    from scripted_teacher import Teacher  # the checked-out version's router

    seeds_dir = _fresh_dir(args.out / "seeds")
    files = build_scripted_seeds(args.sources, seeds_dir)
    seeds = list(iter_seeds(seeds_dir, dedupe=True))
    pipe = Pipeline(
        ScriptedModel(Teacher(), name="scripted-teacher"),
        settings=RunSettings(seed=args.seed, limit=args.limit, overrides=dict(OVERRIDES)),
    )
    units = pipe.units(seeds)
    if len(units) < args.limit:
        print(
            f"run-scripted: the sources give only {len(units)} units, fewer than "
            f"--limit {args.limit}; add folders with --sources",
            file=sys.stderr,
        )
        return 2
    env = environment()
    t0 = time.perf_counter()
    summary = pipe.run(seeds, args.out, fresh=True)
    wall = time.perf_counter() - t0
    result = {
        "run": {
            "kind": "scripted",
            "command": shlex.join([Path(sys.executable).name, *sys.argv]),
            "teacher": "tests/scripted_teacher.py Teacher via genteach.ScriptedModel",
            "seed_files": files,
            "seeds": len(seeds),
            "seed_set_sha256": _seed_set_hash(seeds_dir),
            "units": summary.units_done,
            "units_by_skill": dict(Counter(s.id for s, _ in units)),
            "settings": {"seed": args.seed, "limit": args.limit, "overrides": OVERRIDES},
            "model_calls": summary.usage.calls,
            "wall_s": round(wall, 1),
            "out": str(args.out),
        },
        "environment": env,
        "measure": measure([args.out]),
    }
    _finish(result, args, f"scripted teacher, {summary.units_done} units")
    return 0


#: Seconds a call of the embedded model may take. The CLI's default (600 s) is too short on a
#: busy 2-core machine: a batch of 8 answers of up to 1024 tokens runs past it, the calls are
#: retried while the backend still computes the timed-out batch, and the run makes no progress.
EMBEDDED_TIMEOUT = 86400.0
#: Endpoint settings dropped from the child's environment, so it uses the embedded model.
_ENDPOINT_ENV = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL", "GENTEACH_MODEL")


def cmd_run_embedded(args: argparse.Namespace) -> int:
    # The seeds stay in OUT/seeds, so that rerunning the command resumes the run.
    seeds_dir = _fresh_dir(args.out / "seeds")
    files = build_embedded_seeds(args.sources, seeds_dir)
    seed_hash = _seed_set_hash(seeds_dir)
    cmd = ["genteach", "generate", "--seeds", str(seeds_dir), "--out", str(args.out)]
    cmd += ["--limit", str(args.limit)]
    cmd += [x for k, v in OVERRIDES.items() for x in ("--set", f"{k}={v}")]
    cmd += ["--seed", str(args.seed), "--timeout", f"{args.timeout:g}", "--no-progress"]
    if args.fresh:
        cmd.append("--fresh")
    env = {k: v for k, v in os.environ.items() if k not in _ENDPOINT_ENV}
    src = str(REPO / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    print("running:", shlex.join(cmd), flush=True)
    started = environment()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *cmd], env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"run-embedded: genteach generate exited {proc.returncode}", file=sys.stderr)
        return proc.returncode
    progress = _jsonl(args.out / "progress.jsonl")
    run_json = json.loads((args.out / "run.json").read_text())
    result = {
        "run": {
            "kind": "embedded",
            "command": shlex.join([Path(sys.executable).name, *sys.argv]),
            "generate_command": shlex.join(cmd),
            "teacher": run_json.get("teacher"),
            "seed_files": files,
            "seed_set_sha256": seed_hash,
            "units": len(progress),
            "units_by_skill": dict(Counter(str(p["unit"]).split("/")[0] for p in progress)),
            "settings": {"seed": args.seed, "limit": args.limit, "overrides": OVERRIDES},
            "model_calls": sum(int(p.get("usage", {}).get("calls", 0)) for p in progress),
            "wall_s": round(wall, 1),
            "out": str(args.out),
        },
        "environment": started,
        "measure": measure([args.out]),
    }
    _finish(result, args, f"embedded model, {len(progress)} units")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="measure run output folders")
    m.add_argument("folders", nargs="+", type=Path)
    m.add_argument("--pool", action="store_true", help="measure the folders as one run")
    m.add_argument(
        "--sample",
        type=int,
        help="also give each metric as its mean over random subsets of this many texts "
        "(to compare runs of different sizes)",
    )
    m.add_argument("--json", type=Path)
    m.add_argument("--md", type=Path, help="write the Markdown tables here too")
    m.set_defaults(func=cmd_measure)
    for name, func, limit in (
        ("run-scripted", cmd_run_scripted, 200),
        ("run-embedded", cmd_run_embedded, 20),
    ):
        p = sub.add_parser(name)
        p.add_argument("--out", type=Path, required=True, help="the run's output folder")
        p.add_argument("--limit", type=int, default=limit, help=f"units (default {limit})")
        p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
        p.add_argument(
            "--sources",
            type=Path,
            nargs="+",
            default=[p for p in DEFAULT_SOURCES if p.is_dir()],
            help="folders the seeds are made from (default: examples/seeds /work/shared/seeds)",
        )
        p.add_argument("--json", type=Path)
        p.add_argument("--md", type=Path, help="write the Markdown tables here too")
        p.set_defaults(func=func)
        if name == "run-embedded":
            p.add_argument("--fresh", action="store_true", help="pass --fresh to generate")
            p.add_argument(
                "--timeout",
                type=float,
                default=EMBEDDED_TIMEOUT,
                help=f"generate's --timeout, seconds per call (default {EMBEDDED_TIMEOUT:g})",
            )
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
