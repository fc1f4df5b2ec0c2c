"""One self-contained HTML page about a run: what was made, what was rejected, how it was
checked, how diverse it is, what it cost.

The page has no scripts and loads nothing: inline CSS, plots as inline SVG drawn here. All
text from the run is escaped. Each section is an element with a stable id
(:data:`SECTIONS`); a section without data says so (and how to get it) instead of vanishing.

The run's JSONL files are streamed once each (records, rejects, progress, judge verdicts);
what is kept are counts. Tables are cut at :data:`MAX_ROWS` rows (the page says so).

Usage::

    genteach report out/demo                      # writes out/demo/report.html
    genteach report out/demo --out demo.html --contamination out/contam --judge out/demo/judge
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genteach import diversity as div
from genteach.cost import PriceTable, format_cost
from genteach.models.base import Usage
from genteach.records import read_jsonl
from genteach.trajectories import TrajectoryReport, read_report

if TYPE_CHECKING:
    from genteach.dedup import Embedder

#: The section ids, in page order.
SECTIONS: tuple[str, ...] = (
    "overview",
    "records",
    "lengths",
    "rejects",
    "verification",
    "judge",
    "diversity",
    "refinement",
    "cost",
    "trajectories",
    "contamination",
)
#: Most rows in one table.
MAX_ROWS = 50
#: Bars in one histogram.
BINS = 20
#: The judge's output folder in a run (``verdicts.jsonl`` inside).
JUDGE_DIR = "judge"
VERDICTS_FILE = "verdicts.jsonl"
#: Verification statuses, in the order (and colours) the charts use.
STATUS_COLOURS = {
    "passed": "#2e7d32",
    "failed": "#c62828",
    "unchecked": "#9e9e9e",
    "none": "#cfd8dc",
}
_BAR = "#3f6fb5"
_BAR2 = "#e08a2e"


# --------------------------------------------------------------------------- gathering
@dataclass
class RunData:
    """What the page shows, gathered from a run folder (counts only)."""

    run: str
    run_json: dict[str, Any] = field(default_factory=dict)
    records: int = 0
    rejects: int = 0
    units: int = 0
    teachers: Counter[str] = field(default_factory=Counter)
    first: str = ""
    last: str = ""
    by_sub: Counter[tuple[str, str]] = field(default_factory=Counter)
    instruction_words: Counter[int] = field(default_factory=Counter)
    response_words: Counter[int] = field(default_factory=Counter)
    status: dict[str, Counter[str]] = field(default_factory=dict)
    usage_records: dict[str, Usage] = field(default_factory=dict)
    usage_all: dict[str, Usage] = field(default_factory=dict)
    reject_stage: Counter[str] = field(default_factory=Counter)
    reject_reason: Counter[str] = field(default_factory=Counter)
    reject_skill_stage: Counter[tuple[str, str]] = field(default_factory=Counter)
    verdicts: int = 0
    verdict_source: str = ""
    judge_by_skill: dict[str, list[float]] = field(default_factory=dict)
    judge_passed: Counter[str] = field(default_factory=Counter)
    judge_errors: Counter[str] = field(default_factory=Counter)
    judge_scores: Counter[int] = field(default_factory=Counter)
    judge_criteria: dict[str, list[float]] = field(default_factory=dict)
    diversity: div.DiversityReport | None = None
    trajectories: TrajectoryReport = field(default_factory=TrajectoryReport)
    contamination: dict[str, Any] | None = None
    contamination_source: str = ""
    prices: PriceTable = field(default_factory=PriceTable)


def reason_head(reason: str, width: int = 90) -> str:
    """A reject reason's class: the text before its first colon, cut to ``width``."""
    head = reason.split(":", 1)[0].strip() or "(no reason)"
    return head if len(head) <= width else head[: width - 1] + "…"


def _add_usage(table: dict[str, Usage], skill: str, usage: dict[str, Any] | None) -> None:
    u = usage or {}
    table[skill] = table.get(skill, Usage()) + Usage(
        int(u.get("prompt_tokens") or 0),
        int(u.get("completion_tokens") or 0),
        int(u.get("calls") or 0),
    )


def gather(
    run: str | Path,
    *,
    judge: str | Path | None = None,
    contamination: str | Path | None = None,
    prices: PriceTable | None = None,
    embedder: Embedder | None = None,
    embedding_note: str = "",
) -> RunData:
    """Read the run in ``run`` (and the judge and contamination folders) into counts.

    Args:
        run: the run's output folder.
        judge: a folder with ``verdicts.jsonl``; default ``RUN/judge`` when it exists.
        contamination: a ``genteach contamination`` output folder (``summary.json``).
        prices: prices for the cost column; default the built-in table.
        embedder: for the diversity section's embedding spread (None: left out).
        embedding_note: why there is no embedder.

    Raises:
        FileNotFoundError: ``run`` is not a run folder, or a given folder lacks its file.
    """
    root = div.check_run_folder(run)
    data = RunData(run=str(root), prices=prices or PriceTable())
    if (root / "run.json").exists():
        data.run_json = json.loads((root / "run.json").read_text(encoding="utf-8"))
    units: set[str] = set()
    stamps: list[str] = []
    for row in div.iter_rows([root], "records.jsonl"):
        meta = row.get("meta") or {}
        skill = str(meta.get("skill") or "?")
        data.records += 1
        data.by_sub[(skill, str(meta.get("sub_category") or "?"))] += 1
        data.teachers[str(meta.get("teacher") or "?")] += 1
        units.add(str(meta.get("unit") or ""))
        if meta.get("created_at"):
            stamps = _span(stamps, str(meta["created_at"]))
        data.instruction_words[len(div.words(div.instruction_of(row)))] += 1
        data.response_words[len(div.words("\n".join(div.responses_of(row))))] += 1
        status = str((meta.get("verification") or {}).get("status") or "none")
        data.status.setdefault(skill, Counter())[status] += 1
        _add_usage(data.usage_records, skill, meta.get("usage"))
    for row in div.iter_rows([root], "rejects.jsonl"):
        skill, stage = str(row.get("skill") or "?"), str(row.get("stage") or "?")
        data.rejects += 1
        units.add(str(row.get("unit") or ""))
        if row.get("created_at"):
            stamps = _span(stamps, str(row["created_at"]))
        data.reject_stage[stage] += 1
        data.reject_reason[reason_head(str(row.get("reason") or ""))] += 1
        data.reject_skill_stage[(skill, stage)] += 1
    progress = 0
    for row in div.iter_rows([root], "progress.jsonl"):
        progress += 1
        _add_usage(data.usage_all, str(row.get("unit") or "?").split("/")[0], row.get("usage"))
    units.discard("")
    data.units = progress or len(units)
    if stamps:
        data.first, data.last = stamps[0], stamps[-1]
    _gather_judge(data, root, judge)
    if contamination is not None:
        path = Path(contamination) / "summary.json"
        if not path.exists():
            raise FileNotFoundError(f"--contamination {contamination}: no summary.json there")
        data.contamination = json.loads(path.read_text(encoding="utf-8"))
        data.contamination_source = str(path)
    data.diversity = div.measure([root], embedder=embedder, embedding_note=embedding_note)
    data.trajectories = read_report(root)
    return data


def _span(stamps: list[str], stamp: str) -> list[str]:
    """[earliest, latest] of ``stamps`` and ``stamp`` (ISO times compare as text)."""
    if not stamps:
        return [stamp, stamp]
    return [min(stamps[0], stamp), max(stamps[1], stamp)]


def _gather_judge(data: RunData, root: Path, judge: str | Path | None) -> None:
    if judge is not None:
        path = Path(judge) / VERDICTS_FILE
        if not path.exists():
            raise FileNotFoundError(f"--judge {judge}: no {VERDICTS_FILE} there")
    else:
        path = root / JUDGE_DIR / VERDICTS_FILE
        if not path.exists():
            return
    data.verdict_source = str(path)
    latest: dict[str, dict[str, Any]] = {}  # the last row per id wins, as the judge writes
    for row in read_jsonl(path):
        latest[str(row.get("id"))] = {
            k: row.get(k) for k in ("skill", "score", "passed", "scores", "error")
        }
    for row in latest.values():
        skill = str(row.get("skill") or "?")
        score = row.get("score")
        data.verdicts += 1
        if row.get("error") or not isinstance(score, (int, float)):
            data.judge_errors[skill] += 1
            continue
        data.judge_by_skill.setdefault(skill, []).append(float(score))
        data.judge_scores[max(0, min(10, round(score)))] += 1
        data.judge_passed[skill] += bool(row.get("passed"))
        for name, value in (row.get("scores") or {}).items():
            if isinstance(value, (int, float)):
                data.judge_criteria.setdefault(str(name), []).append(float(value))


# --------------------------------------------------------------------------- html pieces
def esc(value: object) -> str:
    """``value`` as text safe inside HTML and SVG (quotes escaped too)."""
    return html.escape(str(value), quote=True)


def _num(x: float | int | None, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, cap: int = MAX_ROWS) -> str:
    """An HTML table (cells escaped; numbers right-aligned), cut at ``cap`` rows."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows[:cap]:
        cells = "".join(
            f'<td class="n">{esc(c)}</td>' if _numeric(c) else f"<td>{esc(c)}</td>" for c in row
        )
        body.append(f"<tr>{cells}</tr>")
    note = f'<p class="note">Showing {cap} of {len(rows)} rows.</p>' if len(rows) > cap else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"


def _numeric(cell: object) -> bool:
    if isinstance(cell, (int, float)):
        return True
    text = str(cell).replace(",", "").replace("%", "").replace("$", "").strip()
    try:
        float(text)
    except ValueError:
        return False
    return True


def bar_chart(items: Sequence[tuple[str, float]], *, label: str, cap: int = MAX_ROWS) -> str:
    """Horizontal bars, one per (name, value), as inline SVG (``label`` names the chart)."""
    items = list(items)[:cap]
    if not items:
        return ""
    top = max(v for _, v in items) or 1.0
    row, left, width = 22, 230, 420
    height = row * len(items) + 10
    parts = [
        f'<svg class="chart" role="img" aria-label="{esc(label)}" width="{left + width + 90}" '
        f'height="{height}" viewBox="0 0 {left + width + 90} {height}">'
    ]
    for i, (name, value) in enumerate(items):
        y = 5 + i * row
        w = max(1.0, width * value / top) if value else 0.0
        short = name if len(name) <= 34 else name[:33] + "…"
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{esc(short)}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{_BAR}">'
            f"<title>{esc(name)}: {esc(_num(value))}</title></rect>"
            f'<text x="{left + w + 5:.1f}" y="{y + 15}">{esc(_short_num(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _short_num(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def stacked_bars(rows: Sequence[tuple[str, dict[str, int]]], colours: dict[str, str]) -> str:
    """One 100% bar per (name, counts by part), parts coloured by ``colours``, as SVG."""
    if not rows:
        return ""
    row, left, width = 22, 230, 420
    height = row * len(rows) + 30
    parts = [
        f'<svg class="chart" role="img" aria-label="shares per row" width="{left + width + 20}" '
        f'height="{height}" viewBox="0 0 {left + width + 20} {height}">'
    ]
    for i, (name, counts) in enumerate(rows[:MAX_ROWS]):
        y = 5 + i * row
        total = sum(counts.values()) or 1
        x = float(left)
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{esc(name)}</text>')
        for part, colour in colours.items():
            n = counts.get(part, 0)
            if not n:
                continue
            w = width * n / total
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
                f'fill="{colour}"><title>{esc(part)}: {n}</title></rect>'
            )
            x += w
    y = 10 + len(rows[:MAX_ROWS]) * row
    x = float(left)
    for part, colour in colours.items():
        parts.append(
            f'<rect x="{x:.0f}" y="{y}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16:.0f}" y="{y + 11}">{esc(part)}</text>'
        )
        x += 100
    parts.append("</svg>")
    return "".join(parts)


def histogram(counts: Counter[int], *, label: str, bins: int = BINS, colour: str = _BAR) -> str:
    """Vertical bars of how many values fall in each of ``bins`` equal ranges from 0 to the
    99th percentile (the last bar also holds the longer ones), as SVG."""
    n = sum(counts.values())
    if not n:
        return ""
    top = max(1, _percentile(counts, 0.99))
    step = max(1, -(-top // bins))
    heights = [0] * bins
    for value, c in counts.items():
        heights[min(bins - 1, value // step)] += c
    tallest = max(heights) or 1
    bw, h, pad = 26, 140, 30
    width = pad + bw * bins + 10
    parts = [
        f'<svg class="chart" role="img" aria-label="{esc(label)}" width="{width}" '
        f'height="{h + 45}" viewBox="0 0 {width} {h + 45}">',
        f'<text x="{pad}" y="12">{esc(label)} (n={n:,})</text>',
    ]
    for i, c in enumerate(heights):
        bh = h * c / tallest
        x = pad + i * bw
        lo, hi = i * step, (i + 1) * step - 1
        rng = f"{lo}+" if i == bins - 1 else f"{lo}-{hi}"
        parts.append(
            f'<rect x="{x + 1}" y="{20 + h - bh:.1f}" width="{bw - 2}" height="{bh:.1f}" '
            f'fill="{colour}"><title>{esc(rng)} words: {c}</title></rect>'
        )
        if i % 4 == 0:
            parts.append(f'<text x="{x}" y="{h + 35}" class="tick">{lo}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _percentile(counts: Counter[int], q: float) -> int:
    n = sum(counts.values())
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= q * n:
            return value
    return max(counts) if counts else 0


def _length_row(name: str, counts: Counter[int]) -> list[object]:
    n = sum(counts.values())
    if not n:
        return [name, 0, "n/a", "n/a", "n/a", "n/a"]
    mean = sum(v * c for v, c in counts.items()) / n
    return [
        name,
        n,
        f"{mean:.1f}",
        _percentile(counts, 0.5),
        _percentile(counts, 0.9),
        max(counts),
    ]


# --------------------------------------------------------------------------- sections
def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{body}</section>'


def _empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


def _overview(d: RunData) -> str:
    rj = d.run_json
    teacher = rj.get("teacher") or ", ".join(sorted(d.teachers)) or "unknown"
    rows: list[list[object]] = [
        ["run folder", d.run],
        ["records", d.records],
        ["rejects", d.rejects],
        ["units", d.units],
        ["teacher", teacher],
        ["skills", ", ".join(rj.get("skills") or sorted({s for s, _ in d.by_sub})) or "none"],
        ["started", rj.get("started_at") or "unknown"],
        ["first and last item", f"{d.first or '?'} to {d.last or '?'}"],
        ["genteach version", rj.get("genteach_version") or "unknown"],
    ]
    note = _empty("This run has no records.") if not d.records else ""
    return note + table(["field", "value"], rows)


def _records(d: RunData) -> str:
    if not d.records:
        return _empty("No records.")
    per_skill: Counter[str] = Counter()
    for (skill, _), n in d.by_sub.items():
        per_skill[skill] += n
    chart = bar_chart(sorted(per_skill.items(), key=lambda kv: -kv[1]), label="records per skill")
    rows = [
        [skill, sub, n, _pct(n / d.records)]
        for (skill, sub), n in sorted(d.by_sub.items(), key=lambda kv: (kv[0][0], -kv[1]))
    ]
    subs = bar_chart(
        [(f"{s}/{c}", n) for (s, c), n in d.by_sub.most_common(MAX_ROWS)],
        label="records per sub-category",
    )
    return (
        "<h3>Per skill</h3>"
        + chart
        + "<h3>Per sub-category</h3>"
        + subs
        + table(["skill", "sub-category", "records", "share"], rows)
    )


def _lengths(d: RunData) -> str:
    if not d.records:
        return _empty("No records.")
    return (
        '<p class="note">Words: runs of letters and digits (a CJK character is one word). '
        "Instruction: meta.instruction, else the first user message; response: all "
        "assistant turns.</p>"
        + table(
            ["text", "records", "mean", "median", "p90", "max"],
            [
                _length_row("instruction", d.instruction_words),
                _length_row("response", d.response_words),
            ],
        )
        + '<div class="row">'
        + histogram(d.instruction_words, label="instruction words")
        + histogram(d.response_words, label="response words", colour=_BAR2)
        + "</div>"
    )


def _rejects(d: RunData) -> str:
    if not d.rejects:
        return _empty("No rejects.")
    stages = sorted(d.reject_stage.items(), key=lambda kv: -kv[1])
    reasons = d.reject_reason.most_common()
    matrix = sorted(d.reject_skill_stage.items(), key=lambda kv: (kv[0][0], -kv[1]))
    return (
        f"<p>{d.rejects:,} rejects; {d.records:,} records "
        f"({_pct(d.records / (d.records + d.rejects))} of items kept).</p>"
        "<h3>By stage</h3>" + bar_chart(stages, label="rejects by stage") + "<h3>By reason</h3>"
        '<p class="note">A reason\'s class is its text up to the first colon.</p>'
        + table(["reason", "rejects", "share"], [[r, n, _pct(n / d.rejects)] for r, n in reasons])
        + "<h3>By skill and stage</h3>"
        + table(["skill", "stage", "rejects"], [[s, st, n] for (s, st), n in matrix])
    )


def _verification(d: RunData) -> str:
    if not d.records:
        return _empty("No records.")
    statuses = sorted({s for c in d.status.values() for s in c}, key=_status_order)
    rows = []
    for skill in sorted(d.status):
        c = d.status[skill]
        checked = c["passed"] + c["failed"]
        rows.append(
            [skill, *(c[s] for s in statuses), _pct(c["passed"] / checked if checked else None)]
        )
    colours = {s: STATUS_COLOURS.get(s, "#7b1fa2") for s in statuses}
    return (
        '<p class="note">Status of each kept record\'s check against its answer key '
        "(none: no key). passed / checked leaves out unchecked records. Records that failed "
        "their check are usually rejected, so this shows what was kept.</p>"
        + stacked_bars([(s, dict(d.status[s])) for s in sorted(d.status)], colours)
        + table(["skill", *statuses, "passed / checked"], rows)
    )


def _status_order(status: str) -> tuple[int, str]:
    order = list(STATUS_COLOURS)
    return (order.index(status) if status in order else len(order), status)


def _judge(d: RunData) -> str:
    if not d.verdict_source:
        return _empty(
            "Not judged. Run `genteach judge RUN` (it writes RUN/judge/verdicts.jsonl, which "
            "this page reads), or pass the folder of a verdicts.jsonl as --judge DIR."
        )
    if not d.verdicts:
        return _empty(f"{d.verdict_source} holds no verdicts.")
    rows = [
        [
            skill,
            len(scores) + d.judge_errors[skill],
            d.judge_errors[skill],
            f"{sum(scores) / len(scores):.2f}" if scores else "n/a",
            _pct(d.judge_passed[skill] / len(scores) if scores else None),
        ]
        for skill in sorted(set(d.judge_by_skill) | set(d.judge_errors))
        for scores in [d.judge_by_skill.get(skill, [])]
    ]
    crit = [
        [name, len(v), f"{sum(v) / len(v):.2f}"] for name, v in sorted(d.judge_criteria.items())
    ]
    scores = [(str(s), float(d.judge_scores[s])) for s in range(11)]
    return (
        f'<p class="note">{d.verdicts:,} verdicts from {esc(d.verdict_source)}; scores 0-10.'
        "</p>"
        + table(["skill", "judged", "judge failed", "mean score", "passed / scored"], rows)
        + "<h3>Score distribution</h3>"
        + bar_chart(scores, label="records per judge score")
        + ("<h3>Per criterion</h3>" + table(["criterion", "scored", "mean"], crit) if crit else "")
    )


def _diversity(d: RunData) -> str:
    rep = d.diversity
    if rep is None or not rep.records:
        return _empty("No records.")
    rows = []
    for s in rep.scopes:
        i, r = s.instructions, s.responses
        rows.append(
            [
                s.name,
                s.records,
                _num(i.distinct_1, 3),
                _num(i.distinct_2, 3),
                _num(i.distinct_3, 3),
                _pct(i.stems["top1_share"]),
                _pct(i.stems["top5_share"]),
                _num(i.stems["distinct_ratio"], 3),
                _num(r.distinct_1, 3),
                _num(r.distinct_2, 3),
                _num(r.distinct_3, 3),
                _pct(r.stems["top1_share"]),
                _num(s.embedding_spread, 3),
            ]
        )
    stems = [
        [s.name, "; ".join(f"{t} ({n})" for t, n in s.instructions.stems["top"])]
        for s in rep.scopes
        if s.instructions.stems["top"]
    ]
    spread = (
        f"Spread: mean pairwise cosine distance of instruction embeddings ({rep.embedder}, "
        f"at most {div.EMBED_CAP} per scope)."
        if rep.embedder
        else (rep.embedding_note or "Embedding spread not measured")
    ).rstrip(".") + "."
    letters = [
        [
            b.skill,
            b.questions,
            " ".join(f"{k}:{v}" for k, v in b.counts.items()),
            " ".join(f"{k}:{v:.2f}" for k, v in b.expected.items()),
            _num(b.chi2, 2),
            b.df,
            _num(b.p_value, 3),
            _pct(b.max_deviation),
        ]
        for b in rep.letters
    ]
    return (
        '<p class="note">distinct-n: unique n-grams / all n-grams (it falls as a set grows: '
        "compare sets of one size). Stems: the first 3 words. "
        + esc(spread)
        + " See docs/diversity.md.</p>"
        + table(
            [
                "scope",
                "records",
                "instr d-1",
                "d-2",
                "d-3",
                "top stem",
                "top-5 stems",
                "stems / n",
                "resp d-1",
                "d-2",
                "d-3",
                "top stem",
                "spread",
            ],
            rows,
        )
        + "<h3>Most common instruction openings</h3>"
        + table(["scope", "top stems (count)"], stems)
        + "<h3>Correct letters in multiple choice</h3>"
        + (
            table(
                ["skill", "questions", "correct", "expected", "chi-square", "df", "p", "max dev."],
                letters,
            )
            if letters
            else _empty("No multiple-choice records.")
        )
    )


def _refinement(d: RunData) -> str:
    rep = d.diversity
    deltas = [x for x in (rep.refinement if rep else []) if x.refined]
    if not deltas:
        return _empty("No refined records (refinement round 1 or more).")
    rows = [
        [
            x.skill,
            x.originals,
            x.refined,
            x.pairs,
            _num(x.words_original, 1),
            _num(x.words_refined, 1),
            _num(x.steps_original, 1),
            _num(x.steps_refined, 1),
            _pct(x.verified_original),
            _pct(x.verified_refined),
        ]
        for x in deltas
    ]
    return (
        '<p class="note">Each refined record against the record whose task it refined (a '
        "pair needs both kept). Words and steps of the response (steps: numbered or bulleted "
        "lines, else sentences); verified: passed / checked.</p>"
        + table(
            [
                "skill",
                "originals",
                "refined",
                "pairs",
                "words before",
                "after",
                "steps before",
                "after",
                "verified before",
                "after",
            ],
            rows,
        )
    )


def _cost(d: RunData) -> str:
    source = d.usage_all or d.usage_records
    if not source:
        return _empty("No token counts.")
    teacher = str(d.run_json.get("teacher") or (d.teachers.most_common(1) or [("", 0)])[0][0])
    rows = []
    total = Usage()
    costs: list[float | None] = []
    for skill, u in sorted(source.items()):
        cost = d.prices.cost(teacher, u) if teacher else None
        costs.append(cost)
        total = total + u
        kept = d.usage_records.get(skill, Usage())
        rows.append(
            [
                skill,
                u.calls,
                u.prompt_tokens,
                u.completion_tokens,
                kept.prompt_tokens + kept.completion_tokens,
                format_cost(cost),
            ]
        )
    whole = None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
    rows.append(
        [
            "total",
            total.calls,
            total.prompt_tokens,
            total.completion_tokens,
            sum(u.prompt_tokens + u.completion_tokens for u in d.usage_records.values()),
            format_cost(whole),
        ]
    )
    where = "progress.jsonl (every call, rejected work too)" if d.usage_all else "the records"
    priced = (
        f"Cost at the price of {teacher}."
        if whole is not None
        else f"No price known for {teacher or 'the teacher'}: tokens only."
    )
    return (
        f'<p class="note">Tokens from {esc(where)}; "kept" counts the tokens of kept records '
        f"only. {esc(priced)}</p>"
        + table(
            ["skill", "calls", "prompt tokens", "completion tokens", "kept tokens", "cost"], rows
        )
        + bar_chart(
            [(s, float(u.prompt_tokens + u.completion_tokens)) for s, u in sorted(source.items())],
            label="tokens per skill",
        )
    )


def _trajectories(d: RunData) -> str:
    envs = d.trajectories.environments
    if not envs:
        return _empty("No trajectories.json (no environment skills in this run).")
    rows = [
        [
            name,
            s.attempted,
            s.kept,
            _pct(s.pass_rate),
            ", ".join(f"{k} {n}" for k, n in sorted(s.failures.items(), key=lambda x: -x[1])),
        ]
        for name, s in sorted(envs.items())
    ]
    return table(["environment", "episodes", "kept", "pass rate", "filtered"], rows) + bar_chart(
        [(n, 100 * s.pass_rate) for n, s in sorted(envs.items())], label="pass rate (%)"
    )


def _contamination(d: RunData) -> str:
    c = d.contamination
    if c is None:
        return _empty(
            "Not computed here. Run `genteach contamination` against your benchmarks and "
            "pass its --out folder as --contamination DIR."
        )
    rows = [
        [
            b.get("benchmark", "?"),
            b.get("items", 0),
            b.get("scored", 0),
            _pct(b.get("mean_rate")),
            b.get("dirty", 0),
            b.get("in_between", 0),
            b.get("clean", 0),
        ]
        for b in c.get("benchmarks") or []
    ]
    return (
        f'<p class="note">From {esc(d.contamination_source)}: {c.get("training_rows", "?")} '
        f"training rows against {c.get('test_items', '?')} test items; "
        f"{c.get('overlapping_rows', '?')} rows overlap an item. Dirty: over 80% of an item's "
        "tokens covered by 10-gram matches; clean: under 20%.</p>"
        + table(["benchmark", "items", "scored", "mean rate", "dirty", "in between", "clean"], rows)
    )


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1c2430;
background:#f6f7f9}
header{background:#1f3a5f;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
nav{padding:6px 24px;background:#e8edf3;position:sticky;top:0}
nav a{margin-right:12px;color:#1f3a5f;text-decoration:none}
main{padding:8px 24px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:10px 16px;
margin:14px 0}
h2{font-size:17px;margin:4px 0 8px}h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border-bottom:1px solid #e3e7ec;padding:3px 8px;text-align:left;vertical-align:top;
max-width:520px;overflow-wrap:anywhere}
th{background:#f0f3f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#55606e;font-size:12.5px}.empty{color:#7a4b00}
svg.chart{display:block;margin:6px 0;font-size:12px}svg.chart text{fill:#1c2430}
svg text.tick{fill:#55606e;font-size:10px}.row{display:flex;flex-wrap:wrap;gap:20px}
footer{color:#55606e;font-size:12px;padding:0 24px 20px}
"""


def render(d: RunData) -> str:
    """The whole page for gathered run data."""
    titles = {
        "overview": "Overview",
        "records": "Records per skill and sub-category",
        "lengths": "Lengths",
        "rejects": "Rejects",
        "verification": "Verification",
        "judge": "Judge scores",
        "diversity": "Diversity",
        "refinement": "Refinement deltas",
        "cost": "Cost and tokens",
        "trajectories": "Trajectories",
        "contamination": "Contamination",
    }
    builders = {
        "overview": _overview,
        "records": _records,
        "lengths": _lengths,
        "rejects": _rejects,
        "verification": _verification,
        "judge": _judge,
        "diversity": _diversity,
        "refinement": _refinement,
        "cost": _cost,
        "trajectories": _trajectories,
        "contamination": _contamination,
    }
    nav = "".join(f'<a href="#{s}">{esc(titles[s])}</a>' for s in SECTIONS)
    body = "".join(_section(s, titles[s], builders[s](d)) for s in SECTIONS)
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>genteach report: {esc(Path(d.run).name)}</title>"
        # An icon inline, so the browser asks no server for /favicon.ico.
        '<link rel="icon" href="data:,">'
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>genteach report: {esc(d.run)}</h1></header>"
        f"<nav>{nav}</nav><main>{body}</main>"
        f"<footer>Written by genteach report at {esc(made)}.</footer></body></html>\n"
    )


def write_report(
    run: str | Path,
    out: str | Path | None = None,
    *,
    judge: str | Path | None = None,
    contamination: str | Path | None = None,
    prices: PriceTable | None = None,
    embedder: Embedder | None = None,
    embedding_note: str = "",
) -> tuple[Path, RunData]:
    """Gather the run in ``run`` and write its page to ``out`` (default
    ``RUN/report.html``); see :func:`gather` for the arguments.

    Returns:
        The page's path and the gathered data.
    """
    data = gather(
        run,
        judge=judge,
        contamination=contamination,
        prices=prices,
        embedder=embedder,
        embedding_note=embedding_note,
    )
    path = Path(out) if out is not None else Path(run) / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data), encoding="utf-8")
    return path, data


# --------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``genteach report``."""
    parser.add_argument("run", metavar="RUN", help="the run's output folder")
    parser.add_argument("--out", metavar="FILE", help="the HTML file (default RUN/report.html)")
    parser.add_argument(
        "--contamination", metavar="DIR", help="a `genteach contamination` --out folder"
    )
    parser.add_argument(
        "--judge", metavar="DIR", help="a folder with verdicts.jsonl (default RUN/judge)"
    )
    parser.add_argument("--prices", metavar="FILE", help="a prices YAML file (see cost docs)")
    parser.add_argument(
        "--no-embed", action="store_true", help="skip the embedding spread (no model load)"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``genteach report``: write the page, print its path; return 0 (an empty run
    gives a page too, with a warning)."""
    embedder: Embedder | None = None
    note = "Embedding spread not measured: --no-embed"
    if not args.no_embed:
        embedder, note = div.default_embedder()
    path, data = write_report(
        args.run,
        args.out,
        judge=args.judge,
        contamination=args.contamination,
        prices=PriceTable.load(args.prices),
        embedder=embedder,
        embedding_note=note,
    )
    if not data.records:
        print(f"warning: {args.run} has no records; the report says so", file=sys.stderr)
    print(f"{data.records} records, {data.rejects} rejects: wrote {path}")
    return 0


def section_ids(page: str) -> list[str]:
    """The ids of the page's sections, in order (for tests and tools)."""
    return [s for s in SECTIONS if f'<section id="{s}">' in page]


__all__ = [
    "BINS",
    "JUDGE_DIR",
    "MAX_ROWS",
    "SECTIONS",
    "STATUS_COLOURS",
    "VERDICTS_FILE",
    "RunData",
    "add_arguments",
    "bar_chart",
    "esc",
    "gather",
    "histogram",
    "reason_head",
    "render",
    "run",
    "section_ids",
    "stacked_bars",
    "table",
    "write_report",
]
