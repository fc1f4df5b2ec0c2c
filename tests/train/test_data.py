"""Data in: formats, bad rows, mixing by ratio with a seed, limits, the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genteach.train.data import (
    DataArguments,
    SourceConfig,
    mix_counts,
    normalize_row,
    prepare_dataset,
)
from genteach.train.templates import read_template

from .conftest import SAMPLE_PAIRS, THUDM_ROWS, write_jsonl

MISTRAL = read_template("mistral.jinja")
ORCA_SKILLS = ("rc", "mcq", "fermi")


def orca_row(skill: str, i: int) -> dict[str, str]:
    messages = [
        {"role": "system", "content": ""},
        {"role": "user", "content": f"[{skill}] question {i}"},
        {"role": "assistant", "content": f"answer {i}"},
    ]
    return {"messages": json.dumps(messages)}  # a JSON string, as in orca-agentinstruct-1M


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"_json_line": "{not json"}, "malformed"),
        ({"_json_line": "   "}, "empty"),
        ({"_json_line": "[1, 2]"}, "malformed"),
        ({"messages": []}, "empty"),
        ({"messages": [{"role": "user", "content": "  "}]}, "empty"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "no_assistant_turn"),
        (
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]},
            "no_assistant_turn",
        ),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "malformed"),
        ({"messages": '[{"role": "user"'}, "malformed"),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "system", "content": "b"},
                    {"role": "assistant", "content": "c"},
                ]
            },
            "system_not_first",
        ),
        (
            {
                "conversations": [
                    {"from": "human", "value": "hi", "loss": None},
                    {"from": "gpt", "value": "OK.", "loss": False},
                ]
            },
            "no_trained_turn",
        ),
        ({"prompt": "", "completion": " "}, "empty"),
        ({"id": 3, "meta": {}}, "malformed"),
    ],
)
def test_bad_rows_get_a_reason(row: dict[str, Any], reason: str) -> None:
    assert normalize_row(row).bad == reason


def test_formats_normalise_to_messages() -> None:
    genteach = normalize_row({"_json_line": json.dumps(SAMPLE_PAIRS[1])})
    assert [m["role"] for m in genteach.messages] == ["system", "user", "assistant"]
    orca = normalize_row(orca_row("rc", 1), "orca")
    assert [m["role"] for m in orca.messages] == ["user", "assistant"]  # empty system dropped
    thudm = normalize_row(THUDM_ROWS[0], "thudm")
    assert [m["train"] for m in thudm.messages] == [False, False, False, True]


def test_mix_counts_follow_eta() -> None:
    assert mix_counts([1866, 60000], [0.2, 0.8]) == [1866, 7464]  # AgentTuning, eta = 0.2
    assert mix_counts([1000, 100], [0.5, 0.5]) == [100, 100]
    assert mix_counts([5, 7], [None, None]) == [5, 7]


def test_prepare_mixes_by_ratio_reports_and_survives_bad_rows(
    mistral_tokenizer: Any, tmp_path: Path
) -> None:
    from datasets import Dataset, DatasetDict

    pairs = write_jsonl(
        tmp_path / "pairs.jsonl",
        SAMPLE_PAIRS * 4,  # 48 rows
        extra_lines=("garbage", "", json.dumps({"messages": [{"role": "user", "content": "q"}]})),
    )
    thudm = write_jsonl(tmp_path / "thudm.jsonl", THUDM_ROWS * 2)  # 12 rows
    orca = tmp_path / "orca"
    DatasetDict(
        {s: Dataset.from_list([orca_row(s, i) for i in range(20)]) for s in ORCA_SKILLS}
    ).save_to_disk(str(orca))
    data_args = DataArguments(
        sources=[
            SourceConfig(path=str(pairs), name="genteach", weight=0.6),
            SourceConfig(path=str(orca), name="orca", splits=["rc", "mcq"], weight=0.2, limit=30),
            SourceConfig(path=str(thudm), name="agent", format="thudm", weight=0.2),
        ],
        mix_seed=7,
    )
    dataset, report = prepare_dataset(data_args, mistral_tokenizer, MISTRAL, max_length=256)
    by_name = {s.name: s for s in report.sources}
    assert by_name["genteach"].rows_read == 51
    assert by_name["genteach"].bad == {"malformed": 1, "empty": 1, "no_assistant_turn": 1}
    assert by_name["orca"].rows_read == 30  # limit, out of the 40 rows of the two splits
    assert [by_name[n].rows_kept for n in ("genteach", "orca", "agent")] == [36, 12, 12]
    assert len(dataset) == report.rows_kept == 60
    assert set(dataset["source"]) == {"genteach", "orca", "agent"}
    text = report.format()
    assert "malformed: 1" in text and "60.0%" in text and "trained" in text
    assert 0 < report.trained_tokens < report.tokens
    assert json.loads(json.dumps(report.to_dict()))["rows_kept"] == 60

    again, _ = prepare_dataset(data_args, mistral_tokenizer, MISTRAL, max_length=256)
    assert again["input_ids"] == dataset["input_ids"]  # same seed, same mix and order
    data_args.mix_seed = 8
    other, _ = prepare_dataset(data_args, mistral_tokenizer, MISTRAL, max_length=256)
    assert other["input_ids"] != dataset["input_ids"]


def test_over_long_rows_are_counted_not_fatal(mistral_tokenizer: Any, tmp_path: Path) -> None:
    rows = [
        {
            "messages": [
                {"role": "user", "content": "why " * 200},
                {"role": "assistant", "content": "x"},
            ]
        },
        SAMPLE_PAIRS[2],
    ]
    path = write_jsonl(tmp_path / "long.jsonl", rows)
    dataset, report = prepare_dataset(
        DataArguments(sources=[SourceConfig(path=str(path))]),
        mistral_tokenizer,
        MISTRAL,
        max_length=64,
    )
    assert len(dataset) == 1 and report.sources[0].bad == {"over_long": 1}


def test_orca_layout_from_a_local_folder_of_splits(mistral_tokenizer: Any, tmp_path: Path) -> None:
    from datasets import Dataset

    folder = tmp_path / "orca-agentinstruct-1M-v1" / "data"
    folder.mkdir(parents=True)
    for skill in ORCA_SKILLS:
        Dataset.from_list([orca_row(skill, i) for i in range(5)]).to_parquet(
            str(folder / f"{skill}-00000-of-00001.parquet")
        )
    source = SourceConfig(path=str(folder.parent), splits=["fermi", "mcq"])
    dataset, report = prepare_dataset(
        DataArguments(sources=[source]), mistral_tokenizer, MISTRAL, max_length=128
    )
    assert report.sources[0].rows_kept == 10 and len(dataset) == 10


def test_sources_from_yaml_dicts() -> None:
    args = DataArguments(sources=[{"path": "a.jsonl", "weight": 0.2}, {"path": "b", "weight": 0.8}])  # type: ignore[list-item]
    assert [s.name for s in args.sources] == ["a.jsonl", "b"]
    with pytest.raises(ValueError, match="weight"):
        DataArguments(sources=[{"path": "a.jsonl", "weight": 0.2}, {"path": "b"}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="format"):
        SourceConfig(path="a", format="sharegpt")


def test_missing_source_file_is_a_clear_error(mistral_tokenizer: Any, tmp_path: Path) -> None:
    source = SourceConfig(path=str(tmp_path / "nothing-*.jsonl"), name="gone")
    with pytest.raises(FileNotFoundError, match="gone"):
        prepare_dataset(DataArguments(sources=[source]), mistral_tokenizer, MISTRAL, max_length=64)


def test_mix_follows_the_weights_after_over_long_rows_are_dropped(
    mistral_tokenizer: Any, tmp_path: Path
) -> None:
    long_row = {
        "messages": [
            {"role": "user", "content": "why " * 100},
            {"role": "assistant", "content": "x"},
        ]
    }
    agent = write_jsonl(tmp_path / "agent.jsonl", [SAMPLE_PAIRS[2]] * 6 + [long_row] * 4)
    general = write_jsonl(tmp_path / "general.jsonl", SAMPLE_PAIRS * 10)  # 120 rows
    data_args = DataArguments(
        sources=[
            SourceConfig(path=str(agent), name="agent", weight=0.3),
            SourceConfig(path=str(general), name="general", weight=0.7),
        ]
    )
    dataset, report = prepare_dataset(data_args, mistral_tokenizer, MISTRAL, max_length=64)
    agent_report, general_report = report.sources
    assert agent_report.bad == {"over_long": 4} and agent_report.rows_usable == 6
    # 6 agent rows are 30% of 20: 14 general rows; before the fix, 10 agent rows were
    # mixed against 23 general ones and 4 were dropped afterwards (6/29 = 20.7%)
    assert (
        [agent_report.rows_kept, general_report.rows_kept]
        == [6, 14]
        == [
            dataset["source"].count("agent"),
            dataset["source"].count("general"),
        ]
    )
    assert report.shares() == {"agent": 0.3, "general": 0.7}
    assert "30.0%" in report.format() and "70.0%" in report.format()


def test_an_empty_source_reads_no_row(mistral_tokenizer: Any, tmp_path: Path) -> None:
    empty = tmp_path / "records.jsonl"
    empty.write_text("")  # a run that kept no record
    pairs = write_jsonl(tmp_path / "pairs.jsonl", SAMPLE_PAIRS)
    data_args = DataArguments(sources=[str(empty), str(pairs)])
    dataset, report = prepare_dataset(data_args, mistral_tokenizer, MISTRAL, max_length=256)
    assert [s.rows_read for s in report.sources] == [0, len(SAMPLE_PAIRS)]
    assert len(dataset) == report.rows_kept == len(SAMPLE_PAIRS)
    alone, report = prepare_dataset(
        DataArguments(sources=[str(empty)]), mistral_tokenizer, MISTRAL, max_length=256
    )
    assert len(alone) == 0 and report.sources[0].rows_read == 0


def test_the_report_counts_held_out_records(mistral_tokenizer: Any, tmp_path: Path) -> None:
    from genteach.evaluate import write_split
    from genteach.records import Record, RecordMeta

    run = tmp_path / "run"
    run.mkdir()
    records = [
        Record(
            id=f"r{i}",
            messages=[
                {"role": "user", "content": f"Question {i}?"},
                {"role": "assistant", "content": f"Answer {i}.", "trained": True},
            ],
            meta=RecordMeta(
                skill="rc",
                sub_category="a",
                seed_id="s",
                unit="rc:s",
                agents=["a"],
                teacher="t",
                usage={},
                task_id=f"r{i}",
            ),
        )
        for i in range(6)
    ]
    (run / "records.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in records))
    write_split(run, 2, seed=0)
    dataset, report = prepare_dataset(
        DataArguments(sources=[str(run)]), mistral_tokenizer, MISTRAL, max_length=256
    )
    (source,) = report.sources
    assert (source.held_out, source.rows_read, len(dataset)) == (2, 4, 4)
    assert "held out for evaluation (genteach eval split): 2" in report.format()
    assert report.to_dict()["sources"][0]["held_out"] == 2
