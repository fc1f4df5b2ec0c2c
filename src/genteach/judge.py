"""``genteach judge``: an LLM judge that scores one assistant turn per record and filters.

The judge is an :class:`~genteach.agents.base.Agent`: it renders ``judge/system.j2`` (with
the skill's rubric, ``judge/rubrics/<skill>.j2``, or ``default.j2``) and ``judge/user.j2``,
calls the model, and parses one JSON object (:class:`JudgeAnswer`: four criteria 0-10 with
reasons, an overall score and a verdict). A malformed answer is sent back for repair by the
agent machinery; one that stays malformed becomes a "judge failed" :class:`Verdict` with its
reason, never a silent 0.

A judge score is a model's opinion of an answer, not a check: see docs/judge.md.

Example:
    >>> verdicts = await judge_records(records, client, threshold=6)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from genteach.agents.base import Agent, AgentError
from genteach.keys import KeyKinds, Layout
from genteach.models.base import (
    FatalModelError,
    Message,
    ModelClient,
    ModelError,
    OutageError,
    Usage,
)
from genteach.models.stack import CallSettings, ModelStack
from genteach.prompts import PromptLibrary
from genteach.records import JsonlWriter, Record, read_jsonl

if TYPE_CHECKING:
    from genteach.cost import PriceTable
    from genteach.models.config import ModelConfig

log = logging.getLogger(__name__)

SYSTEM_TEMPLATE = "judge/system.j2"
USER_TEMPLATE = "judge/user.j2"
RUBRIC_DIR = "judge/rubrics"
DEFAULT_RUBRIC = f"{RUBRIC_DIR}/default.j2"
#: The criteria every judge answer scores, in the order they are shown.
CRITERIA: tuple[str, ...] = ("correctness", "faithfulness", "instruction_following", "completeness")
DEFAULT_THRESHOLD = 6.0
JUDGE_DIR = "judge"
VERDICTS_FILE = "verdicts.jsonl"
KEPT_FILE = "records.jsonl"
BELOW_FILE = "below.jsonl"
SUMMARY_FILE = "summary.json"
CACHE_FILE = "cache.sqlite"
_LABELLED_FORMS = frozenset({"choice", "items", "matching"})


# -- the agent ------------------------------------------------------------------------------
class Criterion(BaseModel):
    """One criterion's grade."""

    model_config = ConfigDict(extra="forbid")
    score: int = Field(ge=0, le=10, description="an integer from 0 to 10")
    reason: str = Field(min_length=1, description="one line naming the point that decides it")


class JudgeAnswer(BaseModel):
    """The judge's answer, exactly as the parser enforces it (the prompt shows its shape)."""

    model_config = ConfigDict(extra="forbid")
    correctness: Criterion
    faithfulness: Criterion
    instruction_following: Criterion
    completeness: Criterion
    score: int = Field(ge=0, le=10, description="overall grade, an integer from 0 to 10")
    verdict: str = Field(min_length=1, description="one or two sentences on what decides it")

    def criteria(self) -> dict[str, Criterion]:
        """The four criteria by name."""
        return {name: getattr(self, name) for name in CRITERIA}

    @model_validator(mode="after")
    def _a_reason_per_criterion(self) -> JudgeAnswer:
        # A small model copies one sentence into every criterion (and often gives every
        # criterion the same score): that answer graded nothing, so it is repaired or fails.
        reasons = {" ".join(c.reason.lower().split()) for c in self.criteria().values()}
        if len(reasons) == 1:
            raise ValueError(
                "every criterion has the same reason: give each criterion its own one-line "
                "reason naming the point that decides it"
            )
        return self


class Turn(BaseModel):
    """One turn of the conversation shown to the judge."""

    role: str
    content: str
    name: str = ""
    calls: list[str] = Field(default_factory=list)


class JudgeInput(BaseModel):
    """What the judge templates render.

    Attributes:
        skill / skill_name / sub_category: what kind of task this is.
        rubric: the rubric template (``judge/rubrics/<skill>.j2`` or the default).
        turns: the conversation before the judged turn.
        answer: the judged assistant turn (its text, then its tool calls).
        key: the answer key rendered readably ("" when the record has none).
        key_shown: the correct answer as the answerer saw it (e.g. ``(C) "..."``), or "".
        verification: how code already checked this answer against the key (``status``,
            ``detail``), or None when it did not or it does not apply.
    """

    skill: str
    skill_name: str
    sub_category: str
    rubric: str
    turns: list[Turn]
    answer: str
    key: str = ""
    key_shown: str = ""
    verification: dict[str, str] | None = None


class JudgeAgent(Agent[JudgeInput, JudgeAnswer]):
    """The judge agent: scores one answer on four criteria with the skill's rubric.

    Example:
        >>> judge = JudgeAgent(prompts=PromptLibrary(), temperature=0.0)
        >>> result = await judge.run(client, judge_input(record))
    """

    input_model = JudgeInput
    output_model = JudgeAnswer
    default_system_template = SYSTEM_TEMPLATE
    default_user_template = USER_TEMPLATE
    format_hint: ClassVar[str] = (
        "a single JSON object with the four criteria (each a score 0-10 and a reason), "
        '"score" and "verdict"'
    )
    # A reason may quote a line of the rubric; only long copies count as echoes.
    echo_words: ClassVar[int] = 14

    def __init__(self, name: str = "judge", *, prompts: PromptLibrary, **kwargs: Any) -> None:
        super().__init__(name, prompts=prompts, **kwargs)


def rubric_for(prompts: PromptLibrary, skill: str) -> str:
    """The rubric template of ``skill``: ``judge/rubrics/<skill>.j2``, else the default."""
    name = f"{RUBRIC_DIR}/{skill}.j2"
    return name if prompts.exists(name) else DEFAULT_RUBRIC


def last_assistant_turn(messages: Sequence[Message]) -> int:
    """The index of the last assistant turn with text or tool calls.

    Raises:
        ValueError: the conversation has no such turn.
    """
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m["role"] == "assistant" and (m["content"].strip() or m.get("tool_calls")):
            return i
    raise ValueError("the record has no assistant turn to judge")


def _calls(m: Message) -> list[str]:
    return [f"{c['name']}({c['arguments']})" for c in m.get("tool_calls", [])]


def answer_text(m: Message) -> str:
    """An assistant turn as the judge reads it: its text, then one line per tool call."""
    lines = [m["content"].strip()] if m["content"].strip() else []
    lines += [f"(calls {c})" for c in _calls(m)]
    return "\n".join(lines)


def key_text(key: Mapping[str, Any] | None, view: Mapping[str, Any] | None) -> tuple[str, str]:
    """(the key as readable YAML, the correct answer as the answerer saw it) of a record's
    key; ("", "") when there is none. The second part is "" unless the key is shown with
    labels (multiple choice, ordering, matching) and its kind is known."""
    if not key:
        return "", ""
    text = yaml.safe_dump(dict(key), sort_keys=False, allow_unicode=True, width=100).strip()
    shown = ""
    try:
        parsed = KeyKinds().parse(dict(key))
        raw_layout = (view or {}).get("layout")
        layout = Layout.model_validate(raw_layout) if isinstance(raw_layout, dict) else Layout()
        # Only keys shown with labels (options, items, pairs) have an answer "as seen".
        if parsed.form in _LABELLED_FORMS:
            shown = parsed.summary(layout)
    except (ValueError, IndexError, KeyError):
        shown = ""
    return text, shown


def judge_input(
    record: Record,
    *,
    prompts: PromptLibrary,
    turn: int | None = None,
    answer: str | None = None,
    skill_name: str | None = None,
    with_verification: bool = True,
) -> JudgeInput:
    """The judge's input for one record. Pure.

    Args:
        record: the record.
        prompts: the library that picks the skill's rubric.
        turn: index of the judged assistant turn (default: the last one).
        answer: judge this text instead of the record's turn (a student's answer).
        skill_name: the skill's display name (default: its id).
        with_verification: tell the judge how code checked the record's answer (only
            meaningful for the record's own answer).

    Raises:
        ValueError: no assistant turn to judge, or ``turn`` is not an assistant turn.
    """
    idx = last_assistant_turn(record.messages) if turn is None else turn
    if not 0 <= idx < len(record.messages) or record.messages[idx]["role"] != "assistant":
        raise ValueError(f"record {record.id}: turn {idx} is not an assistant turn")
    meta = record.meta
    key, shown = key_text(meta.key, meta.view)
    verification = None
    if with_verification and answer is None and meta.verification is not None and key:
        verification = {
            "status": meta.verification.status,
            "detail": meta.verification.detail or meta.verification.kind,
        }
    turns = [
        Turn(role=m["role"], content=m["content"].strip(), name=m.get("name", ""), calls=_calls(m))
        for m in record.messages[:idx]
        if m["content"].strip() or m.get("tool_calls")
    ]
    return JudgeInput(
        skill=meta.skill,
        skill_name=skill_name or meta.skill,
        sub_category=meta.sub_category,
        rubric=rubric_for(prompts, meta.skill),
        turns=turns,
        answer=answer_text(record.messages[idx]) if answer is None else answer.strip(),
        key=key,
        key_shown=shown,
        verification=verification,
    )


# -- verdicts -------------------------------------------------------------------------------
class Verdict(BaseModel):
    """One judged record: a row of ``verdicts.jsonl``.

    ``error`` is set (and ``score`` is None, ``passed`` False) when the judge failed: its
    answer stayed malformed, it declined, or the call failed for this request. ``retries``
    counts how often a failed row was judged again (each time with another seed, so the
    cache does not replay the failed answer).
    """

    id: str
    skill: str
    sub_category: str
    turn: int
    scores: dict[str, int] = Field(default_factory=dict)
    score: int | None = None
    reasons: dict[str, str] = Field(default_factory=dict)
    verdict: str = ""
    passed: bool = False
    error: str | None = None
    judge: str = ""
    usage: dict[str, int] = Field(default_factory=dict)
    retries: int = 0

    @property
    def failed(self) -> bool:
        """Whether the judge gave no usable answer."""
        return self.error is not None

    def with_threshold(self, threshold: float) -> Verdict:
        """This verdict with ``passed`` decided by ``threshold``."""
        ok = self.score is not None and self.score >= threshold
        return self if ok == self.passed else self.model_copy(update={"passed": ok})


async def judge_one(
    judge: JudgeAgent,
    client: ModelClient,
    record: Record,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    turn: int | None = None,
    answer: str | None = None,
    skill_name: str | None = None,
    with_verification: bool = True,
    seed: int | None = None,
) -> Verdict:
    """Judge one record's turn (or ``answer`` in its place) and return its verdict
    (``seed``: the calls' seed; None leaves it to the backend).

    Raises:
        FatalModelError / OutageError: the judge cannot serve at all (the run must stop).
    """
    base: dict[str, Any] = {
        "id": record.id,
        "skill": record.meta.skill,
        "sub_category": record.meta.sub_category,
        "judge": client.model_name,
    }
    try:
        idx = last_assistant_turn(record.messages) if turn is None else turn
        inputs = judge_input(
            record,
            prompts=judge.prompts,
            turn=idx,
            answer=answer,
            skill_name=skill_name,
            with_verification=with_verification,
        )
    except ValueError as exc:
        return Verdict(**base, turn=-1 if turn is None else turn, error=f"judge failed: {exc}")
    try:
        result = await judge.run(client, inputs, seed=seed)
    except (FatalModelError, OutageError):
        raise
    except AgentError as exc:
        return Verdict(
            **base, turn=idx, error=f"judge failed: {exc.reason}", usage=exc.usage.as_dict()
        )
    except ModelError as exc:
        return Verdict(**base, turn=idx, error=f"judge failed: model error: {exc}")
    out = result.output
    crit = out.criteria()
    return Verdict(
        **base,
        turn=idx,
        scores={k: c.score for k, c in crit.items()},
        score=out.score,
        reasons={k: c.reason for k, c in crit.items()},
        verdict=out.verdict,
        passed=out.score >= threshold,
        usage=result.usage.as_dict(),
    )


async def run_pool(items: Iterable[Any], work: Callable[[Any], Awaitable[None]], n: int) -> None:
    """Run ``work`` on ``items`` with at most ``n`` at once (items read lazily); the first
    error stops the pool and is raised."""
    it = iter(items)

    async def worker() -> None:
        for item in it:
            await work(item)

    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, n))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()


async def judge_records(
    records: Iterable[Record],
    client: ModelClient,
    *,
    prompts: PromptLibrary | None = None,
    judge: JudgeAgent | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    concurrency: int = 8,
    skill_names: Mapping[str, str] | None = None,
    on_verdict: Callable[[Record, Verdict], None] | None = None,
    retries: Mapping[str, int] | None = None,
) -> list[Verdict]:
    """JudgeAgent the last assistant turn of each record (``concurrency`` at a time).

    Args:
        records: the records to judge.
        client: the judge model (wrap it in a ResilientModel/CachedModel for retries,
            limits and resume; :func:`judge_run` does).
        prompts / judge: the prompt library, or a configured judge agent.
        threshold: the overall score a record needs to pass.
        skill_names: display names of the skills (default: their ids).
        on_verdict: called with each record and its verdict as soon as it is known.
        retries: record id -> how often it was judged before and failed; such a record is
            judged with seed ``retries`` (so a cached failed answer is not replayed).

    Returns:
        The verdicts, in the order of ``records``.
    """
    agent = judge or JudgeAgent(prompts=prompts or PromptLibrary(), temperature=0.0)
    names = skill_names or {}
    listed = list(records)
    out: list[Verdict | None] = [None] * len(listed)

    async def one(pair: tuple[int, Record]) -> None:
        i, rec = pair
        n = (retries or {}).get(rec.id, 0)
        v = await judge_one(
            agent,
            client,
            rec,
            threshold=threshold,
            skill_name=names.get(rec.meta.skill),
            seed=n or None,
        )
        if n:
            v = v.model_copy(update={"retries": n})
        out[i] = v
        if on_verdict is not None:
            on_verdict(rec, v)

    await run_pool(enumerate(listed), one, concurrency)
    return [v for v in out if v is not None]


# -- the command's run ------------------------------------------------------------------------
@dataclass
class JudgeReport:
    """What :func:`judge_run` did: the summary written to ``summary.json``."""

    out: Path
    judge: str
    threshold: float
    by_skill: dict[str, dict[str, Any]] = field(default_factory=dict)
    judged: int = 0
    passed: int = 0
    failures: int = 0
    new: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None
    cached_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "threshold": self.threshold,
            "judged": self.judged,
            "passed": self.passed,
            "failures": self.failures,
            "judged_this_run": self.new,
            "by_skill": self.by_skill,
            "usage": self.usage.as_dict(),
            "cost": self.cost,
            "cached_calls": self.cached_calls,
        }

    def format(self) -> str:
        """The printed summary: one line per skill, then totals."""
        from genteach.cost import format_cost

        lines = [f"{'skill':22} {'judged':>7} {'passed':>7} {'failed':>7} {'mean':>6}"]
        for skill, row in sorted(self.by_skill.items()):
            mean = "-" if row["mean_score"] is None else f"{row['mean_score']:.2f}"
            lines.append(
                f"{skill:22} {row['judged']:7} {row['passed']:7} {row['failures']:7} {mean:>6}"
            )
        lines.append(
            f"{self.judged} judged ({self.new} this run), {self.passed} at or above "
            f"{self.threshold:g}, {self.failures} judge failures; "
            f"{self.usage.total_tokens} tokens in {self.usage.calls} calls, "
            f"cost {format_cost(self.cost)}"
        )
        lines.append(f"verdicts: {self.out / VERDICTS_FILE}")
        return "\n".join(lines)


def summarize(verdicts: Iterable[Verdict]) -> dict[str, dict[str, Any]]:
    """Per skill: judged, passed, failures and the mean overall score (failures left out)."""
    rows: dict[str, dict[str, Any]] = {}
    sums: dict[str, list[int]] = {}
    for v in verdicts:
        row = rows.setdefault(v.skill, {"judged": 0, "passed": 0, "failures": 0})
        row["judged"] += 1
        row["passed"] += int(v.passed)
        row["failures"] += int(v.failed)
        if v.score is not None:
            sums.setdefault(v.skill, []).append(v.score)
    for skill, row in rows.items():
        got = sums.get(skill, [])
        row["mean_score"] = round(sum(got) / len(got), 3) if got else None
    return rows


def read_verdicts(path: str | Path) -> list[Verdict]:
    """The verdicts of a ``verdicts.jsonl`` (the last row per id wins)."""
    by_id: dict[str, Verdict] = {}
    for obj in read_jsonl(path):
        v = Verdict.model_validate(obj)
        by_id[v.id] = v
    return list(by_id.values())


def _write_atomic(path: Path, rows: Iterable[BaseModel]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row.model_dump(mode="json"), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def default_out(inputs: Sequence[str | Path]) -> Path:
    """``RUN/judge`` for one run folder.

    Raises:
        ValueError: several inputs (or a file) and no ``--out``.
    """
    if len(inputs) == 1 and Path(inputs[0]).is_dir():
        return Path(inputs[0]) / JUDGE_DIR
    raise ValueError("--out is required unless one run folder is given")


def load_records(inputs: Sequence[str | Path]) -> list[Record]:
    """The records of run folders (shards included) or records files, duplicate ids dropped.

    Raises:
        FileNotFoundError / ValueError: see :func:`genteach.export.collect_records`.
    """
    from genteach.export import collect_records

    rs = collect_records(list(inputs))
    return [r for recs in rs.by_skill.values() for r in recs]


def skill_names() -> dict[str, str]:
    """Display names of the built-in taxonomy's skills (empty if it cannot be read)."""
    from genteach.taxonomy import load_taxonomy

    try:
        tax = load_taxonomy()
    except (ValueError, OSError):
        return {}
    return {sid: skill.name for sid, skill in tax.skills.items()}


async def judge_run(
    records: Sequence[Record],
    out: str | Path,
    client: ModelClient,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    limits: CallSettings | None = None,
    prompts: PromptLibrary | None = None,
    judge: JudgeAgent | None = None,
    prices: PriceTable | None = None,
    retry_failed: bool = False,
    names: Mapping[str, str] | None = None,
) -> JudgeReport:
    """JudgeAgent ``records`` into ``out`` (verdicts.jsonl, records.jsonl, below.jsonl,
    summary.json, cache.sqlite), resuming: records with a verdict in ``out`` are not
    judged again (nor are those whose judge failed, unless ``retry_failed``).

    ``records.jsonl`` and ``below.jsonl`` are rewritten from every verdict at the end (also
    when interrupted), with this call's ``threshold``; so are the ``passed`` flags.
    ``limits`` sets how the judge is called (:class:`~genteach.models.stack.CallSettings`:
    concurrency, retries, backoff, the outage breaker and its deadline).

    Raises:
        FatalModelError: the judge's endpoint cannot serve (wrong key, unknown model).
        OutageError: the endpoint stayed down past ``limits.outage_deadline``; the verdicts
            written so far are kept and the same call resumes.
    """
    from genteach.cost import PriceTable

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    limits = limits or CallSettings()
    verdicts_path = out / VERDICTS_FILE
    done = {v.id: v for v in read_verdicts(verdicts_path)} if verdicts_path.exists() else {}
    retries: dict[str, int] = {}
    if retry_failed:
        retries = {k: v.retries + 1 for k, v in done.items() if v.failed}
        done = {k: v for k, v in done.items() if not v.failed}
    _write_atomic(verdicts_path, done.values())  # one row per id; torn tail dropped
    todo = [r for r in records if r.id not in done]
    by_id = {r.id: r for r in records}
    stack = ModelStack.open(client, limits, cache_path=out / CACHE_FILE)
    agent = judge or JudgeAgent(prompts=prompts or PromptLibrary(), temperature=0.0)
    writer = JsonlWriter(verdicts_path)
    new = 0

    def keep(rec: Record, v: Verdict) -> None:
        nonlocal new
        done[v.id] = v
        writer.write(v)
        new += 1

    try:
        await judge_records(
            todo,
            stack.client,
            judge=agent,
            threshold=threshold,
            concurrency=limits.concurrency,
            skill_names=names,
            on_verdict=keep,
            retries=retries,
        )
    finally:
        writer.close()
        await stack.close()
        _finish(out, done, by_id, threshold)
    report = JudgeReport(out=out, judge=client.model_name, threshold=threshold, new=new)
    report.cached_calls = stack.cached_calls
    _fill(report, [done[r.id] for r in records if r.id in done], prices or PriceTable.load())
    (out / SUMMARY_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def _finish(
    out: Path, done: Mapping[str, Verdict], by_id: Mapping[str, Record], threshold: float
) -> None:
    """Rewrite verdicts (``passed`` by ``threshold``), the kept and the below records."""
    verdicts = [v.with_threshold(threshold) if not v.failed else v for v in done.values()]
    _write_atomic(out / VERDICTS_FILE, verdicts)
    ok = [by_id[v.id] for v in verdicts if v.passed and v.id in by_id]
    low = [by_id[v.id] for v in verdicts if not v.passed and not v.failed and v.id in by_id]
    _write_atomic(out / KEPT_FILE, ok)
    _write_atomic(out / BELOW_FILE, low)


def _fill(report: JudgeReport, verdicts: Sequence[Verdict], prices: PriceTable) -> None:
    report.by_skill = summarize(verdicts)
    report.judged = len(verdicts)
    report.passed = sum(v.passed for v in verdicts)
    report.failures = sum(v.failed for v in verdicts)
    usage = Usage()
    for v in verdicts:
        u = v.usage
        usage = usage + Usage(
            u.get("prompt_tokens", 0), u.get("completion_tokens", 0), u.get("calls", 0)
        )
    report.usage = usage
    report.cost = prices.cost(report.judge, usage)


# -- command line ---------------------------------------------------------------------------
def add_model_arguments(parser: argparse.ArgumentParser, *, title: str) -> None:
    """The judge model's flags: every :class:`~genteach.models.config.ModelConfig` field,
    every :class:`~genteach.models.stack.CallSettings` field (the same flags, defaults and
    help as ``genteach generate``'s: ``--concurrency``, ``--outage-deadline``, ...), plus
    parse repairs, ``--prices`` and ``--prompts``."""
    from genteach.cli import _add_field_flags
    from genteach.models.config import ModelConfig

    _add_field_flags(parser, ModelConfig, set(), title=title)
    _add_field_flags(parser, CallSettings, set(), title="calls (CallSettings)")
    g = parser.add_argument_group("judge")
    g.add_argument(
        "--max-parse-retries",
        type=int,
        default=2,
        help="repairs of a malformed judge answer before it counts as failed (default 2)",
    )
    g.add_argument("--prices", help="YAML price table, $ per 1M tokens: MODEL: {input, output}")
    g.add_argument(
        "--prompts",
        action="append",
        default=[],
        help="extra prompt folder searched first, e.g. with judge/rubrics/<skill>.j2",
    )


def call_settings_from_args(args: argparse.Namespace) -> CallSettings:
    """The :class:`~genteach.models.stack.CallSettings` given on the command line (the
    others keep their defaults).

    Raises:
        ValueError: a value out of range, in one line naming its flag.
    """
    from pydantic import ValidationError

    from genteach.cli import _given, _settings_error

    try:
        return CallSettings(**_given(args, CallSettings))
    except ValidationError as exc:
        raise _settings_error(exc, CallSettings) from None


def judge_from_args(args: argparse.Namespace) -> tuple[ModelConfig, JudgeAgent, CallSettings]:
    """The judge's model settings, agent and call settings from parsed flags."""
    from genteach.cli import _model_config
    from genteach.models.config import LOCAL_REPAIR_STYLE, LOCAL_REPAIR_TEMPERATURE

    cfg = _model_config(args)
    limits = call_settings_from_args(args)
    local = cfg.uses_local
    judge = JudgeAgent(
        prompts=PromptLibrary(args.prompts),
        temperature=0.0 if cfg.temperature is None else cfg.temperature,
        max_tokens=cfg.max_tokens or 1024,
        max_parse_retries=args.max_parse_retries,
        repair_temperature=LOCAL_REPAIR_TEMPERATURE if local else None,
        repair_style=LOCAL_REPAIR_STYLE if local else "show",
    )
    return cfg, judge, limits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``genteach judge``."""
    parser.add_argument(
        "inputs", nargs="+", metavar="RUN", help="output folders (shards included) or .jsonl"
    )
    parser.add_argument("--out", help="folder for the verdicts (default: RUN/judge)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"overall score a record needs to be kept (default {DEFAULT_THRESHOLD:g})",
    )
    parser.add_argument("--skills", help="comma-separated skill ids to judge (default: all)")
    parser.add_argument(
        "--retry-failed", action="store_true", help="judge again the records whose judge failed"
    )
    parser.add_argument("--limit", type=int, help="judge at most the first N records")
    add_model_arguments(parser, title="judge model (ModelConfig)")


def run(args: argparse.Namespace) -> int:
    """Run ``genteach judge`` from parsed arguments; print the summary; return 0."""
    from genteach.cost import PriceTable
    from genteach.models.config import build_client

    if not 0 <= args.threshold <= 10:
        raise ValueError(f"--threshold {args.threshold:g}: must be between 0 and 10")
    records = load_records(args.inputs)
    out = Path(args.out) if args.out else default_out(args.inputs)
    if args.skills:
        wanted = [s.strip() for s in args.skills.split(",") if s.strip()]
        have = {r.meta.skill for r in records}
        unknown = [s for s in wanted if s not in have]
        if unknown:
            raise ValueError(
                f"unknown skill {', '.join(unknown)} (skills in the input: "
                f"{', '.join(sorted(have)) or 'none'})"
            )
        records = [r for r in records if r.meta.skill in wanted]
    if args.limit is not None:
        if args.limit < 1:
            raise ValueError(f"--limit {args.limit}: must be at least 1")
        records = records[: args.limit]
    if not records:
        raise ValueError(f"{', '.join(map(str, args.inputs))}: no records to judge")
    cfg, judge, limits = judge_from_args(args)
    prices = PriceTable.load(args.prices)
    client = build_client(cfg)
    report = asyncio.run(
        judge_run(
            records,
            out,
            client,
            threshold=args.threshold,
            limits=limits,
            judge=judge,
            prices=prices,
            retry_failed=args.retry_failed,
            names=skill_names(),
        )
    )
    print(report.format(), file=sys.stdout)
    return 0


__all__ = [
    "BELOW_FILE",
    "CACHE_FILE",
    "CRITERIA",
    "DEFAULT_THRESHOLD",
    "KEPT_FILE",
    "SUMMARY_FILE",
    "VERDICTS_FILE",
    "CallSettings",
    "Criterion",
    "JudgeAgent",
    "JudgeAnswer",
    "JudgeInput",
    "JudgeReport",
    "ModelStack",
    "Turn",
    "Verdict",
    "add_arguments",
    "add_model_arguments",
    "answer_text",
    "call_settings_from_args",
    "default_out",
    "judge_from_args",
    "judge_input",
    "judge_one",
    "judge_records",
    "judge_run",
    "key_text",
    "last_assistant_turn",
    "load_records",
    "read_verdicts",
    "rubric_for",
    "run",
    "run_pool",
    "skill_names",
    "summarize",
]
