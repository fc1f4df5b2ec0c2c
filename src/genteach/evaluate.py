"""``genteach eval``: Orca-Bench-style evaluation of student models on held-out records.

``genteach eval split RUN --per-skill N`` holds out N records per skill of a run (seeded,
stratified by sub-category) in ``RUN/eval/split.json`` and ``RUN/eval/heldout.jsonl``;
training's loader (:func:`genteach.train.data.load_source`) leaves those ids out.

``genteach eval run RUN --student NAME=SPEC`` asks each student to answer the conversation
up to the judged assistant turn, has the judge (:mod:`genteach.judge`) score the student's
answer and the teacher's (the record's) with the same rubric, and reports per skill
``10 x sum(student scores) / sum(teacher scores)`` (AgentInstruct's Orca-Bench score): the
teacher is the yardstick, so 10 means "as good as the teacher, in the judge's opinion".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from genteach.heldout import EVAL_DIR, SPLIT_FILE, held_out_ids, split_file_for, split_path
from genteach.judge import (
    DEFAULT_THRESHOLD,
    JudgeAgent,
    judge_one,
    last_assistant_turn,
    load_records,
    run_pool,
)
from genteach.models.base import (
    FatalModelError,
    Message,
    ModelClient,
    ModelError,
    ModelRequest,
    OutageError,
)
from genteach.models.stack import CallSettings, ModelStack
from genteach.prompts import PromptLibrary
from genteach.records import JsonlWriter, Record, read_jsonl, read_records

if TYPE_CHECKING:
    from genteach.models.config import ModelConfig

HELDOUT_FILE = "heldout.jsonl"
ANSWERS_FILE = "answers.jsonl"
SCORES_FILE = "scores.jsonl"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
JUDGE_CACHE = "judge_cache.sqlite"
STUDENT_CACHE = "cache.sqlite"
TEACHER = "teacher"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# -- the split ------------------------------------------------------------------------------
class Split(BaseModel):
    """The held-out records of a run (``RUN/eval/split.json``).

    Attributes:
        seed / per_skill: how the split was drawn.
        ids: the held-out record ids (training leaves them out).
        counts: per skill, ``held_out`` and ``total`` records.
    """

    seed: int
    per_skill: int
    ids: list[str]
    counts: dict[str, dict[str, int]]
    sources: list[str] = Field(default_factory=list)
    created_at: str = Field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )


def make_split(
    records: Sequence[Record], per_skill: int, *, seed: int = 0, skills: Sequence[str] | None = None
) -> tuple[Split, list[Record]]:
    """Draw ``per_skill`` records per skill (all of them when a skill has fewer). Pure.

    Within a skill the draw goes round the sub-categories (in a seeded order), taking one
    seeded-random record of each in turn, so small sub-categories are represented. The same
    records, ``per_skill`` and ``seed`` give the same split.

    Raises:
        ValueError: ``per_skill`` < 1, no records, or a skill in ``skills`` has none.
    """
    if per_skill < 1:
        raise ValueError(f"--per-skill {per_skill}: must be at least 1")
    if not records:
        raise ValueError("no records to hold out")
    by_skill: dict[str, dict[str, list[Record]]] = {}
    for r in records:
        by_skill.setdefault(r.meta.skill, {}).setdefault(r.meta.sub_category, []).append(r)
    wanted = sorted(by_skill) if skills is None else list(skills)
    check_skills(wanted, by_skill)
    held: list[Record] = []
    counts: dict[str, dict[str, int]] = {}
    for skill in wanted:
        rng = random.Random(f"{seed}:{skill}")
        groups = []
        for sub in sorted(by_skill[skill]):
            group = sorted(by_skill[skill][sub], key=lambda r: r.id)
            rng.shuffle(group)
            groups.append(group)
        rng.shuffle(groups)
        total = sum(len(g) for g in groups)
        take: list[Record] = []
        while len(take) < min(per_skill, total):
            for g in groups:
                if g and len(take) < per_skill:
                    take.append(g.pop())
        held += take
        counts[skill] = {"held_out": len(take), "total": total}
    split = Split(seed=seed, per_skill=per_skill, ids=[r.id for r in held], counts=counts)
    return split, held


def check_skills(wanted: Iterable[str], have: Iterable[str]) -> None:
    """Raise a one-line ValueError naming the skills of ``wanted`` not in ``have``."""
    known = set(have)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ValueError(
            f"unknown skill {', '.join(unknown)} "
            f"(skills here: {', '.join(sorted(known)) or 'none'})"
        )


def write_split(
    run: str | Path,
    per_skill: int,
    *,
    seed: int = 0,
    skills: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Split:
    """Hold out records of the run folder ``run``: write ``RUN/eval/split.json`` and
    ``RUN/eval/heldout.jsonl``.

    Raises:
        ValueError: ``run`` is not a folder, a split exists (and not ``overwrite``), or see
            :func:`make_split`.
    """
    folder = Path(run)
    if not folder.is_dir():
        raise ValueError(f"{folder}: expected a run folder (the split is written inside it)")
    path = split_path(folder)
    if path.exists() and not overwrite:
        raise ValueError(f"{path} exists: training already leaves it out; pass --overwrite")
    records = load_records([folder])
    if not records:
        raise ValueError(f"{folder}: the run has no records to hold out")
    split, held = make_split(records, per_skill, seed=seed, skills=skills)
    split.sources = [str(folder)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / (HELDOUT_FILE + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in held:
            fh.write(r.model_dump_json() + "\n")
    tmp.replace(path.parent / HELDOUT_FILE)
    path.write_text(split.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return split


def read_split(run: str | Path) -> tuple[Split, list[Record]]:
    """The split of a run and its held-out records.

    Raises:
        ValueError: no split yet (the message says how to make one).
    """
    path = split_path(run)
    if not path.is_file():
        raise ValueError(
            f"{run}: no split yet ({path}); run `genteach eval split {run} --per-skill N` first"
        )
    split = Split.model_validate_json(path.read_text(encoding="utf-8"))
    return split, read_records(path.parent / HELDOUT_FILE)


# -- students ---------------------------------------------------------------------------------
def parse_student(text: str) -> tuple[str, ModelConfig]:
    """``NAME=SPEC`` -> (name, model settings). SPEC is ``local`` (the embedded default
    model), ``local:PATH`` (a local HF folder or .gguf, or a shipped model's name) or
    ``URL#MODEL`` (an OpenAI-compatible endpoint; the key comes from ``OPENAI_API_KEY``,
    else none).

    Raises:
        ValueError: a malformed spec, or a reserved or odd name.
    """
    from genteach.models.config import ModelConfig

    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise ValueError(f"--student {text!r}: expected NAME=SPEC, e.g. base=local")
    if not _NAME.match(name) or name == TEACHER:
        raise ValueError(
            f"--student {text!r}: NAME must be letters, digits, '_', '.', '-' and not {TEACHER!r}"
        )
    if spec == "local":
        return name, ModelConfig.from_env(local=True)
    if spec.startswith("local:"):
        path = spec.removeprefix("local:").strip()
        if not path:
            raise ValueError(f"--student {text!r}: local:PATH needs a path or model name")
        return name, ModelConfig.from_env(local=True, local_model=path)
    url, hash_, model = spec.partition("#")
    if not url.startswith(("http://", "https://")) or not hash_ or not model.strip():
        raise ValueError(
            f"--student {text!r}: SPEC must be local, local:PATH or URL#MODEL "
            "(e.g. http://127.0.0.1:8000/v1#my-model)"
        )
    cfg = ModelConfig.from_env(base_url=url, model=model.strip(), local=False)
    if cfg.api_key is None:
        cfg.api_key = "EMPTY"
    return name, cfg


def student_messages(record: Record, turn: int) -> list[Message]:
    """The conversation a student answers: the turns before ``turn``, without empty system
    turns and without training flags. Pure."""
    out: list[Message] = []
    for m in record.messages[:turn]:
        if m["role"] == "system" and not m["content"].strip():
            continue
        msg: Message = {"role": m["role"], "content": m["content"]}
        if "tool_calls" in m:
            msg["tool_calls"] = m["tool_calls"]
        if "tool_call_id" in m:
            msg["tool_call_id"] = m["tool_call_id"]
        if "name" in m:
            msg["name"] = m["name"]
        out.append(msg)
    return out


class Answer(BaseModel):
    """One student answer (a row of ``DIR/<student>/answers.jsonl``)."""

    id: str
    skill: str
    sub_category: str
    turn: int
    answer: str = ""
    error: str | None = None
    model: str = ""
    usage: dict[str, int] = Field(default_factory=dict)


class Score(BaseModel):
    """One judged answer (a row of ``DIR/scores.jsonl``): the teacher's or a student's."""

    id: str
    skill: str
    sub_category: str
    answerer: str
    score: int | None = None
    scores: dict[str, int] = Field(default_factory=dict)
    reasons: dict[str, str] = Field(default_factory=dict)
    verdict: str = ""
    error: str | None = None
    judge: str = ""
    usage: dict[str, int] = Field(default_factory=dict)


# -- scores -----------------------------------------------------------------------------------
def orca_score(student: Sequence[float], teacher: Sequence[float]) -> float | None:
    """Orca-Bench's score: ``10 * sum(student) / sum(teacher)`` over paired items; None
    when the teacher's sum is 0 (nothing to compare with)."""
    total = float(sum(teacher))
    return None if total <= 0 else 10.0 * float(sum(student)) / total


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def summarize_scores(
    scores: Iterable[Score], students: Sequence[str], skills: Sequence[str]
) -> dict[str, Any]:
    """Per skill and overall: items, the teacher's mean, and per student the mean and the
    Orca-Bench score over the items both the teacher and that student were scored on."""
    table: dict[tuple[str, str], dict[str, int]] = {}
    for s in scores:
        if s.score is not None:
            table.setdefault((s.skill, s.id), {})[s.answerer] = s.score

    def block(keys: list[tuple[str, str]]) -> dict[str, Any]:
        teacher = [table[k][TEACHER] for k in keys if TEACHER in table[k]]
        row: dict[str, Any] = {
            "items": len(keys),
            "teacher_mean": _round(_mean(teacher)),
            "students": {},
        }
        for name in students:
            pairs = [
                (table[k][name], table[k][TEACHER])
                for k in keys
                if {name, TEACHER} <= set(table[k])
            ]
            st = [p[0] for p in pairs]
            row["students"][name] = {
                "paired": len(pairs),
                "mean": _round(_mean(st)),
                "orca_score": _round(orca_score(st, [p[1] for p in pairs])),
            }
        return row

    by_skill = {}
    for skill in skills:
        by_skill[skill] = block([k for k in table if k[0] == skill])
    return {"skills": by_skill, "overall": block(list(table))}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def summary_markdown(summary: Mapping[str, Any], students: Sequence[str]) -> str:
    """The summary as a Markdown table: skill, items, teacher mean, then each student's
    mean and Orca-Bench score, side by side."""

    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.2f}"

    head = ["skill", "items", "teacher mean"]
    for s in students:
        head += [f"{s} mean", f"{s} score"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [*summary["skills"].items(), ("overall", summary["overall"])]
    for skill, row in rows:
        cells = [f"**{skill}**" if skill == "overall" else skill, str(row["items"])]
        cells.append(f(row["teacher_mean"]))
        for s in students:
            st = row["students"][s]
            cells += [f(st["mean"]), f(st["orca_score"])]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        "\nScore = 10 x sum(student scores) / sum(teacher scores) over the items where both "
        "were scored (the judge's opinion; the teacher is the yardstick: 10 = on par).\n"
    )
    return "\n".join(lines) + "\n" + note


# -- the run ----------------------------------------------------------------------------------
@dataclass
class EvalReport:
    """What :func:`eval_run` wrote."""

    out: Path
    students: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)
    judged: int = 0
    failures: int = 0

    def format(self) -> str:
        md = summary_markdown(self.summary, self.students)
        return (
            f"{md}\n{self.judged} answers judged this run ({self.failures} failed); "
            f"answers this run: {self.answered}\nsummary: {self.out / SUMMARY_MD}"
        )


async def answer_all(
    name: str,
    client: ModelClient,
    records: Sequence[Record],
    out: Path,
    *,
    limits: CallSettings,
    temperature: float | None = 0.0,
    max_tokens: int | None = 1024,
) -> tuple[dict[str, Answer], int]:
    """The student ``name``'s answers to ``records`` (``out/answers.jsonl``, resumed; calls
    cached in ``out/cache.sqlite``). Returns (answers by id, answers made this run).

    Raises:
        ValueError: the student cannot be reached (its endpoint refuses the run).
        OutageError: the student's endpoint stayed down past ``limits.outage_deadline``
            (the answers written so far are kept).
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / ANSWERS_FILE
    have = {a.id: a for a in (Answer.model_validate(o) for o in read_jsonl(path))}
    stack = ModelStack.open(client, limits, cache_path=out / STUDENT_CACHE)
    writer = JsonlWriter(path)
    made = 0

    async def one(rec: Record) -> None:
        nonlocal made
        turn = last_assistant_turn(rec.messages)
        row = Answer(
            id=rec.id,
            skill=rec.meta.skill,
            sub_category=rec.meta.sub_category,
            turn=turn,
            model=client.model_name,
        )
        request = ModelRequest(
            messages=student_messages(rec, turn), temperature=temperature, max_tokens=max_tokens
        )
        try:
            done = await stack.client.complete(request)
        except FatalModelError as exc:
            raise ValueError(
                f"student {name} ({client.model_name}) cannot be reached: {exc}"
            ) from exc
        except OutageError:
            raise
        except ModelError as exc:
            row.error = f"no answer: {exc}"
        else:
            row.answer = done.text
            row.usage = done.usage.as_dict()
        writer.write(row)
        have[rec.id] = row
        made += 1

    try:
        await run_pool([r for r in records if r.id not in have], one, limits.concurrency)
    finally:
        writer.close()
        await stack.close()
    return have, made


async def eval_run(
    run: str | Path,
    out: str | Path,
    students: Mapping[str, ModelClient],
    judge_client: ModelClient,
    *,
    judge: JudgeAgent | None = None,
    limits: CallSettings | None = None,
    skills: Sequence[str] | None = None,
    student_temperature: float | None = 0.0,
    student_max_tokens: int | None = 1024,
    names: Mapping[str, str] | None = None,
) -> EvalReport:
    """Evaluate ``students`` on the held-out records of ``run`` into ``out``.

    Writes ``out/<student>/answers.jsonl``, ``out/scores.jsonl``, ``out/summary.json`` and
    ``out/summary.md``; resumes (answers and scores already written are kept, and the
    calls are cached). Teacher and students are judged alike: the judge is not told how
    code checked the teacher's answer.

    Raises:
        ValueError: no split, an unknown skill, no held-out records, a student that cannot
            be reached.
        FatalModelError / OutageError: the judge cannot serve, or a student's or the
            judge's endpoint stayed down past ``limits.outage_deadline``; what was written
            is kept and the same command resumes.
    """
    out = Path(out)
    limits = limits or CallSettings()
    _split, held = read_split(run)
    if not held:
        raise ValueError(f"{run}: the split holds no records")
    have = sorted({r.meta.skill for r in held})
    if skills is not None:
        check_skills(skills, have)
        held = [r for r in held if r.meta.skill in skills]
    order = list(skills) if skills is not None else have
    if not students:
        raise ValueError("give at least one --student NAME=SPEC")
    report = EvalReport(out=out, students=list(students))
    answers: dict[str, dict[str, Answer]] = {}
    for name, client in students.items():
        answers[name], report.answered[name] = await answer_all(
            name,
            client,
            held,
            out / name,
            limits=limits,
            temperature=student_temperature,
            max_tokens=student_max_tokens,
        )
    scores_path = out / SCORES_FILE
    scores = [Score.model_validate(o) for o in read_jsonl(scores_path)]
    done = {(s.id, s.answerer) for s in scores}
    agent = judge or JudgeAgent(prompts=PromptLibrary(), temperature=0.0)
    stack = ModelStack.open(judge_client, limits, cache_path=out / JUDGE_CACHE)
    writer = JsonlWriter(scores_path)
    jobs = [(rec, who) for rec in held for who in (TEACHER, *students) if (rec.id, who) not in done]
    skill_names = names or {}

    async def one(job: tuple[Record, str]) -> None:
        rec, who = job
        base: dict[str, Any] = {
            "id": rec.id,
            "skill": rec.meta.skill,
            "sub_category": rec.meta.sub_category,
        }
        ans = None if who == TEACHER else answers[who].get(rec.id)
        if ans is not None and ans.error is not None:
            row = Score(**base, answerer=who, error=ans.error)
        else:
            v = await judge_one(
                agent,
                stack.client,
                rec,
                threshold=DEFAULT_THRESHOLD,
                turn=None if ans is None else ans.turn,
                answer=None if ans is None else ans.answer,
                skill_name=skill_names.get(rec.meta.skill),
                with_verification=False,
            )
            row = Score(
                **base,
                answerer=who,
                score=v.score,
                scores=v.scores,
                reasons=v.reasons,
                verdict=v.verdict,
                error=v.error,
                judge=v.judge,
                usage=v.usage,
            )
            report.judged += 1
            report.failures += int(v.failed)
        writer.write(row)
        scores.append(row)

    try:
        await run_pool(jobs, one, limits.concurrency)
    finally:
        writer.close()
        await stack.close()
    held_ids = {r.id for r in held}
    report.summary = summarize_scores(
        [s for s in scores if s.id in held_ids], list(students), order
    )
    report.summary["judge"] = judge_client.model_name
    report.summary["students_models"] = {n: c.model_name for n, c in students.items()}
    (out / SUMMARY_JSON).write_text(json.dumps(report.summary, indent=2) + "\n")
    (out / SUMMARY_MD).write_text(summary_markdown(report.summary, list(students)))
    return report


# -- command line -----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``genteach eval split`` and ``genteach eval run``."""
    from genteach.judge import add_model_arguments

    sub = parser.add_subparsers(dest="eval_command", required=True, metavar="{split,run}")
    s = sub.add_parser("split", help="hold out N records per skill of a run (training skips them)")
    s.add_argument("run", metavar="RUN", help="a genteach output folder")
    s.add_argument("--per-skill", type=int, required=True, help="records held out per skill")
    s.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    s.add_argument("--skills", help="comma-separated skill ids (default: every skill in RUN)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing split")
    r = sub.add_parser("run", help="answer the held-out items with students; judge; score")
    r.add_argument("run", metavar="RUN", help="a run folder with eval/split.json")
    r.add_argument(
        "--student",
        action="append",
        required=True,
        metavar="NAME=SPEC",
        help="a student: NAME=local (embedded model), NAME=local:PATH (HF folder, .gguf or "
        "a shipped model name) or NAME=URL#MODEL (OpenAI-compatible endpoint); repeatable",
    )
    r.add_argument("--out", help="folder for answers, scores and the summary (default RUN/eval)")
    r.add_argument("--skills", help="comma-separated skill ids (default: every held-out skill)")
    r.add_argument(
        "--student-max-tokens", type=int, default=1024, help="most tokens of a student answer"
    )
    r.add_argument(
        "--student-temperature", type=float, default=0.0, help="students' temperature (default 0)"
    )
    add_model_arguments(r, title="judge model (ModelConfig)")


def run(args: argparse.Namespace) -> int:
    """Run ``genteach eval split`` or ``genteach eval run``; return 0."""
    skills = [x.strip() for x in args.skills.split(",") if x.strip()] if args.skills else None
    if args.eval_command == "split":
        split = write_split(
            args.run, args.per_skill, seed=args.seed, skills=skills, overwrite=args.overwrite
        )
        for skill, c in split.counts.items():
            note = "  (all of its records)" if c["held_out"] == c["total"] else ""
            print(f"  {skill:22} {c['held_out']:6} of {c['total']:6} held out{note}")
        print(f"{len(split.ids)} records held out: {split_path(args.run)}")
        return 0
    from genteach.judge import judge_from_args, skill_names
    from genteach.models.config import build_client

    read_split(args.run)  # fail before any model is loaded
    specs = dict(parse_student(s) for s in args.student)
    if len(specs) != len(args.student):
        raise ValueError("--student names must differ")
    cfg, judge, limits = judge_from_args(args)
    judge_client = build_client(cfg)
    students = {name: build_client(c) for name, c in specs.items()}
    out = Path(args.out) if args.out else Path(args.run) / EVAL_DIR
    report = asyncio.run(
        eval_run(
            args.run,
            out,
            students,
            judge_client,
            judge=judge,
            limits=limits,
            skills=skills,
            student_temperature=args.student_temperature,
            student_max_tokens=args.student_max_tokens,
            names=skill_names(),
        )
    )
    print(report.format())
    return 0


__all__ = [
    "ANSWERS_FILE",
    "HELDOUT_FILE",
    "SCORES_FILE",
    "SPLIT_FILE",
    "SUMMARY_JSON",
    "SUMMARY_MD",
    "TEACHER",
    "Answer",
    "EvalReport",
    "Score",
    "Split",
    "add_arguments",
    "answer_all",
    "check_skills",
    "eval_run",
    "held_out_ids",
    "make_split",
    "orca_score",
    "parse_student",
    "read_split",
    "run",
    "split_file_for",
    "split_path",
    "student_messages",
    "summarize_scores",
    "summary_markdown",
    "write_split",
]
