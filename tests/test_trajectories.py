"""The trajectory report: read back from a run's folder and added up over shards."""

from __future__ import annotations

from pathlib import Path

from genteach.trajectories import (
    EnvironmentStats,
    TrajectoryReport,
    merge_reports,
    read_report,
)


def test_shard_reports_add_up_and_read_back(tmp_path: Path) -> None:
    one = TrajectoryReport({"db": EnvironmentStats(4, 1, {"wrong answer": 2, "budget": 1})})
    two = TrajectoryReport(
        {
            "db": EnvironmentStats(2, 1, {"wrong answer": 1}),
            "os": EnvironmentStats(3, 3, {}),
        }
    )
    for i, report in enumerate((one, two)):
        (tmp_path / str(i)).mkdir()
        report.write(tmp_path / str(i))
    total = merge_reports(read_report(tmp_path / str(i)) for i in range(2))
    assert total.environments["db"] == EnvironmentStats(6, 2, {"wrong answer": 3, "budget": 1})
    assert total.lines() == [
        "db: 6 episodes, 2 kept (33%); filtered: wrong answer 3, budget 1",
        "os: 3 episodes, 3 kept (100%)",
    ]
    assert read_report(tmp_path / "missing").environments == {}
