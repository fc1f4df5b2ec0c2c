"""What a run's agent episodes came to: per environment (skill), the episodes attempted
and kept, the pass rate, and why the others were filtered out (AgentTuning's filters).

:func:`trajectory_report` reads a run's output folder: records are kept episodes;
rejects from an episode stage are filtered ones, each put in one class by its reason.
:meth:`TrajectoryReport.write` saves it as ``trajectories.json`` beside the records.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from genteach.records import read_jsonl

#: The stages that run episodes in an environment (their rejects are filtered episodes).
EPISODE_STAGES: frozenset[str] = frozenset(
    {"tool_conversation", "web_episode", "db_episode", "os_episode"}
)
#: The file a report is written to, in the run's output folder.
REPORT_FILE = "trajectories.json"

#: Failure classes by the episode's end reason (the first word of a reject's reason).
_BY_END = {
    "turn_budget": "budget",
    "token_budget": "budget",
    "time_budget": "budget",
    "repeated_output": "repeat rule",
    "malformed_action": "format error",
    "environment_error": "environment error",
    "model_error": "model error",
}


def failure_class(reason: str) -> str:
    """The class of a filtered episode's reason: an end reason's class (budget, repeat
    rule, format error, environment error, model error), else ``wrong answer`` (the
    episode finished but its reward fell short)."""
    head = reason.split(":", 1)[0].strip()
    return _BY_END.get(head, "wrong answer")


@dataclass
class EnvironmentStats:
    """One environment's episodes."""

    attempted: int = 0
    kept: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def pass_rate(self) -> float:
        return self.kept / self.attempted if self.attempted else 0.0


@dataclass
class TrajectoryReport:
    """Per environment (the skill whose episodes ran in it): attempted, kept, failures."""

    environments: dict[str, EnvironmentStats] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One line per environment, e.g. ``db: 12 episodes, 3 kept (25%); filtered: wrong
        answer 6, budget 2, format error 1``."""
        out = []
        for name, s in sorted(self.environments.items()):
            why = ", ".join(f"{k} {n}" for k, n in sorted(s.failures.items(), key=lambda x: -x[1]))
            out.append(
                f"{name}: {s.attempted} episodes, {s.kept} kept ({s.pass_rate:.0%})"
                + (f"; filtered: {why}" if why else "")
            )
        return out

    def write(self, folder: Path) -> Path:
        """Save the report as ``trajectories.json`` in ``folder``."""
        data = {
            name: {**asdict(s), "pass_rate": round(s.pass_rate, 4)}
            for name, s in sorted(self.environments.items())
        }
        path = folder / REPORT_FILE
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path


def trajectory_report(folder: Path, episodic: Collection[str]) -> TrajectoryReport:
    """The report of the run in ``folder`` for the skills in ``episodic`` (those whose
    pipeline ends in an episode stage)."""
    report = TrajectoryReport()
    for row in read_jsonl(folder / "records.jsonl"):
        skill = str(row.get("meta", {}).get("skill", ""))
        if skill in episodic:
            s = report.environments.setdefault(skill, EnvironmentStats())
            s.attempted += 1
            s.kept += 1
    reasons: dict[str, Counter[str]] = {}
    for row in read_jsonl(folder / "rejects.jsonl"):
        skill = str(row.get("skill", ""))
        if skill in episodic and row.get("stage") in EPISODE_STAGES:
            s = report.environments.setdefault(skill, EnvironmentStats())
            s.attempted += 1
            reasons.setdefault(skill, Counter())[failure_class(str(row.get("reason", "")))] += 1
    for skill, counts in reasons.items():
        report.environments[skill].failures = dict(counts)
    return report


def read_report(folder: Path) -> TrajectoryReport:
    """The report written in ``folder`` (an empty one where there is none)."""
    path = folder / REPORT_FILE
    if not path.exists():
        return TrajectoryReport()
    data = json.loads(path.read_text(encoding="utf-8"))
    return TrajectoryReport(
        {
            name: EnvironmentStats(s["attempted"], s["kept"], dict(s["failures"]))
            for name, s in data.items()
        }
    )


def merge_reports(reports: Iterable[TrajectoryReport]) -> TrajectoryReport:
    """One report of several runs (the shards of a sharded run): counts add."""
    total = TrajectoryReport()
    for report in reports:
        for name, s in report.environments.items():
            t = total.environments.setdefault(name, EnvironmentStats())
            t.attempted += s.attempted
            t.kept += s.kept
            for why, n in s.failures.items():
                t.failures[why] = t.failures.get(why, 0) + n
    return total


__all__ = [
    "EPISODE_STAGES",
    "REPORT_FILE",
    "EnvironmentStats",
    "TrajectoryReport",
    "failure_class",
    "merge_reports",
    "read_report",
    "trajectory_report",
]
